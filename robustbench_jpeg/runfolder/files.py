"""Safe access to the files of a run folder: regular files inside it only, never through a link, never blocking.

A run folder may come from someone else. A symbolic link inside it could point at any file of the reader's (a key,
another run's results), and a FIFO would block a reader forever. So every read and every append here opens the file
without following a link (``O_NOFOLLOW``) and without blocking (``O_NONBLOCK``), and refuses anything that is not a
regular file with a one-line :class:`UnsafeFileError` naming it and the fix. New files are written atomically by
:mod:`robustbench_jpeg.provenance` (a temporary file renamed over the name: a link there is replaced, its target
never written).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .names import RunFormatError

__all__ = ["UnsafeFileError", "check_entry", "read_bytes", "append_bytes", "is_folder"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafeFileError(RunFormatError):
    """A symbolic link, FIFO, device or other non-regular file where a run folder needs a regular file."""


def _refuse(path: Path, mode: int) -> UnsafeFileError:
    if stat.S_ISLNK(mode):
        return UnsafeFileError(
            f"{path} is a symbolic link; a run folder holds regular files only (replace the link by a copy of the "
            "file, or remove it)"
        )
    what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    return UnsafeFileError(f"{path} is {what}, where a run folder holds a regular file; remove it")


def check_entry(path: str | os.PathLike) -> bool:
    """True when ``path`` is a regular file (not a link), False when nothing is there; anything else is refused."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode)
    return True


def is_folder(path: str | os.PathLike) -> bool:
    """True for a real folder (not a link to one), False when nothing is there; a link or file is refused."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        if stat.S_ISREG(mode):
            return False
        raise _refuse(path, mode)
    return True


def _open(path: Path, flags: int) -> int:
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno in (getattr(os, "ELOOP", -1), getattr(os, "EMLINK", -1)):
            raise _refuse(path, stat.S_IFLNK) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse(path, mode)
    return fd


def read_bytes(path: str | os.PathLike) -> bytes | None:
    """The content of the regular file ``path``; None when it does not exist; a link or special file is refused."""
    path = Path(path)
    if not check_entry(path):
        return None
    fd = _open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def append_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Append ``data`` to the regular file ``path`` (created if missing) and fsync; never through a link."""
    path = Path(path)
    check_entry(path)
    fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
