"""Training images/s: the toolkit's step vs the usual DataLoader + PIL + fp32 loop, same model and batch.

    python benchmarks/train_throughput.py --device cpu --steps 5                   # CI-sized
    python benchmarks/train_throughput.py --device cuda --model resnet56 --steps 300 --batch-size 64

Ours: uint8 data resident on the device, augmentation in batch on the device, channels_last and bf16 autocast
for the backbone on CUDA (JPEG layer fp32), metrics kept on the device. Usual: torchvision DataLoader with PIL
RandomCrop/RandomHorizontalFlip/ToTensor in worker processes, fp32, NCHW. Both arms. Prints ratios measured
side by side in this one run and appends rows to benchmarks/results.csv.
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
from robustbench_jpeg.device import resolve_device  # noqa: E402
from robustbench_jpeg.train import ArmTrainer, resolve_config  # noqa: E402


def ours_images_per_s(model: str, arm: str, device: torch.device, batch: int, steps: int, warmup: int, compile_: bool):
    n = batch * (steps + warmup)
    images, labels = training_images(n)
    config = resolve_config(TrainConfig(model=model, dataset="cifar100-mini", epochs=10, batch_size=batch))
    options = RunOptions(device=str(device), progress=False, checkpoint_every_s=0, compile=compile_)
    trainer = ArmTrainer(config, options, arm, Path("unused"), device, n_train=batch * warmup)
    warm = (images[: batch * warmup].to(device), labels[: batch * warmup].to(device))
    data = (images[batch * warmup :].to(device), labels[batch * warmup :].to(device))
    timed(lambda: trainer.train_epoch(warm), device)
    trainer.n_train, trainer.progress.step = data[0].shape[0], 0
    seconds = timed(lambda: trainer.train_epoch(data), device)
    return batch * steps / seconds


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the usual loop")
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--compile", action="store_true", help="also measure ours with torch.compile")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    print(f"train throughput, {args.model}, batch {args.batch_size}, {args.steps} steps, {describe(device)}")
    for arm in args.arms.split(","):
        plain = plain_images_per_s(args.model, arm, device, args.batch_size, args.steps, args.warmup, args.workers)
        ours = ours_images_per_s(args.model, arm, device, args.batch_size, args.steps, args.warmup, False)
        row = {
            "benchmark": "train_throughput",
            "model": args.model,
            "arm": arm,
            "batch": args.batch_size,
            "steps": args.steps,
            "device": describe(device),
            "plain_img_s": plain,
            "ours_img_s": ours,
            "speedup": ours / plain,
        }
        line = f"  {arm:8s} usual {plain:9.0f} img/s   ours {ours:9.0f} img/s   x{ours / plain:.2f}"
        if args.compile:
            compiled = ours_images_per_s(args.model, arm, device, args.batch_size, args.steps, args.warmup, True)
            row.update(ours_compiled_img_s=compiled, compiled_speedup=compiled / plain)
            line += f"   compiled {compiled:9.0f} img/s   x{compiled / plain:.2f}"
        print(line, flush=True)
        if not args.no_save:
            append_result(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
