"""Quantization step tables: the standard JPEG ones, the paper's initial ones, and the mapping to integers.

All tables are 8x8 in natural (row-major) order, row = vertical frequency u, column = horizontal frequency v.
"""

from __future__ import annotations

import torch

from ._paper_tables import PAPER_TABLES

__all__ = [
    "STANDARD_LUMA",
    "STANDARD_CHROMA",
    "PAPER_TABLES",
    "standard_tables",
    "paper_tables",
    "to_jpeg_integer_table",
    "ZIGZAG",
]

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), natural order.
STANDARD_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
STANDARD_CHROMA = [
    [17, 18, 24, 47, 99, 99, 99, 99],
    [18, 21, 26, 66, 99, 99, 99, 99],
    [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
]

# JPEG zigzag scan: ZIGZAG[k] is the natural-order (row-major) index of the k-th zigzag coefficient.
ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]  # fmt: skip


def _ijg_scale(table: list[list[int]], quality: int) -> torch.Tensor:
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = torch.tensor(table, dtype=torch.int64)
    return torch.clamp((base * scale + 50) // 100, 1, 255)


def standard_tables(quality: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """The standard JPEG luma and chroma tables at an IJG ``quality`` (as libjpeg and Pillow), int64 8x8."""
    return _ijg_scale(STANDARD_LUMA, quality), _ijg_scale(STANDARD_CHROMA, quality)


def paper_tables(name: str, q_max: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's initial tables for ``name`` (a key of PAPER_TABLES), rescaled so that max luma = ``q_max``.

    The tables scale linearly with q_max (docs/method.md, section 3: one shared kappa); the listed ones are
    q_max = 10.
    """
    if name not in PAPER_TABLES:
        raise KeyError(f"no paper table named {name!r}; available: {sorted(PAPER_TABLES)}")
    luma, chroma = (torch.tensor(t, dtype=torch.float32) for t in PAPER_TABLES[name])
    factor = q_max / float(luma.max())
    return luma * factor, chroma * factor


def to_jpeg_integer_table(table: torch.Tensor) -> torch.Tensor:
    """Round a float step table to what a baseline JPEG encoder accepts: integers in 1..255 (int64)."""
    return torch.clamp(torch.round(table.detach().double()), 1, 255).to(torch.int64).cpu()
