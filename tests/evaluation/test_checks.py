"""Each sanity check fires on a hand-made per-sample table that should trip it and stays quiet on a sound one.

Cells are given as per-image robustness vectors; checks compare them on their common first images, across n,
steps and seeds (the earlier checks compared only cells of equal n and skipped everything else, then said OK).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robustbench_jpeg.evaluation.checks import (
    attack_cells,
    check_adaptive_not_stronger,
    check_large_eps_near_zero,
    check_monotone_in_eps,
    check_more_iterations_not_weaker,
    check_pgd_not_weaker_than_fgsm,
    check_square_not_stronger,
    check_zero_input_gradients,
    compare,
    run_checks,
    tolerance,
)
from robustbench_jpeg.evaluation.verdict import assess_masking, verdict, verdict_status
from robustbench_jpeg.jpeg import JpegConfig
from robustbench_jpeg.models import create_model
from robustbench_jpeg.sweep.diagnostics import gradient_statistics


def checks_of(rows: list[dict], samples: dict, **kw) -> list:
    return run_checks(pd.DataFrame(rows), samples, quantizer_arms=["jpegdl"], **kw)


def vec(robust: int, n: int, offset: int = 0) -> np.ndarray:
    """n images, ``robust`` of them robust, starting at ``offset`` (cyclically)."""
    out = np.zeros(n, dtype=bool)
    out[(np.arange(robust) + offset) % n] = True
    return out


class Table:
    """A results table and its per-sample vectors, built cell by cell."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.samples: dict[str, np.ndarray] = {}

    def add(
        self,
        v: np.ndarray,
        arm="jpegdl",
        attack="pgd",
        eps=4,
        steps=None,
        restarts=1,
        grad=None,
        source=None,
        norm="linf",
        rule=None,
        seed=0,
        after="",
        clean: int | None = None,
        **columns,
    ) -> str:
        cell_id = f"c{len(self.rows):03d}"
        steps = steps if steps is not None else {"fgsm": 1, "square": 5000}.get(attack, 20)
        self.rows.append(
            {
                "arm": arm,
                "attack": attack,
                "norm": norm,
                "eps": eps / 255 if norm == "linf" else eps,
                "steps": steps,
                "step_size": 0.01,
                "step_rule": rule or ("eps" if attack == "fgsm" else "2.5*eps/steps"),
                "restarts": restarts,
                "random_start": attack != "fgsm",
                "grad": grad or ("soft" if arm == "jpegdl" and attack != "square" else "none"),
                "source_arm": source or arm,
                "attack_seed": seed,
                "n": v.size,
                "params": "",
                "eval_alpha": np.nan,
                "after": after,
                "n_correct": int(v.sum()),
                "n_clean_correct": clean if clean is not None else v.size,
                "robust_acc": float(v.mean()),
                "clean_acc": 1.0,
                "cell_id": cell_id,
                **columns,
            }
        )
        self.samples[cell_id] = v
        return cell_id

    @property
    def cells(self) -> pd.DataFrame:
        return attack_cells(pd.DataFrame(self.rows))


def test_tolerance_is_one_sample_or_half_a_point():
    assert tolerance(10000) == 0.005 and tolerance(64) == pytest.approx(1 / 64)


def test_compare_counts_discordant_images_on_common_first_images():
    strong, weak = vec(2, 10), vec(6, 20)  # common first 10 images: strong robust 0-1, weak robust 0-5
    c = compare(strong, weak, "S", "W")
    assert (c.m, c.b, c.c) == (10, 0, 4) and not c.violated
    c = compare(vec(60, 100), vec(20, 100), "S", "W")
    assert (c.b, c.c) == (40, 0) and c.violated and c.p < 1e-9


