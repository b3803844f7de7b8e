"""The model both arms share: optional JPEG layer -> per-channel normalization -> backbone.

Models take RGB in [0, 1] (RobustBench's convention) and normalize inside, so an attack's eps is in pixel
units for both arms and both arms face exactly the same threat.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..jpeg import JpegLayer

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` with mean and std as buffers."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class RobustNet(nn.Module):
    """``backbone(normalize(jpeg(x)))``; ``jpeg`` is ``nn.Identity`` in the baseline arm.

    Attributes:
        jpeg: the :class:`JpegLayer` (JPEG-DL arm) or ``nn.Identity`` (baseline arm).
        normalize: dataset normalization, applied after the JPEG layer as in the official code.
        backbone: the unchanged CNN.
    """

    def __init__(
        self,
        backbone: nn.Module,
        jpeg: JpegLayer | None = None,
        mean: tuple[float, ...] = CIFAR100_MEAN,
        std: tuple[float, ...] = CIFAR100_STD,
        name: str = "",
    ) -> None:
        super().__init__()
        self.jpeg = jpeg if jpeg is not None else nn.Identity()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone
        self.name = name

    @property
    def has_jpeg(self) -> bool:
        return isinstance(self.jpeg, JpegLayer)

    @property
    def arm(self) -> str:
        return "jpegdl" if self.has_jpeg else "baseline"

    def jpeg_parameters(self) -> list[nn.Parameter]:
        return list(self.jpeg.parameters()) if self.has_jpeg else []

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(
                f"{self.name or 'the model'} takes float RGB in [0, 1], got {x.dtype} images; convert "
                "them with x.float() / 255"
            )
        if not self._range_checked:
            self._check_range(x)
        return self.backbone(self.normalize(self.jpeg(x)))

    _range_checked = False

    def _check_range(self, x: torch.Tensor) -> None:
        """Warn once if the first batch looks like [0, 255] pixels (one host sync, on the first call only)."""
        if torch.compiler.is_compiling() or (x.is_cuda and torch.cuda.is_current_stream_capturing()):
            return
        self._range_checked = True
        if x.numel() and float(x.detach().max()) > 1.0 + 1e-6:
            warnings.warn(
                f"{self.name or 'the model'} takes RGB in [0, 1] but got values up to "
                f"{float(x.detach().max()):.4g}: were the images divided by 255?",
                stacklevel=3,
            )
