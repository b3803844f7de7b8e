"""Adversarial examples/s: the toolkit's PGD crafting vs a plain torchattacks loop over a DataLoader.

    python benchmarks/attack_throughput.py --device cpu --n 128                    # CI-sized
    python benchmarks/attack_throughput.py --device cuda --model resnet56 --n 10000 --batch-size 5000

Same model (weights do not matter for throughput), same eps (8/255), steps and step size, every image attacked.
Ours: test images resident on the device as uint8, one large batch at a time, through ``attack.craft`` (the
engine of ``jpeg-robust attack``). Usual: the upstream script's way, a torchvision DataLoader (ToTensor, batch 32)
and ``torchattacks.PGD`` per batch. Both arms. Appends rows to benchmarks/results.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result, describe, timed  # noqa: E402
from robustbench_jpeg.attack import craft  # noqa: E402
from robustbench_jpeg.data import load_split, to_float  # noqa: E402
from robustbench_jpeg.device import resolve_device  # noqa: E402
from robustbench_jpeg.jpeg import JpegConfig  # noqa: E402
from robustbench_jpeg.models import create_model  # noqa: E402


def test_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split("cifar100-mini", train=False)
    reps = -(-n // images.shape[0])
    return images.repeat(reps, 1, 1, 1)[:n].contiguous(), labels.repeat(reps)[:n].contiguous()


def ours(model, images, labels, eps, steps, batch, device) -> float:
    x_all, y_all = images.to(device), labels.to(device)

    def run() -> None:
        for start in range(0, x_all.shape[0], batch):
            x = to_float(x_all[start : start + batch])
            craft(
                model,
                x,
                y_all[start : start + batch],
                "pgd",
                "linf",
                eps,
                steps,
                2.5 * eps / steps,
                True,
                "soft" if model.has_jpeg else "none",
                seed=start,
            )

    return images.shape[0] / timed(run, device)


def plain(model, images, labels, eps, steps, batch, workers, device) -> float:
    import torchattacks
    from torchvision import transforms

    class _Dataset(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.images, self.labels = images.permute(0, 2, 3, 1).numpy(), labels.numpy()
            self.to_tensor = transforms.ToTensor()

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i):
            return self.to_tensor(self.images[i]), int(self.labels[i])

    loader = torch.utils.data.DataLoader(
        _Dataset(), batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda"
    )
    attack = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)

    def run() -> None:
        for x, y in loader:
            attack(x.to(device), y.to(device))

    return images.shape[0] / timed(run, device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--n", type=int, default=256, help="test images attacked")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=1000, help="our batch (the usual loop uses 32)")
    p.add_argument("--plain-batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    eps = 8 / 255
    images, labels = test_images(args.n)
    print(f"attack throughput, PGD-{args.steps} at 8/255, {args.model}, {args.n} images, {describe(device)}")
    for arm in args.arms.split(","):
        torch.manual_seed(0)
        model = create_model(args.model, jpeg=JpegConfig() if arm == "jpegdl" else None).to(device).eval()
        usual = plain(model, images, labels, eps, args.steps, args.plain_batch_size, args.workers, device)
        mine = ours(model, images, labels, eps, args.steps, args.batch_size, device)
        print(f"  {arm:8s} usual {usual:9.1f} adv/s   ours {mine:9.1f} adv/s   x{mine / usual:.2f}", flush=True)
        if not args.no_save:
            append_result(
                {
                    "benchmark": "attack_throughput",
                    "model": args.model,
                    "arm": arm,
                    "n": args.n,
                    "steps": args.steps,
                    "batch": args.batch_size,
                    "device": describe(device),
                    "plain_adv_s": usual,
                    "ours_adv_s": mine,
                    "speedup": mine / usual,
                }
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
