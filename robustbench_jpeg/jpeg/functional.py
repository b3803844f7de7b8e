"""Differentiable JPEG (JPEG-DL) as pure functions.

The pipeline follows the official JPEG-DL code (Salamah et al., arXiv 2410.07081; see docs/jpeg-layer.md) on the
public [0, 1] RGB scale:

1. scale to [0, 255] and level-shift by 128;
2. RGB -> YCbCr (BT.601 full range, JFIF weights) with the official code's ``chroma_offset`` (+0.5 on the
   +/-128 scale; 0.0 is standard JPEG);
3. no chroma subsampling (4:4:4);
4. cut into non-overlapping 8x8 blocks (H and W must be multiples of 8);
5. orthonormal 8x8 DCT-II (the JPEG FDCT scaling), done as one 64x64 matmul in float32;
6. quantize each coefficient in one of the modes of ``QUANT_MODES`` (see :func:`quantize`);
7. inverse DCT and un-blocking;
8. YCbCr -> RGB, +128, divide by 255. **No clamp** (the official layer leaves the output unclamped).

All public functions take and return NCHW tensors. The coefficient layout used between the DCT and the
inverse DCT is ``(B, 3, H/8, W/8, 8, 8)``: channel 0 is Y, 1 is Cb, 2 is Cr, and the last two axes are
(u, v) = (vertical, horizontal) frequency in natural (row-major) order.

No host work per call: when every input is already a tensor on the working device (as in :class:`JpegLayer`), the
forward creates no CPU tensor and copies nothing from the host. The 64x64 DCT matrix is built once per
(device, dtype) and cached; Python-number softness/steps are used as kernel scalars or filled on the device.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "QUANT_MODES",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "blockify",
    "unblockify",
    "dct_matrix",
    "dct_8x8",
    "idct_8x8",
    "soft_quantize",
    "hard_quantize",
    "bpda_quantize",
    "bpda_hard_quantize",
    "surrogate_quantize",
    "quantize",
    "jpeg_dl",
    "jpeg_coefficients",
    "coefficients_to_rgb",
]

# The quantizer modes, the single source of their names (JpegLayer.mode, quantize, jpeg_dl). See quantize().
QUANT_MODES = ("soft", "hard", "bpda", "bpda-hard", "surrogate")

# BT.601 full range (JFIF) weights.
_WR, _WG, _WB = 0.299, 0.587, 0.114
_CB_SCALE = 2.0 * (1.0 - _WB)  # 1.772
_CR_SCALE = 2.0 * (1.0 - _WR)  # 1.402


def _check_image(x: torch.Tensor, name: str = "input") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be an RGB batch of shape (B, 3, H, W), got {tuple(x.shape)}")
    if x.shape[-2] % 8 or x.shape[-1] % 8:
        raise ValueError(
            f"{name} height and width must be multiples of 8 for 8x8 block DCT, got H={x.shape[-2]}, W={x.shape[-1]}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor with RGB in [0, 1], got dtype {x.dtype}")


def _check_coefficients(coeffs: torch.Tensor, name: str = "coefficients") -> None:
    if not isinstance(coeffs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(coeffs).__name__}")
    if coeffs.dim() != 6 or coeffs.shape[1] != 3 or coeffs.shape[-2:] != (8, 8):
        raise ValueError(f"{name} must have shape (B, 3, H/8, W/8, 8, 8), got {tuple(coeffs.shape)}")
    if not coeffs.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {coeffs.dtype}")


def rgb_to_ycbcr(rgb255: torch.Tensor, chroma_offset: float = 0.5) -> torch.Tensor:
    """Level-shifted RGB (values in [-128, 127]) -> YCbCr on the same scale.

    Shape: (B, 3, H, W) -> (B, 3, H, W). Channel order Y, Cb, Cr.
    """
    r, g, b = rgb255.unbind(dim=1)
    y = _WR * r + _WG * g + _WB * b
    cb = (b - y) / _CB_SCALE + chroma_offset
    cr = (r - y) / _CR_SCALE + chroma_offset
    return torch.stack((y, cb, cr), dim=1)


def ycbcr_to_rgb(ycc: torch.Tensor, chroma_offset: float = 0.5) -> torch.Tensor:
    """Exact inverse of :func:`rgb_to_ycbcr`. Shape: (B, 3, H, W) -> (B, 3, H, W)."""
    y, cb, cr = ycc.unbind(dim=1)
    cb = cb - chroma_offset
    cr = cr - chroma_offset
    r = y + _CR_SCALE * cr
    b = y + _CB_SCALE * cb
    g = y - (_WB * _CB_SCALE / _WG) * cb - (_WR * _CR_SCALE / _WG) * cr  # 0.344136, 0.714136
    return torch.stack((r, g, b), dim=1)


def blockify(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/8, W/8, 8, 8), blocks in raster order."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)


def unblockify(blocks: torch.Tensor) -> torch.Tensor:
    """(B, C, H/8, W/8, 8, 8) -> (B, C, H, W), the inverse of :func:`blockify`."""
    b, c, hb, wb, _, _ = blocks.shape
    return blocks.permute(0, 1, 2, 4, 3, 5).reshape(b, c, hb * 8, wb * 8)


def dct_matrix(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix D, ``D[u, x] = c(u)/2 * cos((2x+1) u pi / 16)``.

    The 2-D block transform is ``D @ f @ D.T``, the JPEG FDCT scaling (energy preserving).
    """
    u = torch.arange(8, dtype=torch.float64).unsqueeze(1)
    x = torch.arange(8, dtype=torch.float64).unsqueeze(0)
    d = torch.cos((2 * x + 1) * u * math.pi / 16) * 0.5
    d[0] = d[0] / math.sqrt(2.0)
    return d.to(dtype=dtype, device=device)


