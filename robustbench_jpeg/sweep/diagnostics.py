"""Per-arm measurements behind the masking checks: where the loss gradient is exactly zero.

* In pixel space: the share of exactly-zero entries of the input gradient (one soft high-frequency coefficient per
  8x8 block makes every pixel's gradient non-zero, so this alone cannot see a blocked quantizer).
* At the quantizer's input (arms with a JPEG layer): the gradient with respect to the unquantized DCT coefficients,
  per channel (Y, Cb, Cr) and frequency band, and as 8x8 maps. Bands by u + v (u vertical, v horizontal
  frequency): ``DC`` (0), ``low`` (1-3), ``mid`` (4-8), ``high`` (9-14).
* The quantizer's hardness (alpha * q^2 per frequency) and the share of coefficients where its local slope is below
  1% of the identity's, when the JPEG layer provides them (:mod:`robustbench_jpeg.jpeg.hardness`).

Measured on clean test images in eval mode, as deployed, with the summed cross-entropy (no 1/B shrinking).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attack.gradients import has_jpeg

__all__ = ["BANDS", "band_of", "gradient_statistics", "arm_diagnostics", "refresh_diagnostics", "GRAD_CHECK_IMAGES"]

GRAD_CHECK_IMAGES = 256
CHANNELS = ("Y", "Cb", "Cr")
BANDS = {"DC": (0, 0), "low": (1, 3), "mid": (4, 8), "high": (9, 14)}


def band_of(u: int, v: int) -> str:
    s = u + v
    return next(name for name, (lo, hi) in BANDS.items() if lo <= s <= hi)


def _band_masks() -> dict[str, np.ndarray]:
    uv = np.add.outer(np.arange(8), np.arange(8))
    return {name: (uv >= lo) & (uv <= hi) for name, (lo, hi) in BANDS.items()}


def gradient_statistics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict[str, Any]:
    """Exact-zero shares of the loss gradient on clean ``(x, y)`` (float in [0, 1]), in pixels and, for a model with
    a JPEG layer, at the quantizer's input. The model must be in eval mode and in its deployed quantizer mode."""
    device = next(model.parameters()).device
    jpeg = has_jpeg(model)
    pixel_zero = pixel_entries = all_zero = 0
    norms = []
    coeff_zero = torch.zeros(3, 8, 8, dtype=torch.float64)
    coeff_count = 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device).float().detach().requires_grad_(True)
        yb = y[start : start + batch_size].to(device)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(xb), yb, reduction="sum"), xb)
        flat = grad.reshape(len(xb), -1)
        pixel_zero += int((flat == 0).sum())
        pixel_entries += flat.numel()
        all_zero += int((flat == 0).all(dim=1).sum())
        norms.append(flat.norm(dim=1).cpu())
        if jpeg:
            coeffs = model.jpeg.encode(xb.detach()).detach().requires_grad_(True)
            logits = model.backbone(model.normalize(model.jpeg.decode(coeffs)))
            (cgrad,) = torch.autograd.grad(F.cross_entropy(logits, yb, reduction="sum"), coeffs)
            zero = (cgrad == 0).double()  # (B, 3, H/8, W/8, 8, 8)
            coeff_zero += zero.sum(dim=(0, 2, 3)).cpu()
            coeff_count += zero.shape[0] * zero.shape[2] * zero.shape[3]
    norm = torch.cat(norms) if norms else torch.zeros(0)
    out: dict[str, Any] = {
        "n_images": int(len(x)),
        "pixel_zero_fraction": pixel_zero / max(pixel_entries, 1),
        "pixel_entries": pixel_entries,
        "all_zero_images": all_zero,
        "median_pixel_l2": float(norm.median()) if len(norm) else 0.0,
    }
    if jpeg and coeff_count:
        maps = (coeff_zero / coeff_count).numpy()
        masks = _band_masks()
        out["coefficients"] = {
            "zero_fraction": float(maps.mean()),
            "per_channel": {c: float(maps[i].mean()) for i, c in enumerate(CHANNELS)},
            "bands": [
                {"channel": c, "band": b, "zero_fraction": float(maps[i][mask].mean())}
                for i, c in enumerate(CHANNELS)
                for b, mask in masks.items()
            ],
            "maps": {c: np.round(maps[i], 6).tolist() for i, c in enumerate(CHANNELS)},
        }
    return out


def arm_diagnostics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fingerprint: str) -> dict[str, Any]:
    """Everything ``diagnostics.json`` holds for one arm (recomputed when the checkpoint's fingerprint changes)."""
    out: dict[str, Any] = {"fingerprint": fingerprint, "gradients": gradient_statistics(model, x, y)}
    if has_jpeg(model) and model.jpeg.deployed_mode == "soft":  # a hard quantizer's slope is 0 everywhere
        try:
            from ..jpeg import hardness
        except ImportError:  # pragma: no cover - older layer without the audit
            return out
        out["hardness"] = hardness.hardness_tables(model.jpeg)
        out["slopes"] = hardness.slope_stats(model.jpeg, x)
    return out


def refresh_diagnostics(store, evaluator, arms) -> None:
    """Recompute ``diagnostics.json`` for the arms whose checkpoint changed (fingerprint) since it was written."""
    data = store.diagnostics()
    stale = [a for a in arms if data.get(a, {}).get("fingerprint") != evaluator.fingerprint(a)]
    if not stale:
        return
    k = min(GRAD_CHECK_IMAGES, evaluator.test_size())
    x, y = evaluator.batch(np.arange(k))
    for arm in stale:
        data[arm] = arm_diagnostics(evaluator.model(arm), x, y, evaluator.fingerprint(arm))
    store.write_diagnostics(data)
