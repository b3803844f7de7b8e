"""Paired statistics for two classifiers scored on the same images, and mean ± std over training seeds.

Pure Python (``math.comb``), no SciPy. Formulas (also in docs/report.md):

* b = images JPEG-DL gets right and the baseline wrong, c = the reverse, n = images.
* difference = (b - c) / n  (JPEG-DL accuracy minus baseline accuracy on the same images).
* 95% Wald interval for a difference of paired proportions:
  diff ± 1.96 * sqrt((b + c) - (b - c)^2 / n) / n.
* exact two-sided McNemar p-value: min(1, 2 * P(X <= min(b, c))) with X ~ Binomial(b + c, 1/2); p = 1 when b + c = 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z_95 = 1.96


@dataclass(frozen=True)
class PairedDifference:
    """JPEG-DL minus baseline on the same ``n`` images; ``b``/``c`` are the discordant counts."""

    n: int
    b: int
    c: int
    diff: float
    ci_low: float
    ci_high: float
    p_mcnemar: float

    def as_dict(self) -> dict:
        return asdict(self)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: ``min(1, 2 * P(X <= min(b, c)))``, X ~ Bin(b + c, 1/2); 1 when b + c = 0."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    m = b + c
    if m == 0:
        return 1.0
    # sum_{k <= min(b, c)} C(m, k) in exact integers; each term from the previous one (C(m, k) = C(m, k-1) (m-k+1) / k,
    # always an exact division), which is math.comb's value at a fraction of the cost for m in the thousands
    term = tail = math.comb(m, 0)
    for k in range(1, min(b, c) + 1):
        term = term * (m - k + 1) // k
        tail += term
    return min(1.0, (2 * tail) / (2**m))  # one final division of exact integers


def paired_difference(b: int, c: int, n: int) -> PairedDifference:
    """Difference of paired proportions (b - c) / n with its 95% Wald interval and the exact McNemar p-value.

    Example:
        >>> d = paired_difference(3, 1, 10)
        >>> round(d.diff, 4), round(d.ci_high - d.diff, 4), d.p_mcnemar
        (0.2, 0.3719, 0.625)
    """
    b, c, n = int(b), int(c), int(n)
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if b + c > n:
        raise ValueError(f"b + c = {b + c} exceeds n = {n}")
    diff = (b - c) / n
    half = Z_95 * math.sqrt(max((b + c) - (b - c) ** 2 / n, 0.0)) / n
    return PairedDifference(n, b, c, diff, diff - half, diff + half, mcnemar_exact_p(b, c))


def paired_from_samples(jpegdl: np.ndarray, baseline: np.ndarray) -> PairedDifference:
    """Paired difference from two per-sample correctness vectors of the same images (same length)."""
    jpegdl, baseline = np.asarray(jpegdl, dtype=bool), np.asarray(baseline, dtype=bool)
    if jpegdl.shape != baseline.shape:
        raise ValueError(f"paired vectors must have the same length, got {jpegdl.shape} and {baseline.shape}")
    b = int(np.count_nonzero(jpegdl & ~baseline))
    c = int(np.count_nonzero(~jpegdl & baseline))
    return paired_difference(b, c, jpegdl.size)


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for a single value) and count of the non-NaN ``values``."""
    arr = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], float)
    if arr.size == 0:
        return math.nan, math.nan, 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return float(arr.mean()), std, int(arr.size)