def test_monotone_in_eps_compares_across_n():
    t = Table()
    t.add(vec(50, 100), eps=1)
    t.add(vec(40, 200), eps=2)  # another n: the earlier check skipped this pair
    t.add(vec(10, 100), eps=8)
    assert check_monotone_in_eps(t.cells, t.samples, "jpegdl").status == "pass"
    t.add(vec(90, 200), eps=4)  # 90 robust at 4/255 on 200 images, where 2/255 left 40: significant
    check = check_monotone_in_eps(t.cells, t.samples, "jpegdl")
    assert check.status == "fail" and "4/255" in check.detail and check.evidence


def test_cells_differing_in_more_than_the_varied_field_are_never_compared():
    t = Table()  # a surrogate attack at two radii, each at its own surrogate alpha: not one setting at two radii
    t.add(vec(50, 100), eps=1, grad="surrogate", surrogate_alpha=1.0)
    t.add(vec(90, 100), eps=2, grad="surrogate", surrogate_alpha=5.0)
    t.add(vec(60, 100), eps=8, engine="torchattacks")
    t.add(vec(20, 100), eps=8, steps=40, engine="torchattacks", step_rule="absolute")
    assert check_monotone_in_eps(t.cells, t.samples, "jpegdl").status == "warn"
    assert check_more_iterations_not_weaker(t.cells, t.samples, "jpegdl").status == "warn"
    t.add(vec(90, 100), eps=4, grad="surrogate", surrogate_alpha=1.0)  # the alpha-1 setting at 1 and 4/255: compared
    assert check_monotone_in_eps(t.cells, t.samples, "jpegdl").status == "fail"


def test_small_violations_are_inconclusive_instead_of_failing():
    t = Table()
    t.add(vec(50, 100), eps=1)
    t.add(vec(52, 100), eps=2)  # 2 images more: beyond the tolerance (1 image) but McNemar p = 0.5
    check = check_monotone_in_eps(t.cells, t.samples, "jpegdl")
    assert check.status == "inconclusive" and "not significantly" in check.detail


def test_pgd_not_weaker_than_fgsm_across_n_and_steps():
    t = Table()
    t.add(vec(30, 1000), attack="fgsm", eps=4)
    t.add(vec(20, 500), attack="pgd", steps=5, eps=4)
    assert check_pgd_not_weaker_than_fgsm(t.cells, t.samples, "jpegdl").status == "pass"
    t.add(vec(80, 200), attack="pgd", steps=20, eps=4)  # PGD-20 on 200 images far weaker than FGSM on the same 200
    assert check_pgd_not_weaker_than_fgsm(t.cells, t.samples, "jpegdl").status == "fail"


def test_the_checks_know_a_method_by_its_stored_kind_not_its_name():
    """A method unknown to the checks (a user's own iterative attack) is held to "no weaker than FGSM" through the
    ``method_kind`` its row stores; a targeted attack is not."""
    t = Table()
    t.add(vec(30, 1000), attack="fgsm", eps=4)
    weak = t.add(vec(80, 200), attack="my-iterative", steps=20, eps=4)
    t.rows[-1]["method_kind"] = "targeted"
    assert check_pgd_not_weaker_than_fgsm(t.cells, t.samples, "jpegdl").status != "fail"
    t.rows[-1]["method_kind"] = "iterative"
    assert t.rows[-1]["cell_id"] == weak
    assert check_pgd_not_weaker_than_fgsm(t.cells, t.samples, "jpegdl").status == "fail"


def test_every_violation_at_mismatched_n_is_found():
    """The defect: a table whose every violation sits at mismatched n got "OK: 0 passed, 5 skipped"."""
    t = Table()
    t.add(vec(10, 1000), attack="fgsm", eps=4)
    t.add(vec(90, 500), attack="pgd", steps=5, eps=4)  # PGD weaker than FGSM
    t.add(vec(150, 200), attack="pgd", steps=20, eps=4)  # more steps weaker
    t.add(vec(99, 300), attack="pgd", steps=5, eps=8)  # larger eps weaker
    t.add(vec(5, 400), attack="pgd", steps=5, eps=4, grad="bpda")  # BPDA far stronger than soft PGD-5
    cells, samples = t.cells, t.samples
    assert check_pgd_not_weaker_than_fgsm(cells, samples, "jpegdl").status == "fail"
    assert check_more_iterations_not_weaker(cells, samples, "jpegdl").status == "fail"
    assert check_monotone_in_eps(cells, samples, "jpegdl").status == "fail"
    assert check_adaptive_not_stronger(cells, samples, "jpegdl", True).status == "fail"
    checks = checks_of(t.rows, samples)
    assert verdict_status(checks) == "FAIL" and verdict(checks).startswith("FAIL")


