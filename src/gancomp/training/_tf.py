"""Lazy, quiet TensorFlow import (training and the tests that compare against Keras).

Compress and decompress never import TensorFlow (see :mod:`gancomp.runtime.transforms`),
and it is not a runtime dependency: without the ``train`` extra, :func:`tf` raises a
:class:`GancompError` saying how to install it, which the CLI prints as one line.
Environment knobs are set before the import: TF reads them once (a value the user set
wins, except for oneDNN). oneDNN is
switched off because its kernels change float results with the thread count,
which would make training runs harder to reproduce; a bfloat16 run asks for it
(``tf(onednn=True)``): without oneDNN, TensorFlow's CPU kernels emulate bfloat16
and run about ten times slower than float32.
"""

from __future__ import annotations

import contextlib
import os
import sys

from gancomp.errors import GancompError

INSTALL_HINT = "pip install 'gancomp[train]'"
_TF = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ start-up chatter (CUDA probes, absl) written straight to fd 2."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def tf(onednn: bool = False):
    """Import and configure TensorFlow once; returns the module.

    ``onednn`` only counts for the call that imports TensorFlow (see :func:`onednn_enabled`).
    """
    global _TF
    if _TF is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if "tensorflow" not in sys.modules:
            os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        # TensorFlow's CPU allocator otherwise hands large tensors to malloc, which maps and
        # unmaps them every step: a third of a flower step went to page faults (PERFORMANCE.md).
        os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
        try:
            with _quiet_stderr():
                import tensorflow

                tensorflow.get_logger().setLevel("ERROR")
                import keras  # noqa: F401  (pays Keras' import cost inside the quiet block)
        except ImportError as exc:
            reason = f"no module named {exc.name!r}" if exc.name else str(exc)
            raise GancompError(
                f"training needs TensorFlow and Keras ({reason}); install them with: {INSTALL_HINT}"
            ) from exc
        _TF = tensorflow
    return _TF


def onednn_enabled() -> bool:
    """Whether the imported TensorFlow uses oneDNN kernels (fixed when it was imported)."""
    tf()
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