# (device, dtype) -> the 64x64 matrix kron(D, D). Built once per key, so the forward does no host work.
_KRON_DCT_CACHE: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _kron_dct(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``kron(D, D)`` (64, 64), cached per (device, dtype): ``vec(D f D^T) = kron(D, D) vec(f)`` (row-major vec).

    The first call for a key computes the product in float64 on the CPU and converts it once to ``dtype`` on
    ``device`` (one host->device copy per key, ever); later calls return the same tensor object.
    """
    key = (torch.device(device), dtype)
    k = _KRON_DCT_CACHE.get(key)
    if k is None:
        # A normal tensor even if the first call happens under inference_mode (an inference tensor could not be
        # saved for a later backward).
        with torch.inference_mode(False), torch.no_grad():
            d = dct_matrix(torch.float64)
            k = torch.kron(d, d).to(device=device, dtype=dtype)
        if type(k) is not torch.Tensor:  # built under a tracing mode (e.g. FakeTensorMode): use it, do not keep it
            return k
        _KRON_DCT_CACHE[key] = k
    return k


def dct_8x8(blocks: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT of every 8x8 block, one matmul. Shape: (..., 8, 8) -> (..., 8, 8)."""
    k = _kron_dct(blocks.dtype, blocks.device)
    flat = blocks.reshape(*blocks.shape[:-2], 64)
    return (flat @ k.T).reshape(blocks.shape)


def idct_8x8(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct_8x8` (the transpose, since the transform is orthonormal)."""
    k = _kron_dct(coeffs.dtype, coeffs.device)
    flat = coeffs.reshape(*coeffs.shape[:-2], 64)
    return (flat @ k).reshape(coeffs.shape)


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
      every channel, or a ``(luma, chroma)`` pair. Ignored by the other modes.
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


def jpeg_coefficients(x: torch.Tensor, chroma_offset: float = 0.5) -> torch.Tensor:
    """RGB in [0, 1] -> unquantized YCbCr DCT coefficients ``(B, 3, H/8, W/8, 8, 8)`` on the JPEG scale."""
    _check_image(x)
    ycc = rgb_to_ycbcr(x * 255.0 - 128.0, chroma_offset)
    return dct_8x8(blockify(ycc))


def coefficients_to_rgb(coeffs: torch.Tensor, chroma_offset: float = 0.5) -> torch.Tensor:
    """Inverse of :func:`jpeg_coefficients`: coefficients ``(B, 3, H/8, W/8, 8, 8)`` -> RGB on the [0, 1] scale.

    Not clamped (as the official layer). Apply it to quantized coefficients to finish the JPEG-DL layer.
    """
    _check_coefficients(coeffs)
    ycc = unblockify(idct_8x8(coeffs))
    return (ycbcr_to_rgb(ycc, chroma_offset) + 128.0) / 255.0


def jpeg_dl(
    x: torch.Tensor,
    q_y: torch.Tensor,
    q_c: torch.Tensor,
    alpha_y: torch.Tensor | float = 5.0,
    alpha_c: torch.Tensor | float = 5.0,
    mode: str = "soft",
    window: int | None = 5,
    num_bits: int = 8,
    chroma_offset: float = 0.5,
    *,
    surrogate_alpha: torch.Tensor | float | tuple | None = None,
) -> torch.Tensor:
    """The JPEG-DL layer as a function: RGB in [0, 1] -> JPEG-compressed-and-decoded RGB on the [0, 1] scale.

    Args:
        x: RGB batch in [0, 1], shape (B, 3, H, W), H and W multiples of 8, floating point.
        q_y: luma step table, shape (8, 8) in natural order, or a scalar.
        q_c: chroma step table shared by Cb and Cr, same shapes as ``q_y``.
        alpha_y, alpha_c: soft-quantizer softness (scalars or (8, 8)).
        mode: one of ``QUANT_MODES`` (see :func:`quantize`): ``"soft"`` (Q_d, as trained and deployed),
            ``"hard"``, ``"bpda"``, ``"bpda-hard"`` or ``"surrogate"``.
        window: soft-quantizer window (5 as the official code), None for the full alphabet.
        num_bits: index alphabet size 2^b - 1 (8 bits -> [-127, 127]).
        chroma_offset: +0.5 as the official code, 0.0 for standard JPEG.
        surrogate_alpha: the surrogate's softness for ``mode="surrogate"`` (required there, ignored otherwise).

    Returns:
        (B, 3, H, W) RGB on the [0, 1] scale. Not clamped: values may leave [0, 1] as in the official code.

    Example:
        >>> from robustbench_jpeg.jpeg.tables import standard_tables
        >>> q_y, q_c = standard_tables(50)
        >>> out = jpeg_dl(torch.rand(2, 3, 32, 32), q_y.float(), q_c.float(), mode="hard", chroma_offset=0.0)
        >>> out.shape
        torch.Size([2, 3, 32, 32])
    """
    coeffs = jpeg_coefficients(x, chroma_offset)
    quantized = quantize(coeffs, q_y, q_c, alpha_y, alpha_c, mode, window, num_bits, surrogate_alpha=surrogate_alpha)
    return coefficients_to_rgb(quantized, chroma_offset)
