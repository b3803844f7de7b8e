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
* pooled over S training seeds (the same n images in every seed): the exact paired sign-flip test of the per-image
  differences summed over the seeds. For image i, k_i = sum over seeds of (JPEG-DL right) - (baseline right), an
  integer in [-S, S]; the statistic is T = sum_i k_i. Under the null hypothesis that on every image the two arms
  are exchangeable (swapping their results on an image, in all seeds at once, is as likely as not), T has the
  distribution of sum_i e_i |k_i| with independent fair signs e_i; it is computed exactly (a convolution of one
  binomial per value of |k_i|), and p = P(|T| >= |T observed|). With one seed it is the exact McNemar test. The
  image is the unit: every seed scores the same images, so counting S x n image-seed pairs as independent (a
  stratified McNemar or Cochran-Mantel-Haenszel test over seeds) would count each image's own difficulty S times;
  and a t-test over the S per-seed differences (2 degrees of freedom for 3 seeds) ignores the sampling of the test
  images. The test conditions on the trained models: it asks whether these S pairs differ on the test
  distribution; how much a further training seed could move the difference is what the seeds' spread shows.
  Its interval: the mean over images of k_i / S (the seed-averaged difference) +- 1.96 times its standard error
  (sample std over images / sqrt(n)), a normal approximation that is close for hundreds of images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
from scipy.stats import binom, binomtest

Z_95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
CI_METHOD = "Newcombe hybrid score (square-and-add, Wilson limits, corrected phi), 95%"
P_METHOD = "exact McNemar (two-sided binomial)"
POOLED_METHOD = "exact paired sign-flip test over images of the differences summed over seeds (two-sided)"


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


TINY_P = 1e-300  # below it a float p-value has underflowed (to 0 or a subnormal): only a bound is known


def format_p(p: float, spec: str = ".2g") -> str:
    """``format(p, spec)``, or ``<1e-300`` where the p-value underflowed (never ``p = 0``)."""
    return f"<{TINY_P:g}" if p < TINY_P else format(p, spec)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: ``binomtest(min(b, c), b + c, 0.5).pvalue``; 1 when b + c = 0."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


def pooled_sign_flip_p(deltas: Iterable[np.ndarray]) -> float:
    """Exact two-sided p-value of the paired sign-flip test pooled over seeds (see the module docstring).

    ``deltas``: one vector per seed of per-image differences (arm right minus partner right: -1, 0 or 1) on the
    same images in the same order; longer vectors are cut to the shortest. One vector gives the exact McNemar p.

    Example (two seeds, four images; image 0 favours the arm in both seeds, image 1 in one):
        >>> round(pooled_sign_flip_p([np.array([1, 1, 0, -1]), np.array([1, 0, 0, 0])]), 4)
        0.75
    """
    vectors = [np.asarray(d, dtype=np.int64) for d in deltas]
    if not vectors:
        raise ValueError("pooled_sign_flip_p needs at least one vector of differences")
    m = min(v.size for v in vectors)
    if any(np.abs(v).max(initial=0) > 1 for v in vectors):
        raise ValueError("differences of paired correctness must be -1, 0 or 1")
    k = np.sum([v[:m] for v in vectors], axis=0)
    observed = int(abs(k.sum()))
    magnitudes = np.bincount(np.abs(k), minlength=len(vectors) + 1)
    # distribution of T = sum_v v * (2 X_v - c_v), X_v ~ Binomial(c_v, 1/2), on the integer grid [-total, total]
    total = int(sum(v * int(c) for v, c in enumerate(magnitudes)))
    pmf = np.zeros(2 * total + 1)
    pmf[total] = 1.0
    for value, count in enumerate(magnitudes):
        if value == 0 or count == 0:
            continue
        steps = binom.pmf(np.arange(count + 1), count, 0.5)  # X_v = j moves T by value * (2j - count)
        shifted = np.zeros_like(pmf)
        for j, weight in enumerate(steps):
            offset = value * (2 * j - int(count))
            lo, hi = max(0, offset), min(pmf.size, pmf.size + offset)
            shifted[lo:hi] += weight * pmf[lo - offset : hi - offset]
        pmf = shifted
    grid = np.arange(-total, total + 1)
    return float(min(1.0, pmf[np.abs(grid) >= observed].sum()))


def pooled_interval(deltas: Iterable[np.ndarray]) -> tuple[float, float, float]:
    """Mean seed-averaged per-image difference and its 95% normal-approximation interval (module docstring)."""
    vectors = [np.asarray(d, dtype=float) for d in deltas]
    m = min(v.size for v in vectors)
    averaged = np.mean([v[:m] for v in vectors], axis=0)
    mean = float(averaged.mean())
    half = Z_95 * float(averaged.std(ddof=1)) / math.sqrt(m) if m > 1 else math.inf
    return mean, max(-1.0, mean - half), min(1.0, mean + half)


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
