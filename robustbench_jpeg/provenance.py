"""Provenance and atomic file writes shared by every stage (train, attack, report).

Everything the toolkit publishes carries where it came from: the git commit of this code (and whether
the tree was dirty), library versions and the device. Every file it writes goes through a temporary
file in the same folder and ``os.replace``, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .runfolder import RunFormatError, dumps_json

if TYPE_CHECKING:
    import torch

_REPO_ROOT = Path(__file__).resolve().parent.parent


CODE_PATHS = ("robustbench_jpeg", "pyproject.toml")


def git_sha() -> str:
    """Return the commit of the code that runs, with ``-dirty`` when the code (the package, pyproject.toml) differs
    from it, or ``unknown``. Outputs kept in the repository (reports/, runs/) do not make it dirty."""
    env_sha = os.environ.get("RBJ_GIT_SHA")
    if env_sha:
        return env_sha
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *CODE_PATHS],
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the numbers depend on."""
    import torch  # imported here, so that reading and writing files never imports torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("torchvision", "pyautoattack", "torchattacks", "numpy", "pandas"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            versions[name] = "not installed"
    return versions


def device_name(device: torch.device | str) -> str:
    """A human-readable device description, e.g. ``cuda:0 (NVIDIA H200)`` or ``cpu (x86_64, 2 threads)``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    threads = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {threads} thread{'' if threads == 1 else 's'})"


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def provenance(device: torch.device | str) -> dict[str, Any]:
    """The provenance block written into model cards, result rows and reports."""
    return {"git_sha": git_sha(), "versions": library_versions(), "device": device_name(device), "timestamp": now_iso()}


def current_umask() -> int:
    """The process umask (read without changing it for longer than two system calls)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def public_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open``/``mkdir`` would (0666/0777 minus the umask): temporary files
    and folders start private (0600/0700), and a published report must stay readable to colleagues."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename), with the
    permissions the umask gives a new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Indented JSON, atomically; NaN or infinity is refused (bare ``NaN`` is not JSON)."""
    atomic_write_text(path, dumps_json(obj))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file, so a crash mid-write keeps the previous checkpoint intact."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except RuntimeError as exc:  # torch's writer reports a full disk as "unexpected pos ..." / "failed writing"
        Path(tmp).unlink(missing_ok=True)
        if "unexpected pos" in str(exc) or "failed writing" in str(exc) or "No space" in str(exc):
            raise OSError(
                errno.ENOSPC,
                "no space left on device while writing a checkpoint (the previous checkpoint is intact)",
                str(path),
            ) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_file(path: str | os.PathLike, fix: str = "", expect: type | None = None) -> Any:
    """JSON from ``path``; a damaged file (or, with ``expect=dict``, one that holds no JSON object) is a
    :class:`RunFormatError` that names it (and ``fix``)."""
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunFormatError(f"{path} is not UTF-8 text{hint}") from None
    except json.JSONDecodeError as exc:
        raise RunFormatError(f"{path} is not valid JSON ({exc}){hint}") from None
    except RecursionError:
        raise RunFormatError(f"{path} is nested too deeply to be a file of this toolkit{hint}") from None
    if expect is dict and not isinstance(value, dict):
        raise RunFormatError(f"{path} must hold a JSON object ({{...}}), not a {type(value).__name__}{hint}")
    return value


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, busy: Exception, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed; ``filelock``, so POSIX, Windows and macOS alike); raise
    ``busy`` when another process holds it (after waiting up to ``wait_s`` seconds for it: for locks only ever held
    briefly). The operating system releases the lock with the process, so a killed holder never leaves it stuck."""
    import filelock

    path = Path(path)
    lock = filelock.FileLock(path, timeout=wait_s)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise busy from None
    except OSError as exc:
        raise RunFormatError(f"cannot create the lock file {path} ({exc.strerror}); is the folder writable?") from None
    try:
        yield
    finally:
        lock.release()
