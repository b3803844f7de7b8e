"""The ``jpeg-robust`` command line: thin argparse front ends over library calls (the only place that parses).

Exit status of every subcommand: 0 done, 2 bad input or a refused operation (one line on stderr, no traceback),
3 a sanity check failed (``attack --fail-on-check``), 75 paused by ``--time-limit`` (resume later), 130
interrupted. A Python traceback means a bug: please report it.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..provenance import now_iso

_SUBCOMMANDS = ("train_cmd", "attack_cmd", "report_cmd", "quickstart_cmd", "export_cmd")
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_PAUSED = 75  # EX_TEMPFAIL: stopped by --time-limit, run the same command again (train: with --resume)
EXIT_INTERRUPTED = 130


class Examples:
    """Example command lines shown at the end of a subcommand's ``--help``."""

    def __init__(self, *lines: str) -> None:
        self.lines = lines

    def text(self) -> str:
        return "examples:\n" + "\n".join(f"  {line}" for line in self.lines)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def finite_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jpeg-robust",
        description="Does JPEG-DL really make image classifiers more robust? Train baseline / JPEG-DL pairs, attack "
        "them with adaptive attacks and sanity checks, publish reports. `jpeg-robust COMMAND --help` for each.",
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def record_command(run_dir: str | Path, argv: Sequence[str] | None = None) -> None:
    """Append the command line to ``RUN/commands.txt`` (atomically), so reports can show what was run."""
    from ..provenance import atomic_write_text

    path = Path(run_dir) / "commands.txt"
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    args = list(sys.argv[1:] if argv is None else argv)
    line = f"{now_iso()}\tjpeg-robust {shlex.join(args)}\n"
    atomic_write_text(path, previous + line)


def _os_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (
            f"no space left on the device holding{where or ' the output'}; free space and run the same command "
            "again (everything written so far is complete)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror}; choose a writable --out folder"
    if exc.errno == errno.ENOTDIR:
        return f"{where.strip()} is a file, not a folder; choose another --out/--run"
    return f"{exc.strerror or exc}{':' + where if where else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    name = f"jpeg-robust {args.command}"
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(
            "interrupted; every file written so far is complete. Run the same command again to continue "
            "(train: add --resume).",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as exc:  # the attack engines are not needed to train or to report
        from ..attack.methods import EngineMissingError

        if not isinstance(exc, EngineMissingError):
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (
        ValueError,
        KeyError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        RuntimeError,
    ) as exc:
        if isinstance(exc, RuntimeError) and not _is_user_error(exc):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if isinstance(exc, OSError) and exc.errno is not None and not str(message).startswith(str(exc.filename)):
            message = _os_message(exc)
        print(f"{name}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{name}: error: {_os_message(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _is_user_error(exc: RuntimeError) -> bool:
    """RuntimeErrors that report the user's situation, not a bug (a locked folder, a non-finite loss)."""
    from ..attack.store import SweepLockedError
    from ..train import NonFiniteLossError, TrainLockedError

    return isinstance(exc, (SweepLockedError, TrainLockedError, NonFiniteLossError))
