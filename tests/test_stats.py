"""Tests for robustbench_jpeg.stats: Newcombe's paired interval, exact McNemar, Holm, mean ± std.

Reference numbers (95%, 2x2 table a = both right, b = first only, c = second only, d = both wrong):

* (a, b, c, d) = (1, 1, 7, 12), the airway hyper-responsiveness example of Fagerland, Lydersen & Laake (2014,
  Statistics in Medicine 33:2850-2875): Newcombe square-and-add with corrected phi -0.5069 to -0.0256, and with the
  plain phi (ratesci's "MOVER-W") -0.5017 to -0.0361. Both pairs as printed in the ratesci package vignette
  "Paired contrasts" (rdpairci(x = c(1, 1, 7, 12)), rows MOVER-NW and MOVER-W), which cross-checks the first
  against the published example.
* (59, 6, 16, 80), the Cavo et al. (2012) example of the R package contingencytables (Fagerland et al.'s book,
  chapter 8), from its testthat file: Newcombe_square_and_add_CI_paired_2x2 -0.1186 to -0.0046, Wald -0.1184 to
  -0.0058, McNemar exact conditional test P = 0.052479.

The interval is also checked against an independent implementation below (Wilson limits found by root-finding on
the score equation instead of the closed form), itself checked against the same published numbers.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from robustbench_jpeg import stats
from robustbench_jpeg.stats import (
    Z_95,
    holm_adjust,
    mcnemar_exact_p,
    mean_std,
    newcombe_paired_interval,
    paired_difference,
    paired_from_samples,
    wilson_interval,
)

# ----------------------------------------------------------------------------------------------- references


def _wilson_by_root(x: int, n: int, z: float) -> tuple[float, float]:
    """Wilson limits as the roots of (t - p)^2 = z^2 t (1 - t) / n, found numerically below and above p."""
    p = x / n

    def f(t):
        return (t - p) ** 2 - z * z * t * (1 - t) / n

    inner = min(max(p, 1e-12), 1 - 1e-12)  # f < 0 here, also for x = 0 and x = n (t = p is then a root itself)
    lo = 0.0 if x == 0 else brentq(f, 0.0, inner, xtol=1e-15)
    hi = 1.0 if x == n else brentq(f, inner, 1.0, xtol=1e-15)
    return lo, hi


def _newcombe_reference(a: int, b: int, c: int, d: int, corrected_phi: bool, z: float = Z_95) -> tuple[float, float]:
    """Newcombe's square-and-add interval written from the formulas, independently of the module."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson_by_root(a + b, n, z)
    l2, u2 = _wilson_by_root(a + c, n, z)
    if 0 in (a + b, c + d, a + c, b + d):
        phi = 0.0
    else:
        num = a * d - b * c
        if corrected_phi:
            num = num - n / 2 if num > n / 2 else (0.0 if num >= 0 else num)
        phi = num / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    lower = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    upper = p1 - p2 + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return lower, upper


