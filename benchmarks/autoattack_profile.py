"""Where an AutoAttack cell spends its time on a CPU: model forwards, their batch sizes, and the rest.

    OMP_NUM_THREADS=1 python benchmarks/autoattack_profile.py --run runs/r20-s0 --arm baseline --n 100 --eps 1

Each attack of the ``autoattack`` spec (APGD-CE, APGD-T, FAB-T, Square) runs once, standalone (no chain, no
cascade: on every clean-correct image of the first ``--n``), at one radius, through the sweep's own path
(``run_sweep`` on a temporary copy of the arm), under ``cProfile``. Forward hooks on the model count its forward
calls, the images per call and the seconds inside forward; cProfile gives the seconds inside the model's backward
(``torch.autograd.grad``) and the functions with the most time of their own. Per attack it prints: wall seconds,
forwards, mean images per forward, the shares of forward, backward and everything else (the attack's own
per-query tensor work and Python). ``--threads 1,2`` repeats it per torch thread count; ``--layouts
nchw,channels_last`` runs each attack with the models in both memory layouts, side by side, and prints the ratio
(``jpeg-robust attack --channels-last``). ``--steps-scale`` shrinks every attack's steps/queries (smoke runs). Rows
go to benchmarks/results.csv (not with ``--no-save``) and $OUT.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.attack_cascade import copy_arm  # noqa: E402
from benchmarks.common import append_result  # noqa: E402
from robustbench_jpeg.attack.spec import AttackSpec, SpecFile  # noqa: E402
from robustbench_jpeg.attack.spec_files import load_spec  # noqa: E402
from robustbench_jpeg.sweep import compute as compute_mod  # noqa: E402
from robustbench_jpeg.sweep import run_sweep  # noqa: E402


@dataclasses.dataclass
class Tally:
    forwards: int = 0
    images: int = 0
    forward_s: float = 0.0


def instrument(tally: Tally):
    """Patch the sweep's model loader so every model it hands out counts its forwards into ``tally``."""
    original = compute_mod.Evaluator.model

    def model(self, arm, eval_alpha=None):
        m = original(self, arm, eval_alpha)
        if not getattr(m, "_profiled", False):
            started: list[float] = []
            m.register_forward_pre_hook(lambda mod, args: started.append(time.perf_counter()))

            def done(mod, args, out):
                tally.forwards += 1
                tally.images += int(args[0].shape[0])
                tally.forward_s += time.perf_counter() - started.pop()

            m.register_forward_hook(done)
            m._profiled = True
        return m

    compute_mod.Evaluator.model = model
    return lambda: setattr(compute_mod.Evaluator, "model", original)


def one_attack(run: Path, arm: str, attack, data_dir: str | None, tmp: Path, channels_last: bool = False) -> dict:
    """Profile one standalone attack on a fresh copy of the arm (the clean cell is computed before profiling)."""
    run_dir = copy_arm(run, arm, tmp / attack.method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = AttackSpec(method="fgsm", eps=attack.eps, n_examples=attack.n_examples)  # computes the clean cells
        run_sweep(run_dir, SpecFile(name="warm", attacks=(warm,)), progress=False, data_dir=data_dir, log=False)
        tally, profiler = Tally(), cProfile.Profile()
        restore = instrument(tally)
        try:
            start = time.perf_counter()
            profiler.enable()
            spec = SpecFile(name="one", attacks=(attack,))
            table = run_sweep(run_dir, spec, progress=False, data_dir=data_dir, log=False, channels_last=channels_last)
            profiler.disable()
            wall = time.perf_counter() - start
        finally:
            restore()
    stats = pstats.Stats(profiler)
    backward = sum(v[2] for k, v in stats.stats.items() if "run_backward" in k[2])  # autograd's C++ engine
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:5]
    attacked = int(table.loc[table["attack"] != "clean", "n_clean_correct"].max())
    return {
        "attack": attack.method,
        "wall_s": wall,
        "attacked": attacked,
        "forwards": tally.forwards,
        "images_per_forward": tally.images / max(tally.forwards, 1),
        "forward_share": tally.forward_s / wall,
        "backward_share": backward / wall,
        "top": "; ".join(f"{k[2]} ({Path(k[0]).name}) {v[2] / wall:.0%}" for k, v in top),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True)
    p.add_argument("--arm", default="baseline")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--eps", type=float, default=1.0, help="radius in 1/255 (L-inf)")
    p.add_argument("--threads", default="1", help="comma list of torch thread counts")
    p.add_argument("--layouts", default="nchw", help="comma list: nchw, channels_last")
    p.add_argument("--steps-scale", type=float, default=1.0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    attacks = [
        dataclasses.replace(
            a, eps=(args.eps / 255,), chain=None, cascade=False, n_examples=args.n, grad=("soft",),
            steps=max(1, round(a.steps * args.steps_scale)),
        )
        for a in load_spec("autoattack").attacks
    ]  # fmt: skip
    print(f"AutoAttack profile: {args.arm} of {args.run}, first {args.n} images, eps {args.eps:g}/255")
    layouts = args.layouts.split(",")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        print(f"  {threads} torch thread(s)")
        for attack in attacks:
            walls = {}
            for layout in layouts:
                with tempfile.TemporaryDirectory() as tmp:
                    row = one_attack(Path(args.run), args.arm, attack, args.data_dir, Path(tmp), layout != "nchw")
                walls[layout] = row["wall_s"]
                _print_row(row, layout)
                append_result({"benchmark": "autoattack_profile", "threads": threads, "n": args.n, "layout": layout,
                               "eps_255": args.eps, "arm": args.arm, "steps_scale": args.steps_scale, **row},
                              save=not args.no_save)  # fmt: skip
            if len(walls) > 1:
                print(f"             nchw / channels_last: x{walls['nchw'] / walls['channels_last']:.2f}")
    return 0


def _print_row(row: dict, layout: str) -> None:
    rest = 1 - row["forward_share"] - row["backward_share"]
    print(
        f"    {row['attack']:8s} [{layout}] {row['wall_s']:8.1f} s on {row['attacked']} images: {row['forwards']} "
        f"forwards of {row['images_per_forward']:.1f} images; forward {row['forward_share']:.0%}, backward "
        f"{row['backward_share']:.0%}, rest {rest:.0%}"
    )
    print(f"             most own time: {row['top']}")


if __name__ == "__main__":
    raise SystemExit(main())
