"""Atomic file writing: write a hidden temp file next to the target, then rename it into place.

A crash or Ctrl-C therefore never leaves a half-written output file, and the temp file is removed
on any failure. A full disk raises :class:`NoSpaceError`, so that a batch can stop there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gancomp.errors import GancompError

# The filesystem (or the user's quota) is full: every further write there would fail too.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class NoSpaceError(GancompError):
    """An output could not be written because its filesystem (or quota) is full."""

    def __init__(self, message: str, target: Path):
        super().__init__(message)
        self.target = target


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files with mode 0600; give outputs the mode a plain open() would have.
_FILE_MODE = 0o666 & ~_current_umask()


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or the cause a caller wrapped it in."""
    seen = 0
    while exc is not None and seen < 8:  # bounded: a chain can be a cycle
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        seen += 1
    return None


def write_error(target: Path, exc: BaseException) -> GancompError:
    """One-line error for a failed write of ``target``; NoSpaceError when the disk is full."""
    os_error = _os_error_in(exc)
    if os_error is not None and os_error.errno in _NO_SPACE:
        return NoSpaceError(f"cannot write '{target}': {_describe(os_error)}", target)
    if isinstance(exc, GancompError):
        return exc
    detail = _describe(os_error) if os_error is not None else str(exc)
    return GancompError(f"cannot write '{target}': {detail}")


def check_writable_target(path: str | os.PathLike[str], force: bool) -> Path:
    """Raise GancompError if ``path`` cannot be created (exists without force, missing directory)."""
    target = Path(path)
    try:
        st = os.lstat(target)  # one call: exists, is a directory, is a (dangling) symlink
    except OSError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode) or (stat.S_ISLNK(st.st_mode) and target.is_dir()):
            raise GancompError(f"cannot write '{target}': is a directory")
        if not force:
            raise GancompError(f"output file '{target}' already exists (use --force to overwrite)")
    parent = target.parent
    if not parent.is_dir():
        raise GancompError(f"cannot write '{target}': directory '{parent}' does not exist")
    # Read-only folder or filesystem: say so before any work is spent on this output.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GancompError(f"cannot write '{target}': folder '{parent}' is not writable")
    return target


def _commit(tmp_name: str, target: Path, force: bool) -> None:
    if force:
        os.replace(tmp_name, target)
        return
    # A hard link fails if the target appeared meanwhile, so we never clobber a file created
    # by someone else between our check and the rename.
    try:
        os.link(tmp_name, target)
    except FileExistsError:
        raise GancompError(
            f"output file '{target}' already exists (use --force to overwrite)"
        ) from None
    except OSError:
        # Filesystem without hard links: best effort.
        if target.exists():
            raise GancompError(
                f"output file '{target}' already exists (use --force to overwrite)"
            ) from None
        os.replace(tmp_name, target)
        return
    os.unlink(tmp_name)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], force: bool = False) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing; it only appears (complete) when the block exits cleanly.

    Raises GancompError if the file exists and ``force`` is false, or it cannot be written
    (:class:`NoSpaceError` when the disk is full). The temp file never outlives a failure.
    """
    target = check_writable_target(path, force)
    try:
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
            dir=target.parent, delete=False, prefix="." + target.name + ".", suffix=".tmp"
        )
    except OSError as exc:
        raise write_error(target, exc) from exc
    try:
        try:
            yield tmp  # type: ignore[misc]
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            # Closing flushes what is still buffered, which fails again on a full disk: the
            # first error is the one to report.
            with contextlib.suppress(OSError):
                tmp.close()
            raise
        tmp.close()
        os.chmod(tmp.name, _FILE_MODE)
        _commit(tmp.name, target, force)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        if isinstance(exc, (OSError, GancompError)):
            error = write_error(target, exc)
            if error is not exc:
                raise error from exc
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuse to overwrite an existing file unless ``force``."""
    with atomic_open(path, force=force) as fh:
        fh.write(data)
