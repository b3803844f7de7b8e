"""What the radius cascade saves: one attack spec run plain and as a radius cascade on the same arm, side by side.

    python benchmarks/attack_cascade.py --run runs/r20-s0 --arm baseline --spec autoattack --n 200

The arm (its checkpoint and card) is copied into two temporary run folders; the spec runs in one with every attack
plain (``cascade: false``: each radius attacks every clean-correct image) and in the other as a radius cascade
(``cascade: true``: each radius attacks only the images the attack left standing at the radius below). Prints the
seconds of each attack (summed over its radii, from the cells' ``wall_s``: start-up and clean cells left out), the
total and their ratio, and the
per-image worst case over every attack at each radius in both: the cascade is meant to leave it unchanged up to the
attacks' own randomness (each cell seeds its random starts from its id, so plain and cascade cells draw different
starts; the script prints how many images differ). ``--steps-scale`` shrinks every attack's steps/queries (smoke
runs only: the savings depend on the budget). Rows go to benchmarks/results.csv (not with ``--no-save``) and $OUT.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result  # noqa: E402
from robustbench_jpeg.attack.spec import SpecFile  # noqa: E402
from robustbench_jpeg.attack.spec_files import load_spec  # noqa: E402
from robustbench_jpeg.evaluation import worst_cases  # noqa: E402
from robustbench_jpeg.runfolder.store import RunStore  # noqa: E402
from robustbench_jpeg.sweep import run_sweep  # noqa: E402

ARM_FILES = ("card.json", "checkpoint.pt")


def variant(spec: SpecFile, cascade: bool, n: int, scale: float) -> SpecFile:
    """``spec`` on the first ``n`` images with every attack's cascade set, steps scaled by ``scale``."""
    attacks = tuple(
        dataclasses.replace(a, cascade=cascade, n_examples=n, steps=max(1, round(a.steps * scale)))
        for a in spec.attacks
    )
    name = f"{spec.name}-{'cascade' if cascade else 'plain'}"
    return dataclasses.replace(spec, name=name, attacks=attacks, path=None)


def copy_arm(run: Path, arm: str, to: Path) -> Path:
    """A run folder holding only ``arm`` of ``run`` (and the run's config.json, for its data folder)."""
    (to / arm).mkdir(parents=True)
    for name in ARM_FILES:
        shutil.copy2(run / arm / name, to / arm / name)
    if (run / "config.json").is_file():
        shutil.copy2(run / "config.json", to / "config.json")
    return to


def timed_sweep(run_dir: Path, spec: SpecFile, data_dir: str | None) -> tuple[float, dict[str, float], dict, int]:
    """Seconds of the attack cells (their ``wall_s``: no start-up, no clean cells), seconds per attack, the worst
    case per radius and the number of clean-correct images (the ones an attack can break)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = run_sweep(run_dir, spec, progress=False, data_dir=data_dir, log=False)
    attacks = table[table["attack"] != "clean"]
    per_attack = attacks.groupby("attack_label", sort=False)["wall_s"].sum().to_dict()
    seconds = float(attacks["wall_s"].sum())
    samples = RunStore(run_dir).samples()
    worst = {round(w.eps * 255, 4): w.vector for w in worst_cases(attacks, samples) if w.primary}
    return seconds, per_attack, worst, int(attacks["n_clean_correct"].max()) if len(attacks) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a run folder with the trained arm")
    p.add_argument("--arm", default="baseline")
    p.add_argument("--spec", default="autoattack")
    p.add_argument("--n", type=int, default=200, help="first n test images")
    p.add_argument("--steps-scale", type=float, default=1.0, help="scale every attack's steps (smoke runs)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    spec = load_spec(args.spec)
    print(f"radius cascade, spec {args.spec}, arm {args.arm} of {args.run}, {args.n} images")
    print(f"  {torch.get_num_threads()} torch thread(s); steps x{args.steps_scale:g}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cascade in (False, True):
            run_dir = copy_arm(Path(args.run), args.arm, Path(tmp) / str(cascade))
            results[cascade] = timed_sweep(run_dir, variant(spec, cascade, args.n, args.steps_scale), args.data_dir)
    (plain_s, plain_attacks, plain_worst, attackable), (cascade_s, cascade_attacks, cascade_worst, _) = (
        results[False],
        results[True],
    )
    for label, seconds in plain_attacks.items():
        print(f"  {label:14s} plain {seconds:8.2f} s   cascade {cascade_attacks.get(label, 0.0):8.2f} s")
    speedup = plain_s / cascade_s if attackable and cascade_s > 0 else float("nan")
    print(f"  all attacks    plain {plain_s:8.2f} s   cascade {cascade_s:8.2f} s   x{speedup:.2f}")
    if not attackable:
        print("  WARNING: nothing was attacked (no clean-correct image among the first n): no ratio to compare")
    differ = 0
    for eps, vector in plain_worst.items():
        other = cascade_worst[eps]
        differ += int((vector != other).sum())
        print(f"  worst case at {eps:g}/255: plain {100 * vector.mean():.2f}%, cascade {100 * other.mean():.2f}%")
    print(f"  images whose worst case differs (attack randomness): {differ}")
    append_result(
        {
            "benchmark": "attack_cascade",
            "spec": args.spec,
            "arm": args.arm,
            "n": args.n,
            "steps_scale": args.steps_scale,
            "plain_s": plain_s,
            "cascade_s": cascade_s,
            "speedup": speedup,
            "worst_case_images_differing": differ,
            "worst_plain": ";".join(f"{e:g}={np.mean(v):.4f}" for e, v in plain_worst.items()),
            "worst_cascade": ";".join(f"{e:g}={np.mean(v):.4f}" for e, v in cascade_worst.items()),
        },
        save=not args.no_save,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
