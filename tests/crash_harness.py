"""The crash harness of tests/test_crash.py: a command run in a forked child that is killed (SIGKILL after a delay)
or whose disk fills up (every write into the test folder fails with ENOSPC after a budget of bytes, the bytes before
the limit written, as a real full disk does).

The child is forked from the test process (torch already imported), so a kill point costs the command's own work,
not an interpreter start; it shares nothing with the parent after the fork.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from robustbench_jpeg.cli import main

EXIT_KILLED = -signal.SIGKILL


@dataclass(frozen=True)
class Outcome:
    """How a child ended: its exit status (``EXIT_KILLED`` if killed), its stderr, the bytes it wrote under the
    watched folder."""

    status: int
    stderr: str
    written: int


class _Budget:
    """Bytes the child may still write under ``root`` (None: unlimited, only counted)."""

    def __init__(self, root: str, limit: int | None) -> None:
        self.root, self.limit, self.written = root, limit, 0

    def take(self, size: int) -> int:
        """How many of ``size`` bytes fit; the caller raises ENOSPC if fewer than asked."""
        allowed = size if self.limit is None else max(0, min(size, self.limit - self.written))
        self.written += allowed
        return allowed


class _LimitedFile:
    """A file object whose writes draw on a :class:`_Budget` (the part that fits is written, then ENOSPC)."""

    def __init__(self, handle, budget: _Budget) -> None:
        self._handle, self._budget = handle, budget

    def write(self, data):
        allowed = self._budget.take(len(data))
        if allowed < len(data):
            self._handle.write(data[:allowed])
            self._handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __iter__(self):
        return iter(self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


def _install(budget: _Budget) -> None:
    """Route every write of this (child) process into ``budget.root`` through the budget."""
    real_open, real_fdopen, real_save = builtins.open, os.fdopen, torch.save

    def watched(target) -> bool:
        return isinstance(target, (str, os.PathLike)) and os.path.realpath(target).startswith(budget.root)

    def limited_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        writing = any(m in mode for m in "wax+")
        return _LimitedFile(handle, budget) if writing and watched(file) else handle

    def limited_fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return _LimitedFile(handle, budget) if any(m in mode for m in "wax+") else handle

    def limited_save(obj, f, *args, **kwargs):
        if not watched(f):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        with limited_open(f, "wb") as handle:
            handle.write(buffer.getvalue())

    builtins.open, os.fdopen, torch.save = limited_open, limited_fdopen, limited_save


def run_child(argv: list[str], watch: Path, *, kill_after_s: float | None = None, disk_bytes: int | None = None):
    """Run ``jpeg-robust argv`` in a forked child: killed after ``kill_after_s`` seconds (if still running), or with
    ``disk_bytes`` of free space under ``watch``. Returns an :class:`Outcome`."""
    watch.parent.mkdir(parents=True, exist_ok=True)
    report = watch.parent / f".harness-{os.getpid()}-{time.monotonic_ns()}"
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 70
        try:
            budget = _Budget(os.path.realpath(watch), disk_bytes)
            _install(budget)
            with open(f"{report}.err", "w", encoding="utf-8") as err, contextlib.redirect_stderr(err):
                with open(os.devnull, "w") as out, contextlib.redirect_stdout(out):
                    status = main(argv)
            with open(f"{report}.bytes", "w", encoding="utf-8") as handle:
                handle.write(str(budget.written))
        except BaseException as exc:  # noqa: BLE001  (anything that escapes main is a failure of the harness)
            sys.__stderr__.write(f"harness child: {type(exc).__name__}: {exc}\n")
            status = 70
        finally:
            os._exit(int(status))
    status = _wait(pid, kill_after_s)
    stderr = _read(Path(f"{report}.err"))
    written = int(_read(Path(f"{report}.bytes")) or 0)
    return Outcome(status, stderr, written)


def _wait(pid: int, kill_after_s: float | None) -> int:
    if kill_after_s is not None:
        end = time.monotonic() + kill_after_s
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.002)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    path.unlink()
    return text
