"""Training steps/s on a CPU: float32 vs bf16 autocast vs bf16 + channels_last, both arms, side by side in one run.

    python benchmarks/cpu_bf16.py --model resnet20 --batch-size 128 --steps 5 --rounds 3

Each setting trains through the toolkit's trainer (``ArmTrainer``, the step ``jpeg-robust train`` runs; the JPEG
layer stays in float32 under autocast); the settings are measured in interleaved rounds (round 1: every setting,
then round 2, ...) and each keeps its best round, so a machine shared with other work slows them alike. The ratios
are against float32 NCHW. ``--amp auto`` picks bf16 + channels_last where this CPU has bf16 matrix units (AMX-BF16
or AVX512-BF16; printed first). Rows go to benchmarks/results.csv (not with ``--no-save``) and $OUT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result, describe  # noqa: E402
from benchmarks.train_throughput import trainer_images_per_s  # noqa: E402
from robustbench_jpeg.device import cpu_has_bf16_matmul  # noqa: E402

SETTINGS = {  # name -> RunOptions fields
    "fp32": dict(amp="off", channels_last=False),
    "bf16": dict(amp="bf16", channels_last=False),
    "bf16_cl": dict(amp="bf16", channels_last=True),
}


def best_steps_per_s(model: str, arm: str, batch: int, steps: int, warmup: int, rounds: int) -> dict[str, float]:
    """Per setting, the best of ``rounds`` interleaved measurements, in training steps per second."""
    device, best = torch.device("cpu"), dict.fromkeys(SETTINGS, 0.0)
    for _ in range(rounds):
        for name, options in SETTINGS.items():
            rate = trainer_images_per_s(model, [(arm, 0)], device, batch, steps, warmup, **options) / batch
            best[name] = max(best[name], rate)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each setting keeps its best")
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    device = torch.device("cpu")
    units = "yes" if cpu_has_bf16_matmul() else "no (--amp auto stays float32 here)"
    print(f"CPU bf16, {args.model}, batch {args.batch_size}, {args.steps} steps x best of {args.rounds} rounds")
    print(f"  {describe(device)}, {torch.get_num_threads()} thread(s); bf16 matrix units: {units}")
    for arm in args.arms.split(","):
        rates = best_steps_per_s(args.model, arm, args.batch_size, args.steps, args.warmup, args.rounds)
        base = rates["fp32"]
        cells = "   ".join(f"{name} {rate:.2f} steps/s x{rate / base:.2f}" for name, rate in rates.items())
        print(f"  {arm:9s} {cells}", flush=True)
        row = {"benchmark": "cpu_bf16", "model": args.model, "arm": arm, "batch": args.batch_size}
        row.update(steps=args.steps, rounds=args.rounds, device=describe(device), bf16_units=cpu_has_bf16_matmul())
        row.update({f"{name}_steps_s": rate for name, rate in rates.items()})
        row.update({f"{name}_ratio": rate / base for name, rate in rates.items() if name != "fp32"})
        append_result(row, save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
