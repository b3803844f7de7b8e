"""``tiny``: a very small CNN for tests and smoke runs (milliseconds per batch on CPU)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

__all__ = ["TinyNet", "TinyNoBNNet"]


class TinyNet(nn.Module):
    """conv3x3(3->8)-BN-ReLU, 2x2 max-pool, conv3x3(8->16)-BN-ReLU, global average pool, FC 16->classes."""

    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model("tiny")
def tiny(num_classes: int = 100) -> TinyNet:
    return TinyNet(num_classes)


class TinyNoBNNet(nn.Module):
    """``tiny`` without BatchNorm (convolutions with biases): its training is exactly data-parallel even where
    BatchNorm statistics are per process (DistributedDataParallel on CPU), so the distributed tests can demand
    equality with a single-process run."""

    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model("tiny_nobn")
def tiny_nobn(num_classes: int = 100) -> TinyNoBNNet:
    return TinyNoBNNet(num_classes)
