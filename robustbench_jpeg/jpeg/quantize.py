"""The quantizers of the JPEG-DL layer (step 6 of the pipeline in :mod:`.functional`), per coefficient.

* ``soft``: the soft quantizer Q_d(x) = sum_i (i q) softmax_i(-alpha (x - i q)^2) over a window of candidate
  indices centred on the detached hard index (the official code: 5 points), or the full alphabet;
* ``hard``: true JPEG rounding q * round(x / q);
* ``bpda``: the deployed (soft) forward, identity backward (Athalye et al. 2018);
* ``bpda-hard``: hard rounding forward, identity backward;
* ``surrogate``: the soft forward at alpha, the backward of a soft quantizer at a smaller ``surrogate_alpha``;
* ``surrogate-hard``: hard rounding forward, the backward of a soft quantizer at ``surrogate_alpha`` (the
  surrogate attack on a layer deployed with hard rounding).

Reconstruction indices saturate at +/-(2^(b-1) - 1) (8 bits: +/-127), as the official code. docs/jpeg-layer.md
has the modes and their meaning; docs/method.md the quantizer's slope and hardness.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "QUANT_MODES",
    "soft_quantize",
    "hard_quantize",
    "bpda_quantize",
    "bpda_hard_quantize",
    "surrogate_quantize",
    "surrogate_hard_quantize",
    "quantize",
]

QUANT_MODES = ("soft", "hard", "bpda", "bpda-hard", "surrogate", "surrogate-hard")


def _index_limits(num_bits: int) -> tuple[int, int]:
    top = 2 ** (num_bits - 1) - 1  # 127 for 8 bits: reconstruction indices stay in [-127, 127]
    return -top, top


def _detach(value: torch.Tensor | float) -> torch.Tensor | float:
    return value.detach() if isinstance(value, torch.Tensor) else value


def _operand(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor | float:
    """A step/softness operand for ``like``: tensors on ``like``'s device and dtype, Python numbers kept as numbers.

    Numbers then enter the kernels as scalars, so no CPU tensor is created and nothing is copied to the device.
    """
    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype, device=like.device)  # a no-op when it already matches
    if isinstance(value, (int, float)):
        return float(value)
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)  # lists, arrays: converted (host work)


def _candidate_points(x: torch.Tensor, q: torch.Tensor | float, window: int | None, num_bits: int) -> torch.Tensor:
    """Reconstruction points ``i q`` of the soft quantizer, candidate axis first: ``(K, *broadcast(x, q))``.

    ``window`` points starting at ``clamp(round(x/q) - window // 2, lo, hi - window + 1)`` (the detached hard index;
    no gradient flows through it), or the full alphabet ``[lo, hi]`` when ``window`` is None.
    """
    lo, hi = _index_limits(num_bits)
    # The candidate axis goes first: softmax and sum over a leading axis run on contiguous slabs, which is far
    # faster than over a trailing axis of 5 (CPU) and launches the same few kernels (GPU).
    if window is None:
        offsets = torch.arange(lo, hi + 1, dtype=x.dtype, device=x.device)
        idx = offsets.view(-1, *([1] * x.dim()))
    else:
        if window < 1 or window > hi - lo + 1:
            raise ValueError(f"window must be in [1, {hi - lo + 1}] or None, got {window}")
        centre = torch.round(x.detach() / _detach(q))
        start = torch.clamp(centre - window // 2, lo, hi - window + 1)
        offsets = torch.arange(window, dtype=x.dtype, device=x.device)
        idx = start.unsqueeze(0) + offsets.view(-1, *([1] * start.dim()))
    return idx * q


def soft_quantize(
    x: torch.Tensor,
    q: torch.Tensor | float,
    alpha: torch.Tensor | float,
    window: int | None = 5,
    num_bits: int = 8,
) -> torch.Tensor:
    """The soft quantizer Q_d of JPEG-DL (docs/jpeg-layer.md, "Quantizer modes").

    ``Q_d(x) = sum_i (i q) softmax_i(-alpha (x - i q)^2)`` over a window of ``window`` indices centred on the
    detached hard index ``round(x / q)`` (the official code, K = 5), or over the full alphabet
    ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` when ``window`` is None. Either way reconstruction points stay within
    +/-127 q for 8 bits (hard saturation, as the official code). Inside a window the input slope is
    ``dQ_d/dx = 2 alpha Var_p(i q)`` (see :mod:`robustbench_jpeg.jpeg.hardness`).

    Args:
        x: coefficients, any shape.
        q: step sizes, broadcastable to ``x``, positive.
        alpha: softness, broadcastable to ``x`` (alpha -> inf gives hard rounding).
        window: number of candidate points, or None for the full alphabet.
        num_bits: b; the alphabet is ``[-(2^(b-1)-1), 2^(b-1)-1]``.

    Returns:
        Tensor of ``x``'s (broadcast) shape. Gradients flow to ``x``, ``q`` (and ``alpha`` if it requires grad).
    """
    q = _operand(q, x)
    alpha = _operand(alpha, x)
    points = _candidate_points(x, q, window, num_bits)
    weights = torch.softmax(-alpha * (points - x) ** 2, dim=0)
    return (weights * points).sum(dim=0)


def hard_quantize(x: torch.Tensor, q: torch.Tensor | float, num_bits: int = 8) -> torch.Tensor:
    """True JPEG quantize-dequantize ``q * round(x / q)``, with the same +/-(2^(b-1)-1) index saturation."""
    lo, hi = _index_limits(num_bits)
    q = _operand(q, x)
    return q * torch.clamp(torch.round(x / q), lo, hi)


# The straight-through constructions below return ``value - (v.detach() - v)``: ``v.detach() - v`` is exactly +0
# for finite v, and ``a - (+0)`` is ``a`` bit for bit (the sign of a zero included, unlike ``a + 0``), while the
# derivative of the whole expression is that of ``v``.


def bpda_quantize(
    x: torch.Tensor,
    q: torch.Tensor | float,
    alpha: torch.Tensor | float,
    window: int | None = 5,
    num_bits: int = 8,
) -> torch.Tensor:
    """Textbook BPDA (Athalye et al. 2018) of the deployed quantizer: forward :func:`soft_quantize`, backward identity.

    The forward value is bit-identical to ``soft_quantize(x, q, alpha, window, num_bits)`` (what the deployed layer
    computes); the backward pass replaces the quantizer by g(x) = x, so ``d out / d x = 1``. No gradient reaches
    ``q`` or ``alpha`` through this path.
    """
    deployed = soft_quantize(x.detach(), _detach(q), _detach(alpha), window, num_bits)
    return deployed - (x.detach() - x)


def bpda_hard_quantize(x: torch.Tensor, q: torch.Tensor | float, num_bits: int = 8) -> torch.Tensor:
    """Hard rounding forward (:func:`hard_quantize`), identity backward in ``x`` (straight-through).

    This is what mode ``bpda`` meant before it became the textbook BPDA of the deployed (soft) layer: the forward
    is *not* the deployed function. No gradient reaches ``q`` through this path.
    """
    hard = hard_quantize(x.detach(), _detach(q), num_bits)
    return hard - (x.detach() - x)


def surrogate_quantize(
    x: torch.Tensor,
    q: torch.Tensor | float,
    alpha: torch.Tensor | float,
    surrogate_alpha: torch.Tensor | float,
    window: int | None = 5,
    num_bits: int = 8,
) -> torch.Tensor:
    """Deployed soft quantizer forward, gradient of a softer soft quantizer backward (a smooth surrogate).

    Forward: bit-identical to ``soft_quantize(x, q, alpha, window, num_bits)``. Backward: exactly the backward of
    ``soft_quantize(x, q, surrogate_alpha, window, num_bits)`` (same window, centred on the same detached index), so
    ``d out / d x = 2 surrogate_alpha Var_p(i q)`` with the surrogate's weights p: non-zero where the deployed,
    harder quantizer is flat (the smooth-surrogate adaptive attack of Tramer et al. 2020). The gradient to ``q``
    (and to ``surrogate_alpha`` if it requires grad) is also the surrogate's; the deployed ``alpha`` gets none.
    """
    deployed = soft_quantize(x.detach(), _detach(q), _detach(alpha), window, num_bits)
    smooth = soft_quantize(x, q, surrogate_alpha, window, num_bits)
    return deployed - (smooth.detach() - smooth)


def surrogate_hard_quantize(
    x: torch.Tensor,
    q: torch.Tensor | float,
    surrogate_alpha: torch.Tensor | float,
    window: int | None = 5,
    num_bits: int = 8,
) -> torch.Tensor:
    """Hard rounding forward (:func:`hard_quantize`, bit-identical), the backward of
    ``soft_quantize(x, q, surrogate_alpha, window, num_bits)``: the smooth-surrogate attack on a layer deployed with
    hard rounding (a fixed standard JPEG), whose own gradient is zero almost everywhere."""
    hard = hard_quantize(x.detach(), _detach(q), num_bits)
    smooth = soft_quantize(x, q, surrogate_alpha, window, num_bits)
    return hard - (smooth.detach() - smooth)


def _luma_chroma(value):
    """A value for all channels, or a (luma, chroma) pair -> (luma, chroma)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"a per-channel value must be one value or a (luma, chroma) pair, got {len(value)} items")
        return value[0], value[1]
    return value, value


def _check_surrogate_alpha(surrogate_alpha) -> None:
    if surrogate_alpha is None:
        raise ValueError("mode 'surrogate' needs surrogate_alpha (the softness of the surrogate quantizer), got None")
    for value in _luma_chroma(surrogate_alpha):
        if isinstance(value, (int, float)) and not (math.isfinite(value) and value > 0):
            raise ValueError(f"surrogate_alpha must be positive and finite, got {value}")


def quantize(
    coeffs: torch.Tensor,
    q_y: torch.Tensor | float,
    q_c: torch.Tensor | float,
    alpha_y: torch.Tensor | float,
    alpha_c: torch.Tensor | float,
    mode: str = "soft",
    window: int | None = 5,
    num_bits: int = 8,
    *,
    surrogate_alpha: torch.Tensor | float | tuple | None = None,
) -> torch.Tensor:
    """Quantize-dequantize block coefficients ``(B, 3, H/8, W/8, 8, 8)``: luma table for Y, chroma for Cb and Cr.

    Modes (``QUANT_MODES``):

    - ``soft``: :func:`soft_quantize` with the tables and ``alpha`` (as trained and deployed);
    - ``hard``: :func:`hard_quantize` (true rounding with the same tables);
    - ``bpda``: :func:`bpda_quantize`, the textbook BPDA of the deployed layer (soft forward, identity backward);
    - ``bpda-hard``: :func:`bpda_hard_quantize` (hard forward, identity backward; the former meaning of ``bpda``);
    - ``surrogate``: :func:`surrogate_quantize` (soft forward, backward of the soft quantizer at
      ``surrogate_alpha``), which must then be given: one value (a number or a tensor broadcastable to 8x8) for
      every channel, or a ``(luma, chroma)`` pair. Ignored by the other modes;
    - ``surrogate-hard``: :func:`surrogate_hard_quantize` (hard forward, backward of the soft quantizer at
      ``surrogate_alpha``).
    """
    if mode not in QUANT_MODES:
        raise ValueError(f"unknown quantization mode {mode!r}; choose one of {QUANT_MODES}")
    q = _per_channel(q_y, q_c, coeffs)
    if mode == "hard":
        return hard_quantize(coeffs, q, num_bits)
    if mode == "bpda-hard":
        return bpda_hard_quantize(coeffs, q, num_bits)
    alpha = _per_channel(alpha_y, alpha_c, coeffs)
    if mode == "soft":
        return soft_quantize(coeffs, q, alpha, window, num_bits)
    if mode == "bpda":
        return bpda_quantize(coeffs, q, alpha, window, num_bits)
    _check_surrogate_alpha(surrogate_alpha)
    surrogate = _per_channel(*_luma_chroma(surrogate_alpha), coeffs)
    if mode == "surrogate-hard":
        return surrogate_hard_quantize(coeffs, q, surrogate, window, num_bits)
    return surrogate_quantize(coeffs, q, alpha, surrogate, window, num_bits)


def _per_channel(luma: torch.Tensor | float, chroma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Stack a luma and a chroma value/table into a (3, 1, 1, 8, 8) tensor (Y, Cb, Cr) broadcasting over blocks.

    Tensors are used where they are (moved only if on another device/dtype); numbers are filled on ``like``'s device.
    """

    def table(value):
        value = _operand(value, like)
        if isinstance(value, float):
            return like.new_full((8, 8), value)
        return value.expand(8, 8)

    luma, chroma = table(luma), table(chroma)
    return torch.stack((luma, chroma, chroma)).view(3, 1, 1, 8, 8)
