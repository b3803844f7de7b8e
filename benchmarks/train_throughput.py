"""Training images/s through the toolkit's trainer vs a plain loop, same model and batch, side by side in one run.

    python benchmarks/train_throughput.py --device cpu --model tiny --steps 5          # CI-sized
    python benchmarks/train_throughput.py --device cuda --model resnet56 --steps 300 --batch-size 64

Per arm: the usual loop (torchvision DataLoader with PIL RandomCrop/RandomHorizontalFlip/ToTensor in worker
processes, fp32, NCHW); the trainer's eager step (``ArmTrainer``: uint8 data resident on the device, augmentation
in batch there, channels_last + bf16 backbone on CUDA, metrics on the device); the same step replayed as one CUDA
graph (``--cuda-graph``; CUDA only, reported as not run elsewhere). Then the models of a study trained together
(both arms x ``--seeds``, round-robin through the same trainer code as ``jpeg-robust train --seeds``; CUDA graphs
on their own streams where available): aggregate images/s. Rows go to benchmarks/results.csv and $OUT.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    append_result,
    describe,
    plain_loader,
    plain_train_step,
    timed,
    training_images,
)
from robustbench_jpeg.config import RunOptions, TrainConfig  # noqa: E402
from robustbench_jpeg.device import resolve_device, training_backend  # noqa: E402
from robustbench_jpeg.train import ArmTrainer, resolve_config  # noqa: E402
from robustbench_jpeg.train.graph import WARMUP_STEPS, graph_unavailable  # noqa: E402


def trainer_images_per_s(
    model: str,
    jobs: list[tuple[str, int]],
    device: torch.device,
    batch: int,
    steps: int,
    warmup: int,
    graph: bool = False,
    compile_: bool = False,
    **options,
) -> float:
    """Images/s of the trainers of ``jobs`` ((arm, seed) pairs) stepped round-robin, summed over the models, after
    ``warmup`` untimed rounds (more with ``graph``: the eager warm-up steps and the capture come first).
    ``options``: further :class:`RunOptions` fields (``amp``, ``channels_last``)."""
    warm = max(warmup, WARMUP_STEPS + 2) if graph else warmup
    images, labels = training_images(batch * (warm + steps))
    data = (images.to(device), labels.to(device))
    run_options = RunOptions(
        device=str(device), progress=False, checkpoint_every_s=0, compile=compile_, cuda_graph=graph, **options
    )
    trainers = []
    for arm, seed in jobs:
        config = resolve_config(
            TrainConfig(model=model, dataset="cifar100-mini", epochs=10, batch_size=batch, seed=seed)
        )
        trainer = ArmTrainer(config, run_options, arm, Path("unused"), device, n_train=data[0].shape[0])
        trainer.begin_epoch(data)
        trainers.append(trainer)

    def rounds(k: int) -> None:
        for _ in range(k):
            for trainer in trainers:
                trainer.train_step()

    with training_backend(device):
        timed(lambda: rounds(warm), device)
        seconds = timed(lambda: rounds(steps), device)
    return len(trainers) * batch * steps / seconds


def ours_images_per_s(
    model: str,
    arm: str,
    device: torch.device,
    batch: int,
    steps: int,
    warmup: int,
    compile_: bool = False,
    graph: bool = False,
) -> float:
    """One model's images/s through the trainer (the eager step, or its CUDA graph)."""
    return trainer_images_per_s(model, [(arm, 0)], device, batch, steps, warmup, graph=graph, compile_=compile_)


def plain_images_per_s(model: str, arm: str, device: torch.device, batch: int, steps: int, warmup: int, workers: int):
    from robustbench_jpeg.jpeg import JpegConfig
    from robustbench_jpeg.models import create_model

    images, labels = training_images(batch * (steps + warmup))
    torch.manual_seed(0)
    net = create_model(model, jpeg=JpegConfig() if arm == "jpegdl" else None).to(device).train()
    optimizer = torch.optim.SGD(net.backbone_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    jpeg_optimizer = torch.optim.Adam(net.jpeg_parameters(), lr=0.003) if arm == "jpegdl" else None
    loader = plain_loader(images, labels, batch, workers, device)
    batches = iter(loader)

    def run(k: int) -> None:
        for x, y in itertools.islice(batches, k):
            plain_train_step(net, optimizer, jpeg_optimizer, x.to(device, non_blocking=True), y.to(device))

    timed(lambda: run(warmup), device)
    return batch * steps / timed(lambda: run(steps), device)


def _rate(value: float | None) -> str:
    return f"{value:9.0f} img/s" if value is not None else "      n/a"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the usual loop")
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the concurrent row (x the arms); 0 = no such row")
    p.add_argument("--compile", action="store_true", help="also measure the eager step under torch.compile")
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    arms = args.arms.split(",")
    why_no_graph = graph_unavailable(device, False, False)
    print(f"train throughput, {args.model}, batch {args.batch_size}, {args.steps} steps, {describe(device)}")
    if why_no_graph:
        print(f"  (CUDA graph rows not run: {why_no_graph})")
    bench = dict(model=args.model, device=device, batch=args.batch_size, steps=args.steps, warmup=args.warmup)
    alone: dict[str, float] = {}  # one model of the arm at a time, as the concurrent row runs it
    for arm in arms:
        plain = plain_images_per_s(arm=arm, workers=args.workers, **bench)
        ours = ours_images_per_s(arm=arm, **bench)
        graph = None if why_no_graph else ours_images_per_s(arm=arm, graph=True, **bench)
        alone[arm] = graph if graph is not None else ours
        row = {
            "benchmark": "train_throughput",
            "model": args.model,
            "arm": arm,
            "models": 1,
            "batch": args.batch_size,
            "steps": args.steps,
            "device": describe(device),
            "plain_img_s": plain,
            "ours_img_s": ours,
            "speedup": ours / plain,
            "graph_img_s": graph,
            "graph_speedup": graph / plain if graph else None,
        }
        line = f"  {arm:10s} usual {_rate(plain)}   eager {_rate(ours)} x{ours / plain:.2f}   graph {_rate(graph)}"
        line += f" x{graph / plain:.2f}" if graph else ""
        if args.compile:
            compiled = ours_images_per_s(arm=arm, compile_=True, **bench)
            row.update(ours_compiled_img_s=compiled, compiled_speedup=compiled / plain)
            line += f"   compiled {_rate(compiled)} x{compiled / plain:.2f}"
        print(line, flush=True)
        append_result(row, save=not args.no_save)
    if args.seeds > 0:
        jobs = [(arm, seed) for seed in range(args.seeds) for arm in arms]
        mode = "graph" if why_no_graph is None else "eager"
        together = trainer_images_per_s(
            args.model, jobs, device, args.batch_size, args.steps, args.warmup, graph=why_no_graph is None
        )
        one_at_a_time = len(jobs) / sum(1 / alone[arm] for arm, _ in jobs)  # the same models trained in turn
        print(
            f"  {len(jobs)} models together ({mode}, round-robin{', own streams' if mode == 'graph' else ''}): "
            f"{_rate(together)} aggregate, x{together / one_at_a_time:.2f} the same models one at a time "
            f"({_rate(one_at_a_time)})",
            flush=True,
        )
        append_result(
            {
                "benchmark": "train_throughput",
                "model": args.model,
                "arm": ",".join(arms),
                "models": len(jobs),
                "mode": mode,
                "batch": args.batch_size,
                "steps": args.steps,
                "device": describe(device),
                "aggregate_img_s": together,
                "one_at_a_time_img_s": one_at_a_time,
                "concurrency_speedup": together / one_at_a_time,
            },
            save=not args.no_save,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
