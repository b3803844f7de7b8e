"""CIFAR VGG with batch norm (RepDistiller's ``vgg8_bn`` / ``vgg13_bn``), 32x32 input.

Five conv groups (3x3 conv with bias, BN, ReLU); 2x2 max-pool after the first three groups only, so groups
4 and 5 run at 4x4; global average pool and FC 512 -> classes.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import he_normal_init
from .registry import register_model

__all__ = ["VGG"]

_CFG: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
}


def _group(widths: list[int], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG-BN from five groups of conv widths (see ``_CFG``)."""

    def __init__(self, cfg: list[list[int]], num_classes: int = 100) -> None:
        super().__init__()
        if len(cfg) != 5:
            raise ValueError(f"VGG needs five conv groups, got {len(cfg)}")
        in_channels = 3
        layers: list[nn.Module] = []
        for i, widths in enumerate(cfg):
            layers.append(_group(widths, in_channels))
            in_channels = widths[-1]
            if i < 3:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)
        he_normal_init(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model("vgg8", paper_table="vgg8")
def vgg8(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg8"], num_classes)


@register_model("vgg13", paper_table="vgg13")
def vgg13(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg13"], num_classes)
