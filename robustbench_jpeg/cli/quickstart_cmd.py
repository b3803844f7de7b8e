"""``jpeg-robust quickstart``: the whole job, CPU-sized, on the embedded real data.

Trains a small baseline / JPEG-DL pair (resnet8) on ``cifar100-mini`` (4,000 genuine CIFAR-100 training images,
1,000 test images), attacks both arms with the ``quick`` spec (attacks/quick.yaml) and writes a comparison report.
``--arms`` adds the control arms. Rerunning it continues or reuses what is already there.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from ..config import RunOptions, TrainConfig
from ..runfolder import ARMS, DEFAULT_ARMS
from . import Examples, plain_help, positive_int

QUICKSTART_MODEL = "resnet8"
QUICKSTART_EPOCHS = 8
QUICKSTART_MILESTONES = (6,)
EXAMPLES = Examples(
    "jpeg-robust quickstart",
    "jpeg-robust quickstart --arms baseline,jpegdl,jpeg-frozen,jpeg-standard --out runs/quickstart-controls",
)


def add_parser(subparsers) -> None:
    from .train_cmd import _arms

    p = subparsers.add_parser(
        "quickstart",
        help="train, attack and report a small pair on the embedded mini data set (CPU, minutes)",
        description=plain_help(__doc__.split("\n\n", 1)[1]),
        epilog=EXAMPLES.text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/quickstart", help="run folder (default runs/quickstart)")
    p.add_argument("--report-out", default=None, help="report folder (default OUT/report)")
    p.add_argument(
        "--epochs", type=positive_int, default=QUICKSTART_EPOCHS, help=f"training epochs (default {QUICKSTART_EPOCHS})"
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument(
        "--arms",
        type=_arms,
        default=DEFAULT_ARMS,
        help=f"arms to train and attack, from {', '.join(ARMS)} (default {','.join(DEFAULT_ARMS)})",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars; one line per epoch and cell")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..attack.methods import engine
    from ..report import build_report
    from ..sweep import SanityCheckWarning, quick_sweep
    from ..train import train_pair
    from . import record_command
    from .train_cmd import print_results

    engine()  # no attack engine: a one-line error now, not after the training
    started = time.monotonic()
    out = Path(args.out)
    milestones = tuple(m for m in QUICKSTART_MILESTONES if m < args.epochs) or None
    config = TrainConfig(
        model=QUICKSTART_MODEL,
        dataset="cifar100-mini",
        epochs=args.epochs,
        milestones=milestones,
        seed=args.seed,
        arms=args.arms,
    )
    options = RunOptions(device=args.device, progress=not args.no_progress)
    resume = (out / "config.json").exists()
    print(f"[1/3] training a {QUICKSTART_MODEL} {' / '.join(args.arms)} run on cifar100-mini ({args.epochs} epochs)")
    results = train_pair(config, out, options, resume=resume)
    record_command(out, args.argv)
    print_results(results)
    print("[2/3] attacking every arm with the quick spec (attacks/quick.yaml)")
    with warnings.catch_warnings():  # the verdict is printed below; no duplicate warning text
        warnings.simplefilter("ignore", SanityCheckWarning)
        table = quick_sweep(out, device=args.device, progress=not args.no_progress)
    print(f"      sanity checks: {table.attrs['verdict']}")
    for arm, masking in table.attrs.get("masking", {}).items():
        print(f"      masking of {arm}'s white-box numbers: {masking['status']} ({masking['reason']})")
    print("[3/3] writing the report")
    report = build_report([out], args.report_out or out / "report", title="Quickstart: resnet8 on cifar100-mini")
    minutes = (time.monotonic() - started) / 60
    print(f"done in {minutes:.1f} min. run folder: {out}")
    print(f"report: {report}  (and {report.with_suffix('.html')})")
    return 0