def test_adaptive_is_compared_with_soft_cells_of_at_least_its_budget():
    t = Table()
    t.add(vec(80, 500), attack="fgsm", eps=4)  # soft FGSM (budget 1)
    t.add(vec(70, 500), attack="pgd", steps=5, eps=4)  # soft PGD-5 (budget 5)
    t.add(vec(20, 300), attack="pgd", steps=5, eps=4, grad="bpda")  # BPDA PGD-5 beats the soft PGD-5: masking
    check = check_adaptive_not_stronger(t.cells, t.samples, "jpegdl", True)
    assert check.status == "fail" and "PGD-5 (soft)" in check.detail
    assert check.compared == 1  # soft FGSM has a smaller budget than BPDA PGD-5: expected to be weaker, not compared
    t2 = Table()
    t2.add(vec(20, 300), attack="pgd", steps=20, eps=4, grad="bpda")
    t2.add(vec(18, 300), attack="pgd", steps=100, eps=4)  # a stronger soft attack holds
    assert check_adaptive_not_stronger(t2.cells, t2.samples, "jpegdl", True).status == "pass"


def test_no_adaptive_attack_is_a_warning_for_a_quantizer_arm_and_the_arm_is_unchecked():
    t = Table()
    t.add(vec(50, 100), eps=1)
    t.add(vec(40, 100), eps=2)
    checks = checks_of(t.rows, t.samples)
    adaptive = next(c for c in checks if c.name == "adaptive_not_stronger")
    assert adaptive.status == "warn" and "unchecked" in adaptive.detail
    assert assess_masking(checks, "jpegdl").status == "unchecked"
    assert verdict_status(checks) == "WARN"
    baseline = Table()
    baseline.add(vec(50, 100), arm="baseline", eps=1)
    assert check_adaptive_not_stronger(baseline.cells, baseline.samples, "baseline", False).status == "skip"


def test_a_check_that_compares_nothing_warns_never_passes():
    t = Table()
    t.add(vec(50, 100), attack="fgsm", eps=4)
    for check in (
        check_monotone_in_eps(t.cells, t.samples, "jpegdl"),
        check_pgd_not_weaker_than_fgsm(t.cells, t.samples, "jpegdl"),
        check_more_iterations_not_weaker(t.cells, t.samples, "jpegdl"),
    ):
        assert check.status == "warn" and "could not compare anything" in check.detail and check.compared == 0


def test_large_eps_is_relative_to_clean_accuracy():
    """The defect: an absolute 5% let a model at 4.5% clean pass with an attack that changes nothing."""
    t = Table()
    t.add(vec(45, 1000), eps=64, clean=45)  # nothing broken: all 45 clean-correct images survive
    check = check_large_eps_near_zero(t.cells, t.samples, "jpegdl")
    assert check.status == "fail" and "45 of 45" in check.detail
    t2 = Table()
    t2.add(vec(1, 1000), eps=64, clean=45)
    assert check_large_eps_near_zero(t2.cells, t2.samples, "jpegdl").status == "pass"
    l2 = Table()
    l2.add(vec(30, 1000), eps=4.0, norm="l2", clean=300)  # the L2 counterpart: 10% survive at 4.0
    assert check_large_eps_near_zero(l2.cells, l2.samples, "jpegdl").status == "fail"
    none = Table()
    none.add(vec(30, 1000), eps=8, clean=300)  # 10% of the clean-correct images survive the largest radius, 8/255
    assert check_large_eps_near_zero(none.cells, none.samples, "jpegdl").status == "warn"


