"""Small building blocks shared by the backbones."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["channel_shuffle", "he_normal_init"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: (N, g*k, H, W) -> interleave the g groups of k channels. Out of place."""
    if groups == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def he_normal_init(module: nn.Module, linear_std: float | None = 0.01) -> None:
    """RepDistiller's ``_initialize_weights``: convs ``N(0, sqrt(2 / (k*k*out)))`` with zero bias, BN 1/0.

    Linear layers get weights ``N(0, linear_std)`` and zero bias; with ``linear_std=None`` only the bias is
    zeroed (WideResNet keeps PyTorch's default weight init).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