def _wald(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """The Wald interval the module used before: diff ± 1.96 sqrt((b + c) - (b - c)^2 / n) / n."""
    n = a + b + c + d
    diff = (b - c) / n
    half = Z_95 * math.sqrt(max((b + c) - (b - c) ** 2 / n, 0.0)) / n
    return diff - half, diff + half


def _mcnemar_exact_integer(b: int, c: int) -> float:
    """The module's former hand-written exact McNemar p: min(1, 2 sum_{k <= min(b, c)} C(b + c, k) / 2^(b + c))."""
    m = b + c
    if m == 0:
        return 1.0
    term = tail = 1
    for k in range(1, min(b, c) + 1):
        term = term * (m - k + 1) // k
        tail += term
    return min(1.0, (2 * tail) / (2**m))


def _all_tables(n: int):
    for a in range(n + 1):
        for b in range(n - a + 1):
            for c in range(n - a - b + 1):
                yield a, b, c, n - a - b - c


# ----------------------------------------------------------------------------------------------- the interval

PUBLISHED = [
    # (a, b, c, d), corrected phi, expected (lower, upper) to 4 decimals
    ((1, 1, 7, 12), True, (-0.5069, -0.0256)),
    ((1, 1, 7, 12), False, (-0.5017, -0.0361)),
    ((59, 6, 16, 80), True, (-0.1186, -0.0046)),
]


@pytest.mark.parametrize(("table", "corrected", "expected"), PUBLISHED)
def test_reference_implementation_reproduces_published_numbers(table, corrected, expected):
    assert _newcombe_reference(*table, corrected_phi=corrected) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize(("table", "corrected", "expected"), PUBLISHED)
def test_newcombe_interval_reproduces_published_numbers(table, corrected, expected):
    assert newcombe_paired_interval(*table, corrected_phi=corrected) == pytest.approx(expected, abs=5e-5)


def test_paired_difference_uses_the_corrected_phi():
    a, b, c, d = 59, 6, 16, 80
    r = paired_difference(b, c, a + b + c + d, a=a)
    assert r.diff == pytest.approx(-10 / 161)
    assert (r.ci_low, r.ci_high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    assert r.p_mcnemar == pytest.approx(0.052479, abs=5e-7)
    # and the former Wald interval of the same table, for the record (contingencytables: -0.1184 to -0.0058)
    assert _wald(a, b, c, d) == pytest.approx((-0.1184, -0.0058), abs=5e-5)


def test_module_matches_the_independent_implementation_on_every_small_table():
    for n in range(1, 13):
        for a, b, c, d in _all_tables(n):
            for corrected in (True, False):
                got = newcombe_paired_interval(a, b, c, d, corrected_phi=corrected)
                # 1e-7: the reference keeps the paper's x^2 - 2 phi x y + y^2, whose rounding error near phi = 1 is
                # about sqrt(1e-16 * x^2) ~ 1e-9 to 1e-8 (the module uses the cancellation-free form)
                assert got == pytest.approx(_newcombe_reference(a, b, c, d, corrected), abs=1e-7), (a, b, c, d)


def test_interval_inside_minus_one_one_contains_the_difference_and_is_open():
    for n in range(1, 13):
        for a, b, c, d in _all_tables(n):
            r = paired_difference(b, c, n, a=a)
            assert -1.0 <= r.ci_low <= r.diff <= r.ci_high <= 1.0, (a, b, c, d)
            assert r.ci_high - r.ci_low > 1e-3, (a, b, c, d)


@pytest.mark.parametrize(("a", "d"), [(0, 10), (10, 0), (5, 5), (7, 3), (0, 10000), (5000, 5000), (7000, 3000)])
def test_no_discordant_images_gives_an_open_interval_around_zero(a, d):
    r = paired_difference(0, 0, a + d, a=a)
    assert r.diff == 0.0 and r.p_mcnemar == 1.0
    assert r.ci_low < 0.0 < r.ci_high
    assert r.ci_low == pytest.approx(-r.ci_high)
    assert r.ci_high > 1 / (a + d)  # never narrower than one image either way


def test_plain_phi_would_collapse_when_no_image_is_discordant_and_a_equals_d():
    # why the module uses the corrected phi: plain phi = 1 here and the interval shrinks to a point, like Wald did
    assert newcombe_paired_interval(5, 0, 0, 5, corrected_phi=False) == pytest.approx((0.0, 0.0), abs=1e-12)
    lo, hi = newcombe_paired_interval(5, 0, 0, 5)
    assert hi - lo > 0.2


def test_all_wrong_and_all_right_use_phi_zero():
    # a marginal total of zero: phi = 0 and the interval is (-u, u) with u the Wilson upper limit of 0 / n
    u = _wilson_by_root(0, 10, Z_95)[1]
    for a, d in ((0, 10), (10, 0)):
        assert newcombe_paired_interval(a, 0, 0, d) == pytest.approx((-u, u), abs=1e-12)


def test_swapping_the_arms_mirrors_the_interval():
    for n in range(1, 11):
        for a, b, c, d in _all_tables(n):
            lo, hi = newcombe_paired_interval(a, b, c, d)
            assert newcombe_paired_interval(a, c, b, d) == pytest.approx((-hi, -lo), abs=1e-12)
            # relabelling right <-> wrong (a <-> d, b <-> c) mirrors it as well
            assert newcombe_paired_interval(d, c, b, a) == pytest.approx((-hi, -lo), abs=1e-12)


@pytest.mark.parametrize("table", [(60000, 4000, 3000, 33000), (6000, 400, 380, 3220), (5000, 900, 700, 3400)])
def test_large_n_agrees_with_wald(table):
    lo, hi = newcombe_paired_interval(*table)
    wl, wh = _wald(*table)
    assert abs(lo - wl) < 0.01 * (wh - wl) and abs(hi - wh) < 0.01 * (wh - wl)


def test_wider_than_wald_for_few_discordant_images():
    rng = np.random.default_rng(1234)
    for _ in range(200):
        n = int(rng.integers(20, 200))
        b, c = (int(v) for v in rng.integers(0, 3, size=2))
        a = int(rng.integers(0, n - b - c + 1))
        lo, hi = newcombe_paired_interval(a, b, c, n - a - b - c)
        wl, wh = _wald(a, b, c, n - a - b - c)
        assert hi - lo > wh - wl, (a, b, c, n)


def test_paired_difference_rejects_impossible_counts():
    with pytest.raises(ValueError):
        paired_difference(3, 1, 0, a=0)
    with pytest.raises(ValueError):
        paired_difference(3, 1, 10, a=7)  # a + b + c = 11 > n
    with pytest.raises(ValueError):
        paired_difference(-1, 1, 10, a=2)
    with pytest.raises(TypeError):
        paired_difference(3, 1, 10)  # the interval needs a: no silent default


def test_paired_from_samples_counts_the_table():
    jpeg = np.array([1, 0, 1, 1, 1, 0, 0, 1, 0, 0], dtype=bool)
    base = np.array([1, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    r = paired_from_samples(jpeg, base)  # a = {0, 7}, b = {2, 3, 4}, c = {1}, d = 4
    assert (r.n, r.b, r.c) == (10, 3, 1)
    assert r == paired_difference(3, 1, 10, a=2)
    assert r.as_dict()["ci_low"] == r.ci_low
    with pytest.raises(ValueError):
        paired_from_samples(jpeg, base[:9])


def test_worked_example_of_the_docs():
    # docs/report.md and the doctest: n = 10, a = 2, b = 3, c = 1, d = 4. ad - bc = 5 = n/2, so phi = 0.
    r = paired_difference(3, 1, 10, a=2)
    assert r.diff == pytest.approx(0.2)
    assert (r.ci_low, r.ci_high) == pytest.approx((-0.20165, 0.52608), abs=5e-6)
    assert (r.ci_low, r.ci_high) == pytest.approx(_newcombe_reference(2, 3, 1, 4, corrected_phi=True), abs=1e-7)
    assert r.p_mcnemar == pytest.approx(0.625)


def test_module_doctests_pass():
    result = doctest.testmod(stats)
    assert result.attempted >= 1 and result.failed == 0


# ----------------------------------------------------------------------------------------------- McNemar


def test_mcnemar_scipy_equals_the_former_integer_computation():
    grid = [(b, c) for b in range(41) for c in range(41)] + [(3000, 2800), (250, 180), (1200, 1100), (900, 0)]
    for b, c in grid:
        assert mcnemar_exact_p(b, c) == pytest.approx(_mcnemar_exact_integer(b, c), rel=1e-9, abs=1e-300), (b, c)


def test_mcnemar_known_values():
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 5) == 1.0
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact_p(3, 1) == pytest.approx(0.625)  # 2 * (1 + 4) / 16
    assert mcnemar_exact_p(6, 16) == pytest.approx(0.052479, abs=5e-7)  # contingencytables, Cavo et al. 2012
    assert mcnemar_exact_p(16, 6) == mcnemar_exact_p(6, 16)
    assert 0 < mcnemar_exact_p(3000, 2800) < 0.02
    with pytest.raises(ValueError):
        mcnemar_exact_p(-1, 3)


# ----------------------------------------------------------------------------------------------- Holm


def test_holm_hand_worked_example():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> raised to 0.06 (monotone)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_nan_stays_nan_and_is_not_counted():
    out = holm_adjust([0.01, math.nan, 0.04, None, 0.03, 0.005])
    assert math.isnan(out[1]) and math.isnan(out[3])
    assert [out[i] for i in (0, 2, 4, 5)] == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_order_and_handles_ties():
    assert holm_adjust([0.5, 0.6]) == [1.0, 1.0]
    assert holm_adjust([0.01, 0.01]) == pytest.approx([0.02, 0.02])
    assert holm_adjust([0.2]) == [0.2]
    assert holm_adjust([]) == []
    rng = np.random.default_rng(7)
    raw = list(rng.uniform(0, 0.2, size=30))
    adj = holm_adjust(raw)
    order = np.argsort(raw)
    assert all(x <= y for x, y in zip(np.asarray(adj)[order][:-1], np.asarray(adj)[order][1:], strict=True))
    assert all(p <= q <= 1.0 for p, q in zip(raw, adj, strict=True))


def test_holm_rejects_values_outside_zero_one():
    with pytest.raises(ValueError):
        holm_adjust([0.2, 1.5])
    with pytest.raises(ValueError):
        holm_adjust([-0.1])


# ----------------------------------------------------------------------------------------------- mean ± std


def test_mean_std_ignores_missing_values():
    mean, std, k = mean_std([0.5, math.nan, 0.7, None])
    assert (mean, k) == (pytest.approx(0.6), 2)
    assert std == pytest.approx(math.sqrt(0.02))
    assert mean_std([])[2] == 0 and math.isnan(mean_std([])[0])


@pytest.mark.parametrize("x, n", [(0, 1), (0, 10), (3, 10), (10, 10), (417, 1000), (9999, 10000), (1, 200)])
def test_wilson_interval_equals_the_closed_form(x, n):
    """The scipy-backed interval equals Wilson's closed form (centre +- half width) and the roots of its quadratic."""
    z = Z_95
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = wilson_interval(x, n)
    assert low == pytest.approx(max(0.0, centre - half), abs=1e-14)
    assert high == pytest.approx(min(1.0, centre + half), abs=1e-14)
    assert (low, high) == pytest.approx(_wilson_by_root(x, n, z), abs=1e-12)


def test_the_pooled_sign_flip_test_of_one_seed_is_the_exact_mcnemar_test():
    from robustbench_jpeg.stats import mcnemar_exact_p, pooled_sign_flip_p

    rng = np.random.default_rng(1)
    for n, p_arm in ((40, 0.5), (300, 0.55), (1000, 0.5)):
        arm, partner = rng.random(n) < p_arm, rng.random(n) < 0.5
        b, c = int((arm & ~partner).sum()), int((~arm & partner).sum())
        assert pooled_sign_flip_p([arm.astype(int) - partner.astype(int)]) == pytest.approx(mcnemar_exact_p(b, c))


def test_the_pooled_sign_flip_test_equals_the_enumeration_of_every_sign_flip():
    import itertools

    from robustbench_jpeg.stats import pooled_sign_flip_p

    rng = np.random.default_rng(2)
    for seeds in (2, 3):
        deltas = [rng.integers(-1, 2, size=11) for _ in range(seeds)]
        k = np.sum(deltas, axis=0)
        observed = abs(k.sum())
        flips = [abs(np.dot(signs, np.abs(k))) >= observed for signs in itertools.product((-1, 1), repeat=k.size)]
        assert pooled_sign_flip_p(deltas) == pytest.approx(np.mean(flips))


def test_the_pooled_sign_flip_test_cuts_to_the_common_images_and_refuses_non_differences():
    from robustbench_jpeg.stats import pooled_sign_flip_p

    a, b = np.array([1, 1, 1, 0, -1, 1]), np.array([1, 1, 0, 1])
    assert pooled_sign_flip_p([a, b]) == pooled_sign_flip_p([a[:4], b])
    with pytest.raises(ValueError, match="-1, 0 or 1"):
        pooled_sign_flip_p([np.array([2, 0])])
    with pytest.raises(ValueError, match="at least one"):
        pooled_sign_flip_p([])


def test_underflowed_p_values_read_as_a_bound_never_zero():
    from robustbench_jpeg.report.fmt import p_general, pvalue
    from robustbench_jpeg.report.latex import tex_text
    from robustbench_jpeg.stats import mcnemar_exact_p

    p = mcnemar_exact_p(0, 1200)  # 2^-1199: below the smallest double, the binomial test returns 0
    assert p < 1e-300
    assert pvalue(p) == "<1e-300" and p_general(p) == "<1e-300" and pvalue(5.8e-320) == "<1e-300"
    assert pvalue(3.3e-27) == "3.3e-27" and p_general(0.0123) == "0.012"
    assert tex_text(pvalue(p)) == "$<1{\\times}10^{-300}$"
    from robustbench_jpeg.evaluation.comparison import Comparison

    text = Comparison("BPDA", "soft", 1200, 0, 1200, p, 1200, family=2, p_holm=2 * p).text()
    assert "McNemar p=<1e-300, Holm p=<1e-300 over 2" in text and "p=0" not in text


def test_a_several_seed_p_cell_is_stacked_in_latex_and_table_tex_flushes_its_floats():
    from robustbench_jpeg.report.build import FLOATS_PER_PAGE_BREAK, _flushed
    from robustbench_jpeg.report.latex import tex_cell

    cell = tex_cell("1.4e-167, 0.81, 0.90 (2.6e-166, 1.00, 1.00); pooled <1e-300 (<1e-300)")
    assert cell.startswith(r"\shortstack[r]{") and cell.count(r"\\") == 2 and r"\\pooled $<1{\times}10^{-300}$" in cell
    assert tex_cell("0.03 (0.12)") == "0.03 (0.12)"  # one seed: one line
    assert tex_cell("0.07, 4.7e-4 (1.00, 0.02)") == r"\shortstack[r]{0.07, $4.7{\times}10^{-4}$\\(1.00, 0.02)}"
    tables = [f"t{i}\n" for i in range(2 * FLOATS_PER_PAGE_BREAK + 1)]
    assert _flushed(tables).count(r"\clearpage") == 2
