"""``jpeg-robust train``: a paired baseline + JPEG-DL run with the same seed and recipe."""

from __future__ import annotations

import argparse

from ..config import ARM_NAMES, RunOptions, TrainConfig
from ..data import DATASETS
from ..jpeg import JpegConfig
from ..jpeg.layer import Q_INITS


def _arms(text: str) -> tuple[str, ...]:
    arms = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in arms if a not in ARM_NAMES]
    if bad or not arms:
        raise argparse.ArgumentTypeError(f"arms must be a comma list of {', '.join(ARM_NAMES)}; got {text!r}")
    return arms


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"milestones must be a comma list of epochs, got {text!r}") from exc


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-100-python/ (torchvision format)")
    parser.add_argument("--download", action="store_true", help="let torchvision download CIFAR-100 when absent")
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"), help="bf16 autocast (auto: CUDA)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False, help="torch.compile")
    parser.add_argument("--eval-batch-size", type=int, default=1000)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MIN",
        help="stop cleanly after MIN minutes (checkpoint written); continue later with --resume",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=float,
        default=300.0,
        metavar="S",
        help="also checkpoint inside an epoch every S seconds (0: epoch ends only)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        device=args.device,
        data_dir=args.data_dir,
        download=args.download,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        eval_batch_size=args.eval_batch_size,
        time_limit_s=args.time_limit * 60 if args.time_limit else None,
        checkpoint_every_s=args.checkpoint_every,
        progress=not args.no_progress,
        train_subset=getattr(args, "train_subset", None),
    )


def add_parser(subparsers) -> None:
    from ..models import list_models

    p = subparsers.add_parser("train", help="train a baseline / JPEG-DL pair (paper recipe by default)")
    p.add_argument(
        "--model",
        default="resnet56",
        choices=list_models(),
        metavar="MODEL",
        help=f"architecture: {', '.join(list_models())}",
    )
    p.add_argument("--dataset", default="cifar100", choices=DATASETS)
    p.add_argument("--epochs", type=int, default=240)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="SGD lr (default: the paper's for the model)")
    p.add_argument(
        "--milestones",
        type=_milestones,
        default=None,
        help="lr x0.1 after these epochs (default: 150,180,210 scaled to --epochs)",
    )
    p.add_argument("--jpeg-lr", type=float, default=0.003)
    p.add_argument("--jpeg-lr-schedule", default="constant", choices=("constant", "step"))
    p.add_argument("--alpha", type=float, default=5.0, help="soft-quantizer softness (fixed)")
    p.add_argument("--window", type=int, default=5, help="soft-quantizer window; 0 = full alphabet")
    p.add_argument("--q-init", default="paper", choices=Q_INITS)
    p.add_argument("--q-max", type=float, default=10.0)
    p.add_argument("--chroma-offset", type=float, default=0.5, help="0.5 as the official code; 0.0 = standard JPEG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", type=_arms, default=ARM_NAMES, help="comma list: baseline,jpegdl (default both)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (refuses a changed recipe)")
    p.add_argument("--train-subset", type=int, default=None, metavar="K",
                   help="train on the first K training images only (smoke runs, tests; recorded in the card)")
    add_run_options(p)
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    jpeg = JpegConfig(
        alpha=args.alpha,
        window=args.window or None,
        q_init=args.q_init,
        q_max=args.q_max,
        chroma_offset=args.chroma_offset,
    )
    return TrainConfig(
        model=args.model,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        milestones=args.milestones,
        jpeg_lr=args.jpeg_lr,
        jpeg_lr_schedule=args.jpeg_lr_schedule,
        jpeg=jpeg,
        seed=args.seed,
        arms=args.arms,
    )


def print_results(results: dict) -> None:
    for arm, result in results.items():
        acc = f"{result.clean_top1 * 100:.2f}%" if result.clean_top1 is not None else "n/a"
        print(f"  {arm:9s} {result.status:9s} epochs {result.epochs_done:4d}  clean top-1 {acc}  -> {result.arm_dir}")


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..train import train_pair
    from . import record_command

    config = config_from_args(args)
    options = run_options(args)
    try:  # under torchrun: DistributedDataParallel; rank 0 writes and reports
        results = train_pair(config, args.out, options, resume=args.resume)
        main = distributed.is_main()
    finally:
        distributed.cleanup()
    if not main:
        return 0
    record_command(args.out, args.argv)
    print(f"run folder: {args.out}")
    print_results(results)
    if any(r.status == "paused" for r in results.values()):
        print("stopped by --time-limit; continue with the same command plus --resume")
    return 0
