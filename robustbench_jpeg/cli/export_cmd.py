"""``jpeg-robust export``: a run folder's results, quantization tables or weights in formats other tools read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import EXIT_USAGE, Examples

EXAMPLES = Examples(
    "jpeg-robust export --run runs/r56-s0 --format robustbench --out exports/r56-rb",
    "jpeg-robust export --run runs/r56-s0 --format tables --out exports/r56-tables",
    "jpeg-robust export --run runs/r56-s0 --format weights --arms jpegdl --out exports/r56-weights",
)


def _arms(text: str) -> tuple[str, ...]:
    from ..runfolder import ARMS

    arms = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise argparse.ArgumentTypeError(f"--arms takes a comma list of {', '.join(ARMS)}; got {text!r}")
    return arms


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..export import FORMATS

    parser = subparsers.add_parser(
        "export",
        help="export a run: RobustBench-style entries, quantization tables (JSON, cjpeg, .jpg) or safetensors weights",
        description="Export a run folder. robustbench: per arm and threat model, a JSON entry with the fields of "
        "RobustBench's leaderboard files (not affiliated with RobustBench), from the card and the worst case over "
        "every attack run. tables: the learned quantization tables as JSON, as cjpeg -qtables text and in a real "
        ".jpg. weights: model.safetensors and a Hugging Face-style README.md per arm. See docs/report.md.",
        epilog=EXAMPLES.text() + "\nexit status: 0 done, 2 bad input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", type=Path, metavar="RUN", help="run folder made by `jpeg-robust train` (and attack)")
    parser.add_argument("run_positional", nargs="?", type=Path, metavar="RUN", help="the same as --run RUN")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to export")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write (created; see --force)")
    parser.add_argument(
        "--arms",
        type=_arms,
        default=None,
        metavar="LIST",
        help="comma list of arms to export (default: every arm with a card)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into an --out that holds files the export did not write (never into a run folder); without it, "
        "--out must be new, empty or hold only earlier exports (recorded in its jpeg-robust-output.json)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the export, print each file written and each warning (stderr); bad input prints one line, returns 2."""
    from ..export import ExportError, export_run

    if args.run and args.run_positional and args.run != args.run_positional:
        print(
            f"jpeg-robust export: error: two run folders ({args.run}, {args.run_positional}); give one", file=sys.stderr
        )
        return EXIT_USAGE
    run_dir = args.run or args.run_positional
    if run_dir is None:
        print("jpeg-robust export: error: which run folder? give --run RUN", file=sys.stderr)
        return EXIT_USAGE
    try:
        written, warnings = export_run(run_dir, args.format, args.out, args.arms, force=args.force)
    except ExportError as err:
        print(f"jpeg-robust export: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    for warning in warnings:
        print(f"jpeg-robust export: warning: {warning}", file=sys.stderr)
    for path in written:
        print(path)
    return 0