def test_large_eps_holds_a_fortiori_when_the_largest_radius_run_already_breaks_almost_everything():
    """The study's specs stop at 8/255, where every arm is already at 0%: a warning that nothing could be compared
    told the reader less than the data does. At most 5% surviving the largest radius run passes; a norm whose
    largest radius leaves more keeps the warning."""
    t = Table()
    t.add(vec(100, 1000), eps=4, clean=300)
    t.add(vec(3, 1000), eps=8, clean=300)  # 1% of the clean-correct images survive at 8/255
    check = check_large_eps_near_zero(t.cells, t.samples, "jpegdl")
    assert check.status == "pass" and "none is needed" in check.detail and "3 of 300" in check.detail
    t.add(vec(100, 1000), eps=0.5, norm="l2", clean=300)  # L2 stops at 0.5 with a third surviving
    assert check_large_eps_near_zero(t.cells, t.samples, "jpegdl").status == "warn"


def test_square_beating_the_gradient_attacks_means_masking():
    t = Table()
    t.add(vec(60, 200), attack="pgd", steps=20, eps=8)
    t.add(vec(10, 200), attack="square", eps=8)  # gradient-free, far stronger
    assert check_square_not_stronger(t.cells, t.samples, "jpegdl", True).status == "fail"
    chained = Table()
    first = chained.add(vec(60, 200), attack="apgd-ce", steps=100, eps=8)
    chained.add(vec(20, 200), attack="square", eps=8, after=first)  # Square breaks 40 of the 60 survivors
    check = check_square_not_stronger(chained.cells, chained.samples, "jpegdl", True)
    assert check.status == "fail" and "the attacks before it" in check.detail
    quiet = Table()
    quiet.add(vec(20, 200), attack="pgd", eps=8)
    quiet.add(vec(20, 200), attack="square", eps=8)
    assert check_square_not_stronger(quiet.cells, quiet.samples, "jpegdl", True).status == "pass"


def test_zero_gradients_are_measured_at_the_quantizer_input():
    """The defect: in pixel space one soft coefficient per block makes every pixel gradient non-zero, so a layer
    whose quantizer blocks almost every coefficient passed. In DCT space it fails."""
    torch.manual_seed(0)
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 100, (16,))
    hard = create_model("tiny", jpeg=JpegConfig(q_init="constant", q_constant=40.0)).eval()  # alpha q^2 = 8000
    hard.jpeg.q_luma.data[7, 7] = 0.05  # one soft high frequency keeps every pixel gradient non-zero
    stats = gradient_statistics(hard, x, y)
    assert stats["pixel_zero_fraction"] < 0.10  # the pixel statistic alone is fooled
    assert stats["coefficients"]["zero_fraction"] > 0.95
    check = check_zero_input_gradients({"jpegdl": {"gradients": stats}}, "jpegdl")
    assert check.status == "fail" and "entirely zero" in check.detail
    soft = create_model("tiny", jpeg=JpegConfig(q_init="constant", q_constant=0.1)).eval()  # alpha q^2 = 0.05
    sound = check_zero_input_gradients({"jpegdl": {"gradients": gradient_statistics(soft, x, y)}}, "jpegdl")
    assert sound.status == "pass"
    assert check_zero_input_gradients({}, "jpegdl").status == "warn"


def test_masking_verdict_is_one_function_of_the_checks():
    t = Table()
    t.add(vec(70, 500), attack="pgd", steps=5, eps=4)
    t.add(vec(20, 300), attack="pgd", steps=5, eps=4, grad="bpda")
    checks = checks_of(t.rows, t.samples)
    masking = assess_masking(checks, "jpegdl")
    assert masking.status == "masked" and "adaptive_not_stronger" in masking.signs
    sound = Table()
    sound.add(vec(20, 500), attack="pgd", steps=5, eps=4)
    sound.add(vec(20, 300), attack="pgd", steps=5, eps=4, grad="bpda")
    assert assess_masking(checks_of(sound.rows, sound.samples), "jpegdl").status == "not detected"


