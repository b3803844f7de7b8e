"""Quantizer hardness audit: where does the deployed soft quantizer pass gradients, and where is it flat?

JPEG-DL's soft quantizer Q_d(x) = sum_i y_i p_i(x), with points y_i = i q and weights
p_i = softmax_i(-alpha (x - y_i)^2) over a window centred on the detached index round(x / q), has the local slope

    dQ_d/dx = 2 alpha Var_p(y)

(the variance of the reconstruction points under the weights p; see docs/jpeg-layer.md). Its hardness
h = alpha q^2 sets how flat the staircase is: at h ~ 5 the slope is ~0.1 in the middle of a cell, at h >~ 20 it is
0 up to rounding except in a thin band around the cell edges.

**What this measures.** The loss gradient that reaches a DCT coefficient x through the layer is
``dL/dQ_d * dQ_d/dx``. Where the slope is ~0, the input gradient through the layer is ~0 for that coefficient
whatever the loss, so a gradient-based attack cannot move it: this is the mechanism behind gradient masking by the
soft quantizer (a flat, not a robust, function). :func:`slope_stats` reports, for real images, the share of
coefficients whose slope is below :data:`SLOPE_THRESHOLD` (1% of the identity's slope of 1) and the share where
it is exactly zero, per frequency (8x8 maps, luma and chroma) and per channel. It describes the deployed (soft)
quantizer whatever ``layer.mode`` is. Saturation: at +/-127 q the window is clamped to the last 5 indices; the
formula still holds there (and the slope goes to 0 beyond the last point).

The slope is computed analytically in the layer's working dtype (float32 for float32 images, as the deployed
layer and an attacker's autograd see it): an *exactly* zero slope means every weight but one underflowed to 0.
"""

from __future__ import annotations

import torch

from .quantize import _candidate_points, _operand, _per_channel

__all__ = ["SLOPE_THRESHOLD", "hardness_tables", "soft_quantize_slope", "slope_stats"]

# A coefficient counts as "flat" where its soft-quantizer slope dQ_d/dx is below this (1% of the identity's slope).
SLOPE_THRESHOLD = 0.01

_CHANNELS = ("Y", "Cb", "Cr")


def hardness_tables(layer) -> dict:
    """Per-frequency hardness ``alpha * q^2`` of a :class:`~robustbench_jpeg.jpeg.JpegLayer`.

    Returns:
        ``{"luma": 8x8 list, "chroma": 8x8 list}`` of floats, natural (row-major) order, row = vertical frequency.
    """
    with torch.no_grad():
        luma = layer.alpha_luma.double() * layer.q_luma.double() ** 2
        chroma = layer.alpha_chroma.double() * layer.q_chroma.double() ** 2
    return {"luma": luma.cpu().tolist(), "chroma": chroma.cpu().tolist()}


def soft_quantize_slope(
    x: torch.Tensor,
    q: torch.Tensor | float,
    alpha: torch.Tensor | float,
    window: int | None = 5,
    num_bits: int = 8,
) -> torch.Tensor:
    """The local slope ``dQ_d/dx = 2 alpha Var_p(y)`` of :func:`~robustbench_jpeg.jpeg.functional.soft_quantize`.

    Same arguments and the same candidate window (centred on the detached hard index, clamped at +/-127 q) as
    ``soft_quantize``; equal to its autograd derivative in ``x``. Returns a tensor of the broadcast shape, >= 0.
    """
    q = _operand(q, x)
    alpha = _operand(alpha, x)
    points = _candidate_points(x, q, window, num_bits)
    weights = torch.softmax(-alpha * (points - x) ** 2, dim=0)
    mean = (weights * points).sum(dim=0)
    variance = (weights * (points - mean) ** 2).sum(dim=0)  # exactly 0 when the weights are exactly one-hot
    return 2 * alpha * variance


def _shares(counts: torch.Tensor, per_frequency: int) -> dict:
    """(3, 8, 8) counts -> luma map, chroma map (Cb and Cr pooled) and per-channel overall shares."""
    counts = counts.double()
    return {
        "luma": (counts[0] / per_frequency).tolist(),
        "chroma": ((counts[1] + counts[2]) / (2 * per_frequency)).tolist(),
        "channel": {name: float(counts[c].sum()) / (64 * per_frequency) for c, name in enumerate(_CHANNELS)},
    }


def slope_stats(layer, images: torch.Tensor, batch_size: int = 256) -> dict:
    """How flat is the deployed soft quantizer on these images? Shares of coefficients with slope ~0 and exactly 0.

    Args:
        layer: a :class:`~robustbench_jpeg.jpeg.JpegLayer` (its tables, alpha, window and bits; any mode).
        images: RGB in [0, 1], float, (N, 3, H, W) with H and W multiples of 8; moved to the layer's device in
            batches.
        batch_size: images per batch.

    Returns:
        Plain JSON-able data::

            {"threshold": SLOPE_THRESHOLD, "images": N, "coefficients_per_frequency": N * blocks per image,
             "below_threshold": {"luma": 8x8, "chroma": 8x8, "channel": {"Y": s, "Cb": s, "Cr": s}},
             "zero": {same layout}, "mean_slope": {"Y": m, "Cb": m, "Cr": m}}

        ``below_threshold``: share of coefficients with slope < ``threshold``; ``zero``: share with slope exactly 0
        (a subset). The luma map is Y's; the chroma map pools Cb and Cr (they share a table); ``channel`` is the
        share over all 64 frequencies of that channel.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a (N, 3, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    if images.shape[0] == 0:
        raise ValueError("images is empty: need at least one image")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    device = layer.q_luma.device
    below = torch.zeros(3, 8, 8, dtype=torch.int64, device=device)
    zero = torch.zeros_like(below)
    slope_sum = torch.zeros(3, dtype=torch.float64, device=device)
    per_frequency = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            coeffs = layer.encode(images[start : start + batch_size].to(device))
            q = _per_channel(layer.q_luma, layer.q_chroma, coeffs)
            alpha = _per_channel(layer.alpha_luma, layer.alpha_chroma, coeffs)
            slope = soft_quantize_slope(coeffs, q, alpha, layer.config.window, layer.config.num_bits)
            below += (slope < SLOPE_THRESHOLD).sum(dim=(0, 2, 3))
            zero += (slope == 0).sum(dim=(0, 2, 3))
            slope_sum += slope.double().sum(dim=(0, 2, 3, 4, 5))
            per_frequency += coeffs.shape[0] * coeffs.shape[2] * coeffs.shape[3]
    mean_slope = (slope_sum / (64 * per_frequency)).tolist()
    return {
        "threshold": SLOPE_THRESHOLD,
        "images": int(images.shape[0]),
        "coefficients_per_frequency": per_frequency,
        "below_threshold": _shares(below.cpu(), per_frequency),
        "zero": _shares(zero.cpu(), per_frequency),
        "mean_slope": dict(zip(_CHANNELS, mean_slope, strict=True)),
    }
