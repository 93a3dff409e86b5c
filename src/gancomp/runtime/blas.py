"""Control of the BLAS thread count that NumPy uses, for reproducible network calls.

OpenBLAS splits a matrix product differently with two threads than with one, so
the decoded pixels changed with the thread count. Network calls therefore run
with single-threaded BLAS; parallelism comes from running independent chunks
and tiles side by side (:mod:`gancomp.runtime.tiling`).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from collections.abc import Iterator

import numpy as np


class _OpenBLAS:
    """Thread-count control of the OpenBLAS that NumPy uses, found without extra packages."""

    _NAMES = [
        ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
        ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
        ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
        ("openblas_get_num_threads", "openblas_set_num_threads"),
    ]

    def __init__(self) -> None:
        self.get = self.set = None
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get_name, set_name in self._NAMES:
                if hasattr(lib, get_name) and hasattr(lib, set_name):
                    self.get, self.set = getattr(lib, get_name), getattr(lib, set_name)
                    self.get.restype, self.get.argtypes = ctypes.c_int, []
                    self.set.restype, self.set.argtypes = None, [ctypes.c_int]
                    return

    @staticmethod
    def _candidates() -> list[str]:
        root = os.path.dirname(np.__file__)
        paths = []
        for folder in (os.path.join(root, os.pardir, "numpy.libs"), os.path.join(root, ".dylibs")):
            paths += sorted(glob.glob(os.path.join(folder, "*openblas*")))
        # A distribution's NumPy links a system OpenBLAS: find it among the loaded libraries.
        with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
            paths += sorted({ln.split()[-1] for ln in maps if "openblas" in ln.lower()})
        return paths


_BLAS: _OpenBLAS | None = None
_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_saved = 0


def blas_is_controlled() -> bool:
    """True if gancomp can pin NumPy's BLAS to one thread (OpenBLAS found)."""
    global _BLAS
    with _BLAS_LOCK:
        if _BLAS is None:
            _BLAS = _OpenBLAS()
    return _BLAS.set is not None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run NumPy's BLAS with one thread inside the block, restoring the setting after.

    OpenBLAS' thread count is process-wide, so other threads' products are
    single-threaded while a block is active. Without OpenBLAS (e.g. NumPy on MKL)
    this does nothing, and bit-exact output across thread counts is not promised.
    """
    global _blas_users, _blas_saved
    if not blas_is_controlled():
        yield
        return
    assert _BLAS is not None and _BLAS.get is not None and _BLAS.set is not None
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_saved = _BLAS.get()
            _BLAS.set(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                _BLAS.set(_blas_saved)
