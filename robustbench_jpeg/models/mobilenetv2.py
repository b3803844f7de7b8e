"""MobileNetV2 at width 0.5, expansion 6 (RepDistiller's ``mobile_half``), 32x32 input."""

from __future__ import annotations

import torch
from torch import nn

from ._common import he_normal_init
from .registry import register_model

__all__ = ["InvertedResidual", "MobileNetV2"]

# (expansion t, output channels c at width 1, blocks n, first stride s); t=None means "the net's expansion".
_SETTING: list[tuple[int | None, int, int, int]] = [
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
]


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    return layers + [nn.ReLU()] if relu else layers


class InvertedResidual(nn.Module):
    """1x1 expand-BN-ReLU, 3x3 depthwise (stride s)-BN-ReLU, 1x1 project-BN; residual when shapes agree.

    The expand conv is present even at expansion 1, as in the reference code.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.use_residual = stride == 1 and in_ch == out_ch
        self.conv = nn.Sequential(
            *_conv_bn(in_ch, hidden, 1),
            *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
            *_conv_bn(hidden, out_ch, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """CIFAR MobileNetV2: stride-2 3x3 stem, seven inverted-residual stages, 1x1 conv to 1280, pool, FC.

    Args:
        expansion: expansion factor t of every stage but the first.
        width_mult: channel multiplier (0.5 for ``mobile_half``); the 1280-wide head is kept for width <= 1.
        num_classes: size of the logit vector.
    """

    def __init__(self, expansion: int = 6, width_mult: float = 0.5, num_classes: int = 100) -> None:
        super().__init__()
        in_ch = int(32 * width_mult)
        self.conv1 = nn.Sequential(*_conv_bn(3, in_ch, 3, stride=2))
        stages = []
        for t, c, n, s in _SETTING:
            out_ch = int(c * width_mult)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(in_ch, out_ch, s if j == 0 else 1, expansion if t is None else t))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = nn.Sequential(*_conv_bn(in_ch, self.last_channel, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self.last_channel, num_classes)
        he_normal_init(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.blocks(self.conv1(x)))
        return self.classifier(torch.flatten(self.avgpool(x), 1))


@register_model("mobilenetv2", lr=0.01, paper_table="MobileNetV2")
def mobilenetv2(num_classes: int = 100) -> MobileNetV2:
    return MobileNetV2(expansion=6, width_mult=0.5, num_classes=num_classes)
