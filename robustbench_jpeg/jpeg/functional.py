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
    "surrogate_hard_quantize",
    "quantize",
    "jpeg_dl",
    "jpeg_coefficients",
    "coefficients_to_rgb",
]

# The quantizer modes, the single source of their names (JpegLayer.mode, quantize, jpeg_dl). See quantize().

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


def prepare_dct(device: torch.device | str, dtype: torch.dtype = torch.float32) -> None:
    """Build the cached DCT matrix for (device, dtype) now. Call it before ``torch.compile``: a first call inside the
    traced function would trace CPU ops and a host-to-device copy into the graph, and the cache write would force a
    recompile (two graphs where one suffices)."""
    _kron_dct(dtype, torch.device(device))


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


from .quantize import (  # noqa: E402  (the quantizers, re-exported: the pipeline's step 6)
    QUANT_MODES,
    bpda_hard_quantize,
    bpda_quantize,
    hard_quantize,
    quantize,
    soft_quantize,
    surrogate_hard_quantize,
    surrogate_quantize,
)


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
