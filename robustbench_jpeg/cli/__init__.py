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

# command -> (module, one-line summary for the top-level --help). Only the chosen command's module is imported, so
# `jpeg-robust --help` and `--version` answer without importing torch; tests/test_cli_startup.py checks that each
# summary is the one its module registers.
SUBCOMMANDS = {
    "train": ("train_cmd", "train a baseline / JPEG-DL pair (paper recipe by default)"),
    "attack": ("attack_cmd", "attack the arms of a run folder (resumable sweep, sanity checks)"),
    "report": ("report_cmd", "tables, figures and report.md/report.html from run folders"),
    "quickstart": (
        "quickstart_cmd",
        "train, attack and report a small pair on the embedded mini data set (CPU, minutes)",
    ),
    "export": (
        "export_cmd",
        "export a run: RobustBench-style entries, quantization tables (JSON, cjpeg, .jpg) or safetensors weights",
    ),
}
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


def plain_help(docstring: str, width: int = 78) -> str:
    """A docstring as --help text: reStructuredText literals (double backquotes) become plain words and each
    paragraph is refilled, so a terminal shows neither markup nor the source's line breaks."""
    import textwrap

    paragraphs = [" ".join(p.split()).replace("``", "") for p in docstring.strip().split("\n\n")]
    return "\n\n".join(textwrap.fill(p, width) for p in paragraphs)


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


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate, a softness, minutes of a sitting)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given ``argv``, only the command it names is built in full (the others are one-line
    entries), so the modules (and torch) of commands not run are not imported."""
    parser = argparse.ArgumentParser(
        prog="jpeg-robust",
        description="Does JPEG-DL really make image classifiers more robust? Train baseline / JPEG-DL pairs, attack "
        "them with adaptive attacks and sanity checks, publish reports. `jpeg-robust COMMAND --help` for each.",
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen_command(argv)
    for command, (module, summary) in SUBCOMMANDS.items():
        if argv is None or command == chosen:
            importlib.import_module(f"{__name__}.{module}").add_parser(subparsers)
            sub = subparsers.choices[command]
            sub.description = plain_help(sub.description) if sub.description else sub.description
        else:
            subparsers.add_parser(command, help=summary)
    return parser


def _chosen_command(argv: Sequence[str] | None) -> str | None:
    """The first argument that names a command (the global options take no values)."""
    for arg in argv or ():
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def record_command(run_dir: str | Path, argv: Sequence[str] | None = None) -> None:
    """Append the command line to ``RUN/commands.txt`` (atomically), so reports can show what was run."""
    from ..provenance import atomic_write_text, now_iso
    from ..runfolder import COMMANDS_NAME
    from ..runfolder.files import read_bytes

    path = Path(run_dir) / COMMANDS_NAME
    previous = (read_bytes(path) or b"").decode("utf-8", "replace")  # a link or FIFO there is refused
    args = list(sys.argv[1:] if argv is None else argv)
    line = f"{now_iso()}\tjpeg-robust {shlex.join(args)}\n"
    atomic_write_text(path, previous + line)


def _os_message(exc: OSError, command: str = "") -> str:
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        again = "the same command again with --resume" if command == "train" else "the same command again"
        return (
            f"no space left on the device holding{where or ' the output'}; free space and run {again} "
            "(everything written so far is complete)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror}; choose a writable --out folder"
    if exc.errno == errno.ENOTDIR:
        return f"{where.strip()} is a file, not a folder; choose another --out/--run"
    return f"{exc.strerror or exc}{':' + where if where else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    args.argv = argv
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
            message = _os_message(exc, args.command)
        print(f"{name}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{name}: error: {_os_message(exc, args.command)}", file=sys.stderr)
        return EXIT_USAGE


def _is_user_error(exc: RuntimeError) -> bool:
    """RuntimeErrors that report the user's situation, not a bug (a locked folder, a non-finite loss)."""
    from ..runfolder.store import SweepLockedError
    from ..train import NonFiniteLossError, TrainLockedError

    return isinstance(exc, (SweepLockedError, TrainLockedError, NonFiniteLossError))
