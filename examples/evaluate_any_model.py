"""Evaluate a model this toolkit did not build: a small torchvision-style CNN defined here, trained for a few seconds
on the embedded cifar100-mini images, then attacked with ``robustbench_jpeg.evaluate`` and reported.

    python examples/evaluate_any_model.py                          # quick spec (FGSM, PGD-5), 64 images
    python examples/evaluate_any_model.py --spec autoattack --n 200 --out runs/my-cnn-aa

Any ``nn.Module`` from RGB in [0, 1] to logits works the same way (a torchvision or RobustBench model included):
``evaluate`` writes an ordinary run folder (results.csv, per-image records, checks.json) and
``jpeg-robust report --run OUT`` reads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_jpeg import evaluate, load_split


class SmallCNN(nn.Module):
    """Two conv blocks and a linear head, normalising its [0, 1] input itself (as RobustBench models do)."""

    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.507, 0.487, 0.441]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.267, 0.256, 0.276]).view(1, 3, 1, 1))
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.head = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - self.mean) / self.std).flatten(1))


def train_briefly(model: nn.Module, steps: int) -> None:
    images, labels = load_split("cifar100-mini", train=True)
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        index = torch.randint(len(labels), (128,), generator=generator)
        optimiser.zero_grad()
        F.cross_entropy(model(images[index].float() / 255), labels[index].long()).backward()
        optimiser.step()
    model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="quick", help="attack spec (default quick; autoattack for AutoAttack)")
    parser.add_argument("--n", type=int, default=64, help="test images (default 64)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of the CNN (default 60)")
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate-any-model"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = SmallCNN()
    train_briefly(model, args.steps)
    images, labels = load_split("cifar100-mini", train=False)
    table = evaluate(model, images[: args.n], labels[: args.n], spec=args.spec, out=args.out, dataset="cifar100-mini")
    attacked = table[table["attack"] != "clean"]
    for row in attacked.itertuples():
        print(f"{row.attack} {row.grad} eps {row.eps_255:g}/255: robust {100 * row.robust_acc:.1f}% of {row.n}")
    print(f"checks: {table.attrs['verdict']}")
    print(f"run folder: {args.out} (jpeg-robust report --run {args.out} --out {args.out / 'report'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
