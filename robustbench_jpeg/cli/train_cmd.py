"""``jpeg-robust train``: a paired run (baseline + JPEG arms) with the same seed, data order and recipe.

Every flag defaults to None here and takes its default from the dataclasses (``TrainConfig``, ``JpegConfig``,
``RunOptions``), so the help text and the library can never disagree.
"""

from __future__ import annotations

import argparse
import sys

from ..config import COMPILE_MODES, RunOptions, TrainConfig, default_of, recipe_config
from ..data import DATASETS
from ..jpeg import JpegConfig
from ..jpeg.layer import Q_INITS
from ..runfolder import ARMS
from . import EXIT_PAUSED, Examples, finite_float, positive_float, positive_int

EXAMPLES = Examples(
    "jpeg-robust train --model resnet56 --data-dir ~/data/cifar100 --seed 0 --out runs/r56-s0",
    "jpeg-robust train --model resnet20 --dataset cifar100-mini --epochs 5 --out runs/r20-mini --time-limit 30",
    "jpeg-robust train --model resnet56 --data-dir ~/data/cifar100 --out runs/r56-s0 --resume",
    "jpeg-robust train --model resnet56 --data-dir ~/data/cifar100 --seeds 0,1,2 --cuda-graph --out runs/r56  "
    "# runs/r56/seed0 ...",
    "jpeg-robust train --model resnet56 --data-dir ~/data/cifar100 --seeds 0,1,2 --out 'runs/r56-s{seed}'",
)


def _arms(text: str) -> tuple[str, ...]:
    arms = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise argparse.ArgumentTypeError(f"arms must be a comma list of {', '.join(ARMS)}; got {text!r}")
    return arms


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"milestones must be a comma list of epochs, got {text!r}") from exc


