"""The ``jpeg-robust`` command line: thin argparse front ends over library calls (the only place that parses)."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..provenance import now_iso

_SUBCOMMANDS = ("train_cmd", "attack_cmd", "report_cmd", "quickstart_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jpeg-robust",
        description="Train baseline / JPEG-DL pairs, attack them with adaptive-attack checks, publish reports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a subcommand still being written must not break the others
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def record_command(run_dir: str | Path, argv: Sequence[str] | None = None) -> None:
    """Append the command line to ``RUN/commands.txt`` (atomically), so reports can show what was run."""
    from ..provenance import atomic_write_text

    path = Path(run_dir) / "commands.txt"
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    args = list(sys.argv[1:] if argv is None else argv)
    line = f"{now_iso()}\tjpeg-robust {shlex.join(args)}\n"
    atomic_write_text(path, previous + line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; every file written so far is complete. Run the same command again to continue "
              "(train: add --resume).", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # the attack engine is optional for train and report
        if exc.name != "torchattacks":
            raise
        from ..attack.methods import ENGINE_MISSING

        print(f"jpeg-robust {args.command}: error: {ENGINE_MISSING}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"jpeg-robust {args.command}: error: {message}", file=sys.stderr)
        return 2
