"""Atomic file writing: write a hidden temp file next to the target, then rename it into place.

A crash or Ctrl-C therefore never leaves a half-written output file, and the temp file is removed
on any failure.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gancomp.errors import GancompError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files with mode 0600; give outputs the mode a plain open() would have.
_FILE_MODE = 0o666 & ~_current_umask()


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


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

    Raises GancompError if the file exists and ``force`` is false, or it cannot be written.
    """
    target = check_writable_target(path, force)
    try:
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
            dir=target.parent, delete=False, prefix="." + target.name + ".", suffix=".tmp"
        )
    except OSError as exc:
        raise GancompError(f"cannot write '{target}': {_describe(exc)}") from exc
    try:
        with tmp:
            yield tmp  # type: ignore[misc]
            try:
                tmp.flush()
                os.fsync(tmp.fileno())
            except OSError as exc:
                raise GancompError(f"cannot write '{target}': {_describe(exc)}") from exc
        try:
            os.chmod(tmp.name, _FILE_MODE)
            _commit(tmp.name, target, force)
        except OSError as exc:
            raise GancompError(f"cannot write '{target}': {_describe(exc)}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuse to overwrite an existing file unless ``force``."""
    with atomic_open(path, force=force) as fh:
        try:
            fh.write(data)
        except OSError as exc:
            raise GancompError(f"cannot write '{path}': {_describe(exc)}") from exc
