"""Does bf16 training hurt accuracy? The same pair trained twice, float32 and ``--amp auto``, compared image by image.

    OMP_NUM_THREADS=1 python benchmarks/cpu_bf16_accuracy.py --model resnet20 --epochs 3 --train-subset 10000

Both trainings use the same recipe (``--recipe``, default ``cpu``), seed, data order and augmentation; only the
precision differs: float32 NCHW, or what ``--amp auto`` picks on this CPU (bf16 autocast + channels_last on CPUs
with bf16 matrix units, the JPEG layer in float32). Each trained model is then scored in exact float32 on the whole
test split, and for each arm the two models' per-image correctness is compared with an exact McNemar test (the
same test images, so the paired test is the right one: it looks only at the images the two models disagree on).
Accuracies carry Wilson 95% intervals. Prints the training time ratio too. Rows go to benchmarks/results.csv (not
with ``--no-save``) and $OUT. Needs the genuine CIFAR-100 (``--data-dir`` or $RBJ_DATA_DIR) unless
``--dataset cifar100-mini``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result  # noqa: E402
from robustbench_jpeg import load_model  # noqa: E402
from robustbench_jpeg.config import RECIPES, RunOptions, recipe_config  # noqa: E402
from robustbench_jpeg.data import load_split  # noqa: E402
from robustbench_jpeg.device import cpu_has_bf16_matmul  # noqa: E402
from robustbench_jpeg.stats import mcnemar_exact_p, wilson_interval  # noqa: E402
from robustbench_jpeg.train import train_pair  # noqa: E402
from robustbench_jpeg.train.evaluate import evaluate  # noqa: E402

PRECISIONS = {"fp32": dict(amp="off", channels_last=False), "auto": dict(amp="auto", channels_last=None)}


def train_both(args: argparse.Namespace, root: Path) -> dict[str, tuple[Path, float]]:
    """The pair trained once per precision: run folder and wall seconds."""
    config = recipe_config(
        args.recipe, model=args.model, dataset=args.dataset, epochs=args.epochs, seed=args.seed, arms=args.arms
    )
    out = {}
    for name, precision in PRECISIONS.items():
        options = RunOptions(
            device="cpu",
            data_dir=args.data_dir,
            progress=False,
            checkpoint_every_s=0,
            train_subset=args.train_subset,
            **precision,
        )
        start = time.perf_counter()
        train_pair(config, root / name, options)
        out[name] = (root / name, time.perf_counter() - start)
    return out


def compare_arm(runs: dict[str, tuple[Path, float]], arm: str, test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Per-image correctness of the arm's two models in float32 and the exact McNemar test between them."""
    flags = {name: evaluate(load_model(run / arm), *test)[1].numpy() for name, (run, _) in runs.items()}
    fp32, auto = flags["fp32"], flags["auto"]
    b, c = int((fp32 & ~auto).sum()), int((~fp32 & auto).sum())
    n = fp32.size
    row = {"arm": arm, "n_test": n, "only_fp32_correct": b, "only_auto_correct": c, "mcnemar_p": mcnemar_exact_p(b, c)}
    for name, f in flags.items():
        lo, hi = wilson_interval(int(f.sum()), n)
        row |= {f"{name}_acc": float(f.mean()), f"{name}_lo": lo, f"{name}_hi": hi}
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", default="cifar100", choices=("cifar100", "cifar100-mini"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--recipe", default="cpu", choices=tuple(RECIPES))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-subset", type=int, default=10000, help="first K training images (the test split is whole)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    args.arms = tuple(args.arms.split(","))
    units = "yes" if cpu_has_bf16_matmul() else "no (auto is float32 here: the comparison shows nothing)"
    print(
        f"bf16 vs fp32 accuracy: {args.model}, {args.recipe} recipe, {args.epochs} epochs on {args.train_subset} images"
    )
    print(f"  {torch.get_num_threads()} thread(s); bf16 matrix units: {units}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = train_both(args, Path(tmp))
        test = load_split(args.dataset, train=False, data_dir=args.data_dir)
        seconds = {name: s for name, (_, s) in runs.items()}
        ratio = seconds["fp32"] / seconds["auto"]
        print(f"  training: fp32 {seconds['fp32']:.0f} s, auto {seconds['auto']:.0f} s, x{ratio:.2f}")
        for arm in args.arms:
            row = compare_arm(runs, arm, test)
            print(
                f"  {arm:9s} fp32 {100 * row['fp32_acc']:.2f}% [{100 * row['fp32_lo']:.2f}, {100 * row['fp32_hi']:.2f}]"
                f"   auto {100 * row['auto_acc']:.2f}% [{100 * row['auto_lo']:.2f}, {100 * row['auto_hi']:.2f}]"
                f"   disagree {row['only_fp32_correct']} / {row['only_auto_correct']} images,"
                f" exact McNemar p = {row['mcnemar_p']:.3g}"
            )
            append_result(
                {
                    "benchmark": "cpu_bf16_accuracy",
                    "model": args.model,
                    "recipe": args.recipe,
                    "epochs": args.epochs,
                    "train_subset": args.train_subset,
                    "bf16_units": cpu_has_bf16_matmul(),
                    "fp32_train_s": seconds["fp32"],
                    "auto_train_s": seconds["auto"],
                    **row,
                },
                save=not args.no_save,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
