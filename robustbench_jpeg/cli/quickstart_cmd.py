"""``jpeg-robust quickstart``: the whole job, CPU-sized, on the embedded real data.

Trains a small baseline / JPEG-DL pair (resnet8) on ``cifar100-mini`` (4,000 genuine CIFAR-100 training
images, 1,000 test images), attacks both arms with a short FGSM + PGD sweep (soft and BPDA gradients), and
writes a comparison report. Rerunning it continues or reuses what is already there.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from ..config import RunOptions, TrainConfig

QUICKSTART_MODEL = "resnet8"
QUICKSTART_EPOCHS = 8
QUICKSTART_MILESTONES = (6,)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "quickstart", help="train, attack and report a small pair on the embedded mini data set (CPU, minutes)"
    )
    p.add_argument("--out", default="runs/quickstart", help="run folder (default: runs/quickstart)")
    p.add_argument("--report-out", default=None, help="report folder (default: <out>/report)")
    p.add_argument("--epochs", type=int, default=QUICKSTART_EPOCHS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..attack import quick_sweep, verdict
    from ..attack.methods import engine as _engine
    from ..attack.checks import Check
    from ..attack.sweep import SanityCheckWarning
    from ..provenance import read_json
    from ..report import build_report
    from ..train import train_pair
    from . import record_command
    from .train_cmd import print_results

    _engine()  # no torchattacks: a one-line error now, not after the training
    started = time.monotonic()
    out = Path(args.out)
    milestones = tuple(m for m in QUICKSTART_MILESTONES if m < args.epochs) or None
    config = TrainConfig(
        model=QUICKSTART_MODEL, dataset="cifar100-mini", epochs=args.epochs, milestones=milestones, seed=args.seed
    )
    options = RunOptions(device=args.device, progress=not args.no_progress)
    resume = (out / "config.json").exists()
    print(f"[1/3] training a {QUICKSTART_MODEL} baseline / JPEG-DL pair on cifar100-mini ({args.epochs} epochs)")
    results = train_pair(config, out, options, resume=resume)
    record_command(out, args.argv)
    print_results(results)
    print("[2/3] attacking both arms: FGSM and PGD-5 at 1, 2, 4, 8/255 (soft and BPDA gradients)")
    with warnings.catch_warnings():  # the verdict is printed below; no duplicate warning text
        warnings.simplefilter("ignore", SanityCheckWarning)
        quick_sweep(out, device=args.device, progress=not args.no_progress)
    checks_file = out / "checks.json"
    if checks_file.exists():
        checks = [Check(**c) for c in read_json(checks_file)["checks"]]
        print(f"      sanity checks: {verdict(checks)}")
    print("[3/3] writing the report")
    report = build_report([out], args.report_out or out / "report", title="Quickstart: resnet8 on cifar100-mini")
    minutes = (time.monotonic() - started) / 60
    print(f"done in {minutes:.1f} min. run folder: {out}")
    print(f"report: {report}  (and {report.with_suffix('.html')})")
    return 0
