"""The worst case over attacks: every attack at a radius up to eps, every n, per image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustbench_jpeg.evaluation import worst_cases


def rows_and_samples(cells):
    rows, samples = [], {}
    for i, (arm, eps, bits, extra) in enumerate(cells):
        cid = f"c{i}"
        vec = np.array([b == "1" for b in bits])
        samples[cid] = vec
        rows.append(
            {
                "arm": arm,
                "attack": "pgd",
                "norm": "linf",
                "eps": eps / 255,
                "n": vec.size,
                "cell_id": cid,
                "eval_alpha": np.nan,
                **extra,
            }
        )
    return pd.DataFrame(rows), samples


def points(found, arm="jpegdl", primary=True, alpha=None):
    return {round(w.eps * 255, 6): w for w in found if w.arm == arm and w.primary == primary and w.eval_alpha == alpha}


def test_an_image_broken_at_a_smaller_radius_is_broken_at_every_larger_one():
    """The defect: the worst case ANDed only the attacks run at exactly that eps."""
    rows, samples = rows_and_samples(
        [
            ("jpegdl", 1, "0111", {}),  # FGSM-like cell at 1/255 breaks image 0
            ("jpegdl", 2, "1011", {}),  # another attack at 2/255 breaks image 1 only
        ]
    )
    at = points(worst_cases(rows, samples))
    assert at[1].vector.tolist() == [False, True, True, True]
    assert at[2].vector.tolist() == [False, False, True, True]  # image 0 stays broken at 2/255
    assert at[2].acc <= at[1].acc


def test_cells_of_one_setting_at_different_n_all_count():
    """The defect: among cells of one setting that differ in n, only the largest-n one was kept, so images only the
    smaller run broke counted as robust."""
    rows, samples = rows_and_samples(
        [
            ("jpegdl", 4, "11111110", {}),  # n = 8: breaks image 7
            ("jpegdl", 4, "1101", {}),  # the same setting on the first 4 images: breaks image 2
        ]
    )
    found = worst_cases(rows, samples)
    primary = points(found)
    assert primary[4].tier == 4 and primary[4].vector.tolist() == [True, True, False, True]
    tier8 = points(found, primary=False)
    assert tier8[4].tier == 8 and tier8[4].vector.tolist() == [True] * 7 + [False]  # cells covering 8 images


def test_each_tier_never_rises_with_eps_and_names_its_components():
    rng = np.random.default_rng(0)
    cells = [
        ("jpegdl", eps, "".join(rng.choice(["0", "1"], size=n)), {})
        for eps, n in ((1, 50), (2, 30), (4, 50), (8, 20), (2, 50), (4, 30))
    ]
    found = worst_cases(*rows_and_samples(cells), label=lambda r: r.cell_id)
    for tier in {w.tier for w in found}:
        curve = sorted((w.eps, w.acc) for w in found if w.tier == tier)
        assert all(b[1] <= a[1] for a, b in zip(curve, curve[1:], strict=False))
    largest = max((w for w in found if w.primary), key=lambda w: w.eps)
    assert set(largest.components) == {f"c{i}" for i in range(6)}


def test_eval_alpha_cells_get_their_own_worst_case():
    rows, samples = rows_and_samples(
        [
            ("jpegdl", 2, "1111", {}),
            ("jpegdl", 2, "0000", {"eval_alpha": 1.0}),  # the official script's alpha: never mixed in
        ]
    )
    found = worst_cases(rows, samples)
    assert points(found)[2].acc == pytest.approx(1.0)
    assert points(found, alpha=1.0)[2].acc == pytest.approx(0.0)


def test_the_baseline_worst_case_counts_its_eval_alpha_cells():
    """The defect: the baseline (no quantizer, so no alpha) had its eval-alpha cells set apart, although they are
    attacks on the same weights; they enter its worst case (and keep their own, the baseline side of the official
    protocol). A JPEG arm's stay apart."""
    rows, samples = rows_and_samples(
        [
            ("baseline", 2, "1111", {}),
            ("baseline", 2, "0011", {"eval_alpha": 1.0}),  # the same weights, attacked by a spec with eval alpha
            ("jpegdl", 2, "1111", {}),
            ("jpegdl", 2, "0000", {"eval_alpha": 1.0}),
        ]
    )
    found = worst_cases(rows, samples)
    assert points(found, arm="baseline")[2].vector.tolist() == [False, False, True, True]
    assert points(found, arm="baseline", alpha=1.0)[2].vector.tolist() == [False, False, True, True]
    assert points(found)[2].acc == pytest.approx(1.0) and points(found, alpha=1.0)[2].acc == pytest.approx(0.0)


def test_an_l2_break_at_r_is_an_linf_break_at_every_eps_from_r():
    """||d||_inf <= ||d||_2: an L2 cell at radius r enters the L-inf worst case at every eps >= r, per image."""
    r = 6 / 255  # between the L-inf radii 4/255 and 8/255
    rows, samples = rows_and_samples(
        [
            ("jpegdl", 4, "1111", {}),
            ("jpegdl", 8, "1110", {}),
            ("jpegdl", 0, "0111", {"norm": "l2", "eps": r}),  # breaks image 0 within an L2 ball of radius 6/255
        ]
    )
    found = worst_cases(rows, samples, label=lambda row: f"{row.norm} {row.cell_id}")
    linf = {round(w.eps * 255, 6): w for w in found if w.norm == "linf"}
    assert linf[4].vector.tolist() == [True, True, True, True]  # 4/255 < r: the L2 cell does not count
    assert linf[8].vector.tolist() == [False, True, True, False] and "l2 c2" in linf[8].components
    l2 = [w for w in found if w.norm == "l2"]
    assert len(l2) == 1 and l2[0].vector.tolist() == [False, True, True, True]  # L-inf cells never enter L2
