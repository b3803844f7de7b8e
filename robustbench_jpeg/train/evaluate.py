"""Test-set accuracy in float32, and the quantization tables as the model card records them."""

from __future__ import annotations

from typing import Any

import torch

from ..data import to_float
from ..device import exact_fp32
from ..models import RobustNet

__all__ = ["evaluate", "qtables"]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy and per-sample correctness (bool, CPU) of ``model`` in eval mode on uint8 images, in exact
    float32 (no autocast, no TF32), the precision the attack sweep scores in, so the card matches the sweep."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = []
    with exact_fp32(device):
        for start in range(0, images.shape[0], batch_size):
            x = to_float(images[start : start + batch_size].to(device, non_blocking=True))
            y = labels[start : start + batch_size].to(device, non_blocking=True)
            correct.append(model(x).argmax(dim=1) == y)
    model.train(was_training)
    flags = torch.cat(correct).cpu()
    return float(flags.float().mean()), flags


def qtables(model: RobustNet) -> dict[str, Any] | None:
    """The step tables of a JPEG arm as floats and as encoder integers (natural order), or None."""
    if not model.has_jpeg:
        return None
    luma_int, chroma_int = model.jpeg.quantization_tables()
    return {
        "luma": model.jpeg.q_luma.detach().cpu().tolist(),
        "chroma": model.jpeg.q_chroma.detach().cpu().tolist(),
        "luma_int": luma_int.tolist(),
        "chroma_int": chroma_int.tolist(),
    }