def test_a_large_gap_on_few_images_is_inconclusive_never_not_detected():
    """The defect: on 20 images BPDA breaking 25 points more than the soft attack (b=5, c=0, p=0.06) warned and the
    masking status read "not detected"."""
    t = Table()
    t.add(vec(10, 20), attack="pgd", steps=20, eps=8)
    t.add(vec(5, 20), attack="pgd", steps=20, eps=8, grad="bpda")  # the first 5 of the soft attack's 10 survivors
    checks = checks_of(t.rows, t.samples)
    adaptive = next(c for c in checks if c.name == "adaptive_not_stronger")
    assert (adaptive.evidence[0]["b"], adaptive.evidence[0]["c"]) == (5, 0)
    assert adaptive.status == "inconclusive" and "not significantly" in adaptive.detail
    assert assess_masking(checks, "jpegdl").status == "inconclusive"


def test_a_comparison_that_could_not_fail_does_not_pass():
    """On one image no comparison can fail (a one-image gap is within the tolerance, and p >= 0.05 anyway)."""
    t = Table()
    t.add(vec(1, 1), attack="pgd", steps=20, eps=8)
    t.add(vec(1, 1), attack="pgd", steps=20, eps=8, grad="bpda")
    t.add(vec(1, 1), attack="pgd", steps=20, eps=16)
    checks = checks_of(t.rows, t.samples)
    by_name = {c.name: c for c in checks}
    for name in ("adaptive_not_stronger", "monotone_in_eps"):
        assert by_name[name].status == "inconclusive" and "could not have failed" in by_name[name].detail
    assert assess_masking(checks, "jpegdl").status == "inconclusive"
    assert verdict_status(checks) == "WARN" and "inconclusive" in verdict(checks)


def test_holm_within_a_check_one_p_just_under_005_among_many_does_not_fail():
    """The defect: a check failed when any of its comparisons had p < 0.05 unadjusted. Fourteen radii of equally
    strong FGSM and PGD, one of them with PGD leaving 7 more images robust (b=8, c=1, p=0.039): Holm over the
    check's 14 comparisons does not call it significant, so the check is inconclusive, not failed."""
    t = Table()
    for eps in range(1, 15):
        t.add(vec(50, 200), attack="fgsm", eps=eps)
        weaker = vec(50, 200)
        if eps == 7:
            weaker[[0]] = False  # c = 1: PGD breaks one image FGSM left
            weaker[50:58] = True  # b = 8: PGD leaves 8 images robust that FGSM broke
        t.add(weaker, attack="pgd", steps=10, eps=eps)
    check = check_pgd_not_weaker_than_fgsm(t.cells, t.samples, "jpegdl")
    (unclear,) = check.evidence
    assert (unclear["b"], unclear["c"]) == (8, 1) and 0.03 < unclear["p"] < 0.05
    assert unclear["p_holm"] >= 0.05 and unclear["family"] == 14
    assert check.status == "inconclusive" and "Holm" in check.detail


def test_nothing_attacked_is_said_never_passed():
    """The defect: when no test image is classified correctly every attack cell is all-zero, every comparison holds
    trivially, and the checks read "8 passed"."""
    t = Table()
    for eps in (1, 2, 4, 8):
        t.add(vec(0, 100), attack="fgsm", eps=eps, clean=0)
        t.add(vec(0, 100), attack="pgd", steps=10, eps=eps, clean=0)
        t.add(vec(0, 100), attack="pgd", steps=10, eps=eps, grad="bpda", clean=0)
    checks = checks_of(t.rows, t.samples)
    compared = [c for c in checks if c.name not in ("zero_input_gradients", "clean_matches_card")]
    assert compared and all(c.status == "nothing attacked" for c in compared)
    assert not any(c.status == "pass" for c in checks)
    assert assess_masking(checks, "jpegdl").status == "nothing attacked"
    assert verdict_status(checks) == "WARN" and "nothing attacked" in verdict(checks)
