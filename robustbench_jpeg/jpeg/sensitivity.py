"""The paper's sensitivity initialisation of the quantization tables, from a trained model without the layer.

How sensitive is the loss to each DCT coefficient? For images ``x`` with labels ``y`` the model sees the
reconstruction of the unquantized coefficients F (so the model's output is unchanged) and the squared loss gradient
with respect to F is summed per channel and frequency (docs/jpeg-layer.md, "Initial tables"):

    s_c[m] = mean over images of sum over blocks of (dL / dF_c[m])^2,  c in {Y, Cb, Cr}
    Q_Y = kappa / s_Y,   Q_C = 2 kappa / (s_Cb + s_Cr),   kappa such that max Q_Y = q_max

Insensitive frequencies get large steps. The model runs in eval mode (the official CIFAR code left it in train
mode, so BatchNorm used batch statistics; we follow its ImageNet code here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .functional import coefficients_to_rgb, jpeg_coefficients

__all__ = ["sensitivity_tables"]


def sensitivity_tables(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    q_max: float = 10.0,
    n: int = 10_000,
    batch_size: int = 250,
    chroma_offset: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Luma and chroma 8x8 step tables (float32, natural order) from ``model``'s sensitivities on the first ``n``
    of ``images`` (uint8 NCHW, or float in [0, 1]).

    Example:
        >>> import torch
        >>> from robustbench_jpeg.models import create_model
        >>> luma, chroma = sensitivity_tables(create_model("tiny"), torch.rand(4, 3, 32, 32), torch.arange(4), n=4)
        >>> float(luma.max())
        10.0
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros(3, 8, 8, dtype=torch.float64, device=device)
    count = min(n, images.shape[0])
    try:
        for start in range(0, count, batch_size):
            batch = images[start : min(start + batch_size, count)].to(device)
            x = batch.float().div(255.0) if batch.dtype == torch.uint8 else batch.float()
            y = labels[start : start + x.shape[0]].to(device)
            coeffs = jpeg_coefficients(x, chroma_offset).detach().requires_grad_(True)
            loss = F.cross_entropy(model(coefficients_to_rgb(coeffs, chroma_offset)), y)
            (grad,) = torch.autograd.grad(loss, coeffs)
            total += (grad.double() ** 2).sum(dim=(0, 2, 3))
    finally:
        model.train(was_training)
    sens = (total / count).clamp_min(1e-30).cpu()
    kappa = q_max * float(sens[0].min())
    return (kappa / sens[0]).float(), (2 * kappa / (sens[1] + sens[2])).float()
