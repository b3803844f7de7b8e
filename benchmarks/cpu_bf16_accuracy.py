"""Does bf16 training hurt accuracy? The same pair trained in float32 and with ``--amp auto``, for two seeds, compared
image by image, with the seed-to-seed difference as the yardstick.

    OMP_NUM_THREADS=1 python benchmarks/cpu_bf16_accuracy.py --model resnet20 --epochs 3 --train-subset 10000

For every seed of ``--seeds`` (default 0,1) the pair trains twice with the same recipe (``--recipe``, default
``cpu``), data order and augmentation; only the precision differs: float32 NCHW, or what ``--amp auto`` picks on this
CPU (bf16 autocast + channels_last on CPUs with bf16 matrix units, the JPEG layer in float32). Every model is then
scored in exact float32 on the whole test split. Two trainings that differ in anything (precision, or the seed)
end in different models, which an exact McNemar test on the same test images will often tell apart; so the
question is not "do they differ" but "does precision move accuracy more than the training seed does, and in one
direction". Per arm the script prints each model's accuracy with its Wilson 95% interval, then the pairs that differ
in precision only (same seed) and the pairs that differ in seed only (same precision): accuracy difference,
discordant images and the exact McNemar p; then the precision effect averaged over the seeds with the exact
sign-flip test pooled over them (the report's test for several seeds: on the same test images, is fp32 better or
worse than auto consistently across the seeds?). Prints the training time ratio too. Rows go to
benchmarks/results.csv (not with ``--no-save``) and $OUT. Needs the genuine CIFAR-100 (``--data-dir`` or
$RBJ_DATA_DIR) unless ``--dataset cifar100-mini``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result  # noqa: E402
from robustbench_jpeg import load_model  # noqa: E402
from robustbench_jpeg.config import RECIPES, RunOptions, recipe_config  # noqa: E402
from robustbench_jpeg.data import load_split  # noqa: E402
from robustbench_jpeg.device import cpu_has_bf16_matmul  # noqa: E402
from robustbench_jpeg.stats import mcnemar_exact_p, pooled_sign_flip_p, wilson_interval  # noqa: E402
from robustbench_jpeg.train import train_pair  # noqa: E402
from robustbench_jpeg.train.evaluate import evaluate  # noqa: E402

PRECISIONS = {"fp32": dict(amp="off", channels_last=False), "auto": dict(amp="auto", channels_last=None)}


def train_all(args: argparse.Namespace, root: Path) -> dict[tuple[str, int], tuple[Path, float]]:
    """The pair trained once per (precision, seed): run folder and wall seconds."""
    out = {}
    for seed, (name, precision) in itertools.product(args.seeds, PRECISIONS.items()):
        config = recipe_config(
            args.recipe, model=args.model, dataset=args.dataset, epochs=args.epochs, seed=seed, arms=args.arms
        )
        options = RunOptions(
            device="cpu",
            data_dir=args.data_dir,
            progress=False,
            checkpoint_every_s=0,
            train_subset=args.train_subset,
            **precision,
        )
        start = time.perf_counter()
        train_pair(config, root / f"{name}-seed{seed}", options)
        out[(name, seed)] = (root / f"{name}-seed{seed}", time.perf_counter() - start)
    return out


def compare(flags: dict, a: tuple[str, int], b: tuple[str, int]) -> dict:
    """Two models' per-image correctness: accuracy difference, discordant counts, exact McNemar p."""
    x, y = flags[a], flags[b]
    only_a, only_b = int((x & ~y).sum()), int((~x & y).sum())
    return {
        "first": f"{a[0]} seed {a[1]}",
        "second": f"{b[0]} seed {b[1]}",
        "differs_in": "precision" if a[1] == b[1] else "seed",
        "acc_diff": float(x.mean() - y.mean()),
        "only_first": only_a,
        "only_second": only_b,
        "mcnemar_p": mcnemar_exact_p(only_a, only_b),
    }


def report_arm(args, runs, arm: str, test) -> list[dict]:
    """Print and return the arm's models and its precision-only and seed-only comparisons."""
    flags = {key: evaluate(load_model(run / arm), *test)[1].numpy() for key, (run, _) in runs.items()}
    n = next(iter(flags.values())).size
    for (name, seed), f in flags.items():
        lo, hi = wilson_interval(int(f.sum()), n)
        print(f"  {arm:9s} {name} seed {seed}: {100 * f.mean():.2f}% [{100 * lo:.2f}, {100 * hi:.2f}] of {n}")
    pairs = [((p, s), (q, s)) for s in args.seeds for p, q in itertools.combinations(PRECISIONS, 2)]
    pairs += [((p, s), (p, t)) for p in PRECISIONS for s, t in itertools.combinations(args.seeds, 2)]
    rows = [compare(flags, a, b) for a, b in pairs]
    for r in rows:
        print(
            f"    {r['first']} - {r['second']} ({r['differs_in']} only): {100 * r['acc_diff']:+.2f} points, "
            f"discordant {r['only_first']} / {r['only_second']}, exact McNemar p = {r['mcnemar_p']:.3g}"
        )
    effect, p = precision_effect(flags, args.seeds)
    print(
        f"    precision effect (fp32 - auto, averaged over the seeds): {100 * effect:+.2f} points; pooled over the "
        f"seeds, exact sign-flip test over images p = {p:.3g}"
    )
    return [{"arm": arm, "n_test": n, "precision_effect": effect, "precision_pooled_p": p, **r} for r in rows]


def precision_effect(flags: dict, seeds: list[int]) -> tuple[float, float]:
    """fp32 minus auto accuracy averaged over the seeds, and the exact test pooled over them (the report's test
    for several seeds, stats.pooled_sign_flip_p): is there a precision effect common to the seeds?"""
    deltas = [flags[("fp32", s)].astype(np.int8) - flags[("auto", s)].astype(np.int8) for s in seeds]
    return float(np.mean([d.mean() for d in deltas])), pooled_sign_flip_p(deltas)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", default="cifar100", choices=("cifar100", "cifar100-mini"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--recipe", default="cpu", choices=tuple(RECIPES))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-subset", type=int, default=10000, help="first K training images (the test split is whole)")
    p.add_argument("--seeds", default="0,1", help="comma list; two or more give the seed-only yardstick")
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    args.arms, args.seeds = tuple(args.arms.split(",")), [int(s) for s in args.seeds.split(",")]
    units = "yes" if cpu_has_bf16_matmul() else "no (auto is float32 here: the comparison shows nothing)"
    print(
        f"bf16 vs fp32 accuracy: {args.model}, {args.recipe} recipe, {args.epochs} epochs on {args.train_subset} images"
    )
    print(f"  seeds {args.seeds}; {torch.get_num_threads()} thread(s); bf16 matrix units: {units}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = train_all(args, Path(tmp))
        seconds = {name: sum(s for (n, _), (_, s) in runs.items() if n == name) for name in PRECISIONS}
        ratio = seconds["fp32"] / seconds["auto"]
        print(f"  training: fp32 {seconds['fp32']:.0f} s, auto {seconds['auto']:.0f} s, x{ratio:.2f}")
        test = load_split(args.dataset, train=False, data_dir=args.data_dir)
        for arm in args.arms:
            for row in report_arm(args, runs, arm, test):
                extra = {"model": args.model, "recipe": args.recipe, "epochs": args.epochs}
                extra |= {"train_subset": args.train_subset, "bf16_units": cpu_has_bf16_matmul()}
                extra |= {"fp32_train_s": seconds["fp32"], "auto_train_s": seconds["auto"]}
                append_result({"benchmark": "cpu_bf16_accuracy", **extra, **row}, save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
