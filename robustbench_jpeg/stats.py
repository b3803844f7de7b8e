"""Paired statistics for two classifiers scored on the same images, Holm adjustment, and mean ± std over seeds.

Formulas (also in docs/report.md). On the same n images:

* a = images both arms get right, b = JPEG-DL right and the baseline wrong, c = the reverse, d = both wrong
  (d = n - a - b - c).
* p1 = (a + b) / n (JPEG-DL accuracy), p2 = (a + c) / n (baseline accuracy), difference = p1 - p2 = (b - c) / n.
* 95% interval: Newcombe's hybrid score ("square-and-add") interval for a difference of paired proportions
  (Newcombe 1998, Statistics in Medicine 17:2635-2650, method 10: Wilson limits without continuity correction),
  with the corrected correlation estimate phi used for it by Fagerland, Lydersen & Laake (2014, Statistics in
  Medicine 33:2850-2875) and the R packages contingencytables and ratesci:

  - (l1, u1), (l2, u2): Wilson score intervals of p1 and p2 (z = 1.959964, no continuity correction).
  - phi = C / sqrt((a + b)(c + d)(a + c)(b + d)) with C = ad - bc - n/2 if ad - bc > n/2, C = 0 if
    0 <= ad - bc <= n/2, C = ad - bc if ad - bc < 0; phi = 0 when any of the four marginal totals is 0.
  - lower = diff - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
  - upper = diff + sqrt((u1 - p1)^2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)^2)

  The interval lies in [-1, 1] and contains the difference. With the plain phi = (ad - bc) / sqrt(...) it would
  collapse to [0, 0] when b = c = 0 and a = d (and nearly so whenever b = c = 0 with a, d > 0); the corrected phi
  keeps it open. For CIFAR-sized n the two versions differ noticeably only when b + c is tiny.
* exact two-sided McNemar p-value: ``scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue``, which equals
  min(1, 2 P(X <= min(b, c))) with X ~ Binomial(b + c, 1/2); p = 1 when b + c = 0.
* Holm-Bonferroni: the i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
from scipy.stats import binomtest

Z_95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
CI_METHOD = "Newcombe hybrid score (square-and-add, Wilson limits, corrected phi), 95%"
P_METHOD = "exact McNemar (two-sided binomial)"


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
    """Exact two-sided McNemar p-value: ``binomtest(min(b, c), b + c, 0.5).pvalue``; 1 when b + c = 0."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


def wilson_interval(x: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for a proportion x / n: scipy's
    ``binomtest(x, n).proportion_ci(method="wilson")`` at the confidence level of ``z`` (95% for ``Z_95``)."""
    confidence = 2 * NormalDist().cdf(z) - 1
    ci = binomtest(int(x), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def newcombe_paired_interval(
    a: int, b: int, c: int, d: int, z: float = Z_95, corrected_phi: bool = True
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for (a + b) / n - (a + c) / n from a paired 2x2 table (module docstring).

    ``corrected_phi=False`` uses the plain phi = (ad - bc) / sqrt(...) instead of Newcombe's corrected one.
    """
    a, b, c, d = int(a), int(b), int(c), int(d)
    if min(a, b, c, d) < 0:
        raise ValueError(f"cell counts must be non-negative, got a={a}, b={b}, c={c}, d={d}")
    n = a + b + c + d
    if n == 0:
        raise ValueError("the table is empty (n = 0)")
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)  # exact integer: zero when any marginal total is zero
    cross = a * d - b * c
    if margins == 0:
        phi = 0.0
    else:
        if corrected_phi and cross >= 0:
            cross = max(cross - n / 2, 0.0)
        phi = cross / math.sqrt(margins)
    dl1, du1, dl2, du2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    # x^2 - 2 phi x y + y^2 written as (x - y)^2 + 2 (1 - phi) x y: the same number, without the cancellation
    # of two nearly equal terms when phi is close to 1 (many images, few discordant ones)
    lower = (p1 - p2) - math.sqrt(max((dl1 - du2) ** 2 + 2 * (1 - phi) * dl1 * du2, 0.0))
    upper = (p1 - p2) + math.sqrt(max((du1 - dl2) ** 2 + 2 * (1 - phi) * du1 * dl2, 0.0))
    return max(-1.0, lower), min(1.0, upper)


def paired_difference(b: int, c: int, n: int, *, a: int) -> PairedDifference:
    """Difference of paired proportions (b - c) / n with Newcombe's 95% interval and the exact McNemar p-value.

    ``a`` (images both arms get right) is needed: the interval depends on the two accuracies, not only on b and c.

    Example (n = 10 images: a = 2 both right, b = 3, c = 1, d = 4 both wrong):
        >>> d = paired_difference(3, 1, 10, a=2)
        >>> round(d.diff, 4), round(d.ci_low, 4), round(d.ci_high, 4), d.p_mcnemar
        (0.2, -0.2017, 0.5261, 0.625)
    """
    a, b, c, n = int(a), int(b), int(c), int(n)
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if min(a, b, c) < 0:
        raise ValueError(f"counts must be non-negative, got a={a}, b={b}, c={c}")
    if a + b + c > n:
        raise ValueError(f"a + b + c = {a + b + c} exceeds n = {n}")
    lo, hi = newcombe_paired_interval(a, b, c, n - a - b - c)
    return PairedDifference(n, b, c, (b - c) / n, lo, hi, mcnemar_exact_p(b, c))


def paired_from_samples(jpegdl: np.ndarray, baseline: np.ndarray) -> PairedDifference:
    """Paired difference from two per-sample correctness vectors of the same images (same length)."""
    jpegdl, baseline = np.asarray(jpegdl, dtype=bool), np.asarray(baseline, dtype=bool)
    if jpegdl.shape != baseline.shape:
        raise ValueError(f"paired vectors must have the same length, got {jpegdl.shape} and {baseline.shape}")
    a = int(np.count_nonzero(jpegdl & baseline))
    b = int(np.count_nonzero(jpegdl & ~baseline))
    c = int(np.count_nonzero(~jpegdl & baseline))
    return paired_difference(b, c, jpegdl.size, a=a)


def holm_adjust(pvalues: Iterable[float | None]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Step-down: the i-th smallest of the m non-NaN p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)),
    so the adjusted values keep the order of the raw ones and never exceed 1. NaN (or None) entries stay NaN and
    are not counted in m. Rejecting every hypothesis whose adjusted p is below alpha controls the family-wise
    error rate at alpha over the family given.
    """
    vals = [math.nan if p is None else float(p) for p in pvalues]
    present = [i for i, p in enumerate(vals) if not math.isnan(p)]
    bad = [vals[i] for i in present if not 0.0 <= vals[i] <= 1.0]
    if bad:
        raise ValueError(f"p-values must lie in [0, 1], got {bad}")
    m = len(present)
    out = [math.nan] * len(vals)
    running = 0.0
    for rank, i in enumerate(sorted(present, key=lambda j: vals[j])):
        running = max(running, min(1.0, (m - rank) * vals[i]))
        out[i] = running
    return out


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for a single value) and count of the non-NaN ``values``."""
    arr = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], float)
    if arr.size == 0:
        return math.nan, math.nan, 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return float(arr.mean()), std, int(arr.size)
