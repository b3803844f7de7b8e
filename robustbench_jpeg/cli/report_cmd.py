"""``jpeg-robust report``: build a report folder from one or more run folders (or a report's data/ folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser = subparsers.add_parser(
        "report",
        help="tables, figures and report.md/report.html from run folders",
        description="Build a report from run folders: the answer first (worst case over every attack, JPEG-DL vs "
        "baseline, paired 95% intervals, raw and Holm p-values), control arms, one table per attack, LaTeX tables "
        "(tables/*.tex), figures, sanity checks, conclusion. Give --run several times for several seeds or models; a "
        "previous report's data/ folder is accepted too (see docs/report.md).",
        epilog="examples:\n"
        "  jpeg-robust report --run runs/r56-s0 --run runs/r56-s1 --run runs/r56-s2 --out reports/resnet56\n"
        "  jpeg-robust report --run reports/cifar100-resnet20-cpu/data --out /tmp/regenerated\n"
        "exit status: 0 done, 2 bad input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--run",
        action="append",
        required=True,
        type=Path,
        metavar="DIR",
        help="run folder, or a report's data/ folder (repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="report folder to write")
    parser.add_argument("--title", default=None, help="report title (default: model, dataset and seeds)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into an --out that holds files the report did not write (never into a run folder); without it, "
        "--out must be new, empty or hold only an earlier report (recorded in its jpeg-robust-output.json)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the report and print the path of report.md; input errors print a message and return 2."""
    import warnings

    from ..report import ReportInputError, build_report
    from ..runfolder import StoreWarning

    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StoreWarning)
        try:
            path = build_report(args.run, args.out, title=args.title, force=args.force)
        except ReportInputError as err:
            error = err
    for w in caught:  # a run folder's notices: one line each
        if issubclass(w.category, StoreWarning):
            print(f"jpeg-robust report: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if error is not None:
        print(f"jpeg-robust report: error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0