MAX_SEEDS = 64  # seeds trained together in one process (each holds its models and optimisers in memory)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be a comma list of integers, got {text!r}") from None
    if not seeds or any(s < 0 or s >= 2**32 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct integers in [0, 2^32), got {text[:60]!r}")
    if len(seeds) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(
            f"--seeds lists {len(seeds)} seeds; at most {MAX_SEEDS} train in one process: split them over several "
            "commands (e.g. --seeds 0,1,2 then --seeds 3,4,5)"
        )
    return seeds


def _non_negative(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _d(cls, name: str) -> str:
    return f"(default {default_of(cls, name)})"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The flags of :class:`RunOptions` (how a run executes; they may change between sittings)."""
    parser.add_argument(
        "--device", default=None, help=f"auto (CUDA when available), cpu, cuda or cuda:N {_d(RunOptions, 'device')}"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding cifar-100-python/ in torchvision's format (default $RBJ_DATA_DIR or "
        "~/.cache/robustbench_jpeg/cifar100)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        default=None,
        help="let torchvision download CIFAR-100 when it is absent (needs the internet)",
    )
    parser.add_argument(
        "--amp",
        default=None,
        choices=("auto", "bf16", "off"),
        help=f"bf16 autocast for the backbone; auto = on CUDA and on CPUs with bf16 units {_d(RunOptions, 'amp')}",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels_last memory format (default: where --amp auto picks bf16)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model (static shapes) (default off)",
    )
    parser.add_argument(
        "--compile-mode",
        default=None,
        choices=COMPILE_MODES,
        help=f"torch.compile mode {_d(RunOptions, 'compile_mode')}",
    )
    parser.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay the whole training step as one CUDA graph (docs/gpu.md); where it cannot be "
        "captured (CPU, torchrun, --compile) training runs eagerly with a warning (default off)",
    )
    _add_run_limits(parser)


def _add_run_limits(parser: argparse.ArgumentParser) -> None:
    """Evaluation batch, time limit, checkpoint cadence and progress output."""
    parser.add_argument(
        "--eval-batch-size",
        type=positive_int,
        default=None,
        help=f"batch size of the test-set evaluation {_d(RunOptions, 'eval_batch_size')}",
    )
    parser.add_argument(
        "--time-limit",
        type=positive_float,
        default=None,
        metavar="MIN",
        help=f"stop cleanly after MIN minutes (checkpoint written, exit status {EXIT_PAUSED}); "
        "continue later with --resume",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=_non_negative,
        default=None,
        metavar="S",
        help="also checkpoint inside an epoch every S seconds; 0 = at epoch ends only "
        f"{_d(RunOptions, 'checkpoint_every_s')}",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar; one line per epoch instead (also without a terminal)",
    )


def run_options(args: argparse.Namespace) -> RunOptions:
    given = {
        "device": args.device,
        "data_dir": args.data_dir,
        "download": args.download,
        "amp": args.amp,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "compile_mode": args.compile_mode,
        "cuda_graph": args.cuda_graph,
        "eval_batch_size": args.eval_batch_size,
        "time_limit_s": args.time_limit * 60 if args.time_limit is not None else None,
        "checkpoint_every_s": args.checkpoint_every,
        "progress": not args.no_progress,
        "train_subset": getattr(args, "train_subset", None),
    }
    return RunOptions(**{k: v for k, v in given.items() if v is not None})


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a baseline / JPEG-DL pair (paper recipe by default)",
        description="Train the arms of a paired run with the same seed, initialisation, data order, augmentation "
        "and recipe (the paper's CIFAR-100 recipe by default: SGD 0.05, batch 64, 240 epochs, x0.1 at 150/180/210; "
        "JPEG tables Adam 0.003). Checkpoints are resumable, also mid-epoch.",
        epilog=EXAMPLES.text() + f"\nexit status: 0 finished, 2 bad input, {EXIT_PAUSED} paused by --time-limit "
        "(resume with --resume), 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ..models import list_models

    p.add_argument(
        "--model",
        default=None,
        choices=list_models(),
        metavar="MODEL",
        help=f"architecture: {', '.join(list_models())} {_d(TrainConfig, 'model')}",
    )
    p.add_argument(
        "--dataset",
        default=None,
        choices=DATASETS,
        help=f"cifar100 (torchvision files in --data-dir) or cifar100-mini (embedded) {_d(TrainConfig, 'dataset')}",
    )
    _add_recipe(p)
    _add_jpeg_layer(p)
    _add_seeds_arms_and_folder(p)
    add_run_options(p)
    p.set_defaults(handler=run)


def _recipe_help() -> str:
    from ..config import RECIPES

    cpu = ", ".join(f"{k} {v}" for k, v in RECIPES["cpu"].items())
    return (
        "named recipe: paper (the paper's CIFAR-100 recipe) or cpu (a small CNN in CPU time: "
        f"{cpu}; the JPEG tables keep Adam 0.003 and alpha); options given explicitly override it (default paper)"
    )


def _add_recipe(p: argparse.ArgumentParser) -> None:
    """The training recipe of both arms: epochs, batch, SGD, schedule, the JPEG tables' optimiser."""
    from ..config import RECIPES, SCHEDULES

    p.add_argument("--recipe", default="paper", choices=tuple(RECIPES), help=_recipe_help())
    p.add_argument("--epochs", type=positive_int, default=None, help=f"epochs {_d(TrainConfig, 'epochs')}")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"batch size {_d(TrainConfig, 'batch_size')}")
    p.add_argument(
        "--lr", type=positive_float, default=None, help="SGD learning rate (default: the paper's for the model)"
    )
    p.add_argument("--momentum", type=_non_negative, default=None, help=f"SGD momentum {_d(TrainConfig, 'momentum')}")
    p.add_argument(
        "--weight-decay", type=_non_negative, default=None, help=f"SGD weight decay {_d(TrainConfig, 'weight_decay')}"
    )
    p.add_argument(
        "--milestones",
        type=_milestones,
        default=None,
        help="lr x gamma after these epochs (default: 150,180,210 scaled to --epochs)",
    )
    p.add_argument("--gamma", type=positive_float, default=None, help=f"lr decay factor {_d(TrainConfig, 'gamma')}")
    p.add_argument(
        "--schedule",
        default=None,
        choices=SCHEDULES,
        help="step (--milestones, --gamma) or cosine (linear warm-up, then cosine decay) "
        f"{_d(TrainConfig, 'schedule')}",
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=None,
        help=f"linear warm-up epochs of the cosine schedule {_d(TrainConfig, 'warmup_epochs')}",
    )
    p.add_argument(
        "--label-smoothing",
        type=_non_negative,
        default=None,
        help=f"label smoothing of the training loss {_d(TrainConfig, 'label_smoothing')}",
    )
    p.add_argument(
        "--nesterov",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"Nesterov momentum {_d(TrainConfig, 'nesterov')}",
    )
    p.add_argument(
        "--jpeg-lr",
        type=_non_negative,
        default=None,
        help=f"Adam learning rate of the JPEG tables {_d(TrainConfig, 'jpeg_lr')}",
    )
    p.add_argument(
        "--jpeg-lr-schedule",
        default=None,
        choices=("constant", "step"),
        help=f"constant, or decayed like the backbone {_d(TrainConfig, 'jpeg_lr_schedule')}",
    )


def _add_jpeg_layer(p: argparse.ArgumentParser) -> None:
    """The JPEG-DL layer: softness, window, initial tables."""
    p.add_argument(
        "--alpha", type=positive_float, default=None, help=f"soft-quantizer softness, fixed {_d(JpegConfig, 'alpha')}"
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help=f"soft-quantizer window; 0 = the full alphabet {_d(JpegConfig, 'window')}",
    )
    p.add_argument(
        "--q-init",
        default=None,
        choices=Q_INITS,
        help=f"initial tables: the authors' (paper), IJG standard, constant, or from this run's own "
        f"baseline (sensitivity) {_d(JpegConfig, 'q_init')}",
    )
    p.add_argument(
        "--q-max",
        type=positive_float,
        default=None,
        help=f"largest initial luma step (paper, sensitivity) {_d(JpegConfig, 'q_max')}",
    )
    p.add_argument(
        "--quality",
        type=positive_int,
        default=None,
        help=f"IJG quality of --q-init standard {_d(JpegConfig, 'quality')}",
    )
    p.add_argument(
        "--chroma-offset",
        type=finite_float,
        default=None,
        help=f"0.5 as the official code; 0.0 = standard JPEG {_d(JpegConfig, 'chroma_offset')}",
    )


def _add_seeds_arms_and_folder(p: argparse.ArgumentParser) -> None:
    """Seeds, arms, the run folder, resuming and the training subset."""
    seed = p.add_mutually_exclusive_group()
    seed.add_argument(
        "--seed", type=int, default=None, help=f"seed of weights, data order, augmentation {_d(TrainConfig, 'seed')}"
    )
    seed.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        metavar="S,S,...",
        help="train every arm of every seed concurrently in one process, one run folder per seed: "
        "OUT/seed{S}, or OUT with {seed} replaced (docs/gpu.md)",
    )
    p.add_argument(
        "--arms",
        type=_arms,
        default=None,
        help=f"comma list of arms to train: {', '.join(ARMS)} (default {','.join(TrainConfig.arms)})",
    )
    p.add_argument(
        "--out",
        required=True,
        help="run folder to write (created); with --seeds the parent of the "
        "seed{S} folders, or a template holding {seed}",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (refuses a changed recipe)")
    p.add_argument(
        "--train-subset",
        type=positive_int,
        default=None,
        metavar="K",
        help="train on the first K training images only (smoke runs, tests; recorded in the card)",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    jpeg_given = {
        "alpha": args.alpha,
        "q_init": args.q_init,
        "q_max": args.q_max,
        "quality": args.quality,
        "chroma_offset": args.chroma_offset,
    }
    jpeg = {k: v for k, v in jpeg_given.items() if v is not None}
    if args.window is not None:
        jpeg["window"] = args.window or None
    train_given = {
        "model": args.model,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "momentum": args.momentum,
        "weight_decay": args.weight_decay,
        "milestones": args.milestones,
        "gamma": args.gamma,
        "jpeg_lr": args.jpeg_lr,
        "jpeg_lr_schedule": args.jpeg_lr_schedule,
        "schedule": args.schedule,
        "warmup_epochs": args.warmup_epochs,
        "label_smoothing": args.label_smoothing,
        "nesterov": args.nesterov,
        "seed": args.seed,
        "arms": args.arms,
    }
    given = {k: v for k, v in train_given.items() if v is not None}
    return recipe_config(args.recipe, jpeg=JpegConfig(**jpeg), **given)


def print_results(results: dict) -> None:
    for arm, result in results.items():
        acc = f"{result.clean_top1 * 100:.2f}%" if result.clean_top1 is not None else "n/a"
        print(f"  {arm:13s} {result.status:9s} epochs {result.epochs_done:4d}  clean top-1 {acc}  -> {result.arm_dir}")


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..train import seed_run_dirs, train_group, train_pair
    from . import record_command

    config = config_from_args(args)
    options = run_options(args)
    if args.seeds is not None:
        groups = train_group(config, args.seeds, args.out, options, resume=args.resume)
        statuses = []
        for seed, run_dir in seed_run_dirs(args.out, args.seeds).items():
            record_command(run_dir, args.argv)
            print(f"run folder (seed {seed}): {run_dir}")
            print_results(groups[seed])
            statuses += [r.status for r in groups[seed].values()]
    else:
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
        statuses = [r.status for r in results.values()]
    if "paused" in statuses:
        print(
            f"stopped by --time-limit; continue with the same command plus --resume (exit status {EXIT_PAUSED})",
            file=sys.stderr,
        )
        return EXIT_PAUSED
    return 0
