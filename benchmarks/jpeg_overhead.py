"""JPEG-DL cost: JPEG-DL arm time over baseline arm time, forward (eval) and full training step.

    python benchmarks/jpeg_overhead.py --device cpu --steps 5                      # CI-sized
    python benchmarks/jpeg_overhead.py --device cuda --model resnet56 --steps 300

Both arms run the toolkit's own path (on CUDA: bf16 backbone, fp32 JPEG layer, channels_last): the trainer's eager
step and, on CUDA, the step replayed as a CUDA graph (what ``--cuda-graph`` trains with). Also reports the layer
alone (forward + backward of the soft quantizer pipeline) per batch. Appends rows to results.csv and $OUT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result, describe, timed, training_images  # noqa: E402
from benchmarks.train_throughput import ours_images_per_s  # noqa: E402
from robustbench_jpeg.data import to_float  # noqa: E402
from robustbench_jpeg.device import resolve_device  # noqa: E402
from robustbench_jpeg.jpeg import JpegConfig, JpegLayer  # noqa: E402
from robustbench_jpeg.models import create_model  # noqa: E402
from robustbench_jpeg.train.graph import graph_unavailable  # noqa: E402


def forward_seconds(model_name: str, arm: str, device: torch.device, batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    model = create_model(model_name, jpeg=JpegConfig() if arm == "jpegdl" else None).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    x = to_float(training_images(batch)[0].to(device))
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )

    def run() -> None:
        with torch.no_grad(), amp:
            model(x)

    timed(run, device, 2)
    return timed(run, device, repeats) / repeats


def layer_seconds(device: torch.device, batch: int, repeats: int) -> float:
    layer = JpegLayer().to(device)
    x = to_float(training_images(batch)[0].to(device)).requires_grad_(True)

    def run() -> None:
        layer(x).sum().backward()

    timed(run, device, 2)
    return timed(run, device, repeats) / repeats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-batch-size", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    print(f"JPEG-DL overhead, {args.model}, {describe(device)}")
    fwd = {
        arm: forward_seconds(args.model, arm, device, args.eval_batch_size, args.steps)
        for arm in ("baseline", "jpegdl")
    }
    train = {
        arm: ours_images_per_s(args.model, arm, device, args.batch_size, args.steps, args.warmup, False)
        for arm in ("baseline", "jpegdl")
    }
    graph = None
    if graph_unavailable(device, False, False) is None:
        graph = {
            arm: ours_images_per_s(args.model, arm, device, args.batch_size, args.steps, args.warmup, graph=True)
            for arm in ("baseline", "jpegdl")
        }
    layer = layer_seconds(device, args.batch_size, args.steps)
    fwd_ratio = fwd["jpegdl"] / fwd["baseline"]
    step_ratio = train["baseline"] / train["jpegdl"]
    print(
        f"  forward, batch {args.eval_batch_size}: baseline {fwd['baseline'] * 1e3:.2f} ms, "
        f"JPEG-DL {fwd['jpegdl'] * 1e3:.2f} ms  -> x{fwd_ratio:.3f}"
    )
    print(
        f"  training step, batch {args.batch_size}: baseline {train['baseline']:.0f} img/s, "
        f"JPEG-DL {train['jpegdl']:.0f} img/s  -> step time x{step_ratio:.3f}"
    )
    graph_ratio = graph["baseline"] / graph["jpegdl"] if graph else None
    if graph:
        print(
            f"  training step as a CUDA graph, batch {args.batch_size}: baseline {graph['baseline']:.0f} img/s, "
            f"JPEG-DL {graph['jpegdl']:.0f} img/s  -> step time x{graph_ratio:.3f}"
        )
    print(f"  JPEG layer alone, forward+backward, batch {args.batch_size}: {layer * 1e3:.3f} ms")
    append_result(
        {
            "benchmark": "jpeg_overhead",
            "model": args.model,
            "batch": args.batch_size,
            "steps": args.steps,
            "device": describe(device),
            "forward_ratio": fwd_ratio,
            "train_step_ratio": step_ratio,
            "layer_fwd_bwd_ms": layer * 1e3,
            "baseline_img_s": train["baseline"],
            "jpegdl_img_s": train["jpegdl"],
            "graph_step_ratio": graph_ratio,
            "graph_baseline_img_s": graph["baseline"] if graph else None,
            "graph_jpegdl_img_s": graph["jpegdl"] if graph else None,
        },
        save=not args.no_save,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
