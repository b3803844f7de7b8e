"""Each sanity check fires on a constructed case that should trip it and stays quiet on a sound one."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from robustbench_jpeg.attack.checks import (
    check_adaptive_not_stronger,
    check_clean_matches_card,
    check_large_eps_near_zero,
    check_monotone_in_eps,
    check_more_iterations_not_weaker,
    check_pgd_not_weaker_than_fgsm,
    check_zero_input_gradients,
    run_checks,
    tolerance,
    verdict,
    zero_gradient_fraction,
)
from robustbench_jpeg.models import create_model


def row(arm="jpegdl", attack="pgd", eps=4, acc=0.3, steps=None, restarts=1, grad=None, source=None, norm="linf",
        n=1000, rule=None, random_start=None, seed=0):
    steps = steps if steps is not None else (1 if attack == "fgsm" else 20)
    return {
        "arm": arm, "attack": attack, "norm": norm, "eps": eps / 255 if norm == "linf" else eps,
        "steps": steps, "step_size": 0.01, "step_rule": rule or ("eps" if attack == "fgsm" else "2.5*eps/steps"),
        "restarts": restarts, "random_start": attack == "pgd" if random_start is None else random_start,
        "grad": grad or ("soft" if arm == "jpegdl" else "none"), "source_arm": source or arm, "attack_seed": seed,
        "n": n, "clean_acc": 0.7, "robust_acc": acc,
    }


def frame(*rows):
    return pd.DataFrame(list(rows))


def status(checks, arm):
    return {c.arm: c.status for c in checks}[arm]


def test_tolerance_is_one_sample_or_half_a_point():
    assert tolerance(10000) == 0.005 and tolerance(64) == pytest.approx(1 / 64)


def test_monotone_in_eps():
    good = frame(row(eps=1, acc=0.5), row(eps=2, acc=0.4), row(eps=4, acc=0.402), row(eps=8, acc=0.1))
    assert status(check_monotone_in_eps(good), "jpegdl") == "pass"  # +0.2 points is within tolerance
    bad = frame(row(eps=1, acc=0.5), row(eps=2, acc=0.4), row(eps=4, acc=0.45), row(eps=8, acc=0.1))
    checks = check_monotone_in_eps(bad)
    assert status(checks, "jpegdl") == "fail" and "4/255" in checks[0].detail
    # different attack configurations are separate curves
    mixed = frame(row(eps=1, acc=0.2, steps=100), row(eps=2, acc=0.4, steps=5))
    assert status(check_monotone_in_eps(mixed), "jpegdl") == "skip"


def test_pgd_not_weaker_than_fgsm():
    good = frame(row(attack="fgsm", acc=0.3), row(attack="pgd", acc=0.2))
    assert status(check_pgd_not_weaker_than_fgsm(good), "jpegdl") == "pass"
    bad = frame(row(attack="fgsm", acc=0.3), row(attack="pgd", acc=0.4))
    assert status(check_pgd_not_weaker_than_fgsm(bad), "jpegdl") == "fail"
    other_eps = frame(row(attack="fgsm", eps=2, acc=0.3), row(attack="pgd", eps=4, acc=0.4))
    assert status(check_pgd_not_weaker_than_fgsm(other_eps), "jpegdl") == "skip"


def test_large_eps_near_zero():
    assert status(check_large_eps_near_zero(frame(row(eps=8, acc=0.2))), "jpegdl") == "skip"
    assert status(check_large_eps_near_zero(frame(row(eps=64, acc=0.001))), "jpegdl") == "pass"
    checks = check_large_eps_near_zero(frame(row(eps=64, acc=0.30)))
    assert status(checks, "jpegdl") == "fail" and "30.00%" in checks[0].detail
    # transfer and FGSM cells are not held to it
    assert status(check_large_eps_near_zero(frame(row(eps=64, acc=0.3, source="baseline", grad="none"))),
                  "jpegdl") == "skip"
    assert status(check_large_eps_near_zero(frame(row(attack="fgsm", eps=64, acc=0.3))), "jpegdl") == "skip"


def test_more_iterations_not_weaker():
    good = frame(row(steps=20, acc=0.3), row(steps=100, acc=0.28), row(steps=100, restarts=5, acc=0.27))
    assert status(check_more_iterations_not_weaker(good), "jpegdl") == "pass"
    bad = frame(row(steps=20, acc=0.3), row(steps=100, acc=0.35))
    assert status(check_more_iterations_not_weaker(bad), "jpegdl") == "fail"
    bad_restarts = frame(row(steps=20, acc=0.3), row(steps=20, restarts=5, acc=0.31))
    assert status(check_more_iterations_not_weaker(bad_restarts), "jpegdl") == "fail"
    different_grad = frame(row(steps=20, acc=0.3), row(steps=100, acc=0.35, grad="bpda"))
    assert status(check_more_iterations_not_weaker(different_grad), "jpegdl") == "skip"


def test_adaptive_not_stronger():
    good = frame(row(acc=0.30), row(acc=0.31, grad="bpda"), row(acc=0.5, source="baseline", grad="none"))
    assert status(check_adaptive_not_stronger(good), "jpegdl") == "pass"
    bpda_stronger = frame(row(acc=0.30), row(acc=0.05, grad="bpda"))
    checks = check_adaptive_not_stronger(bpda_stronger)
    assert status(checks, "jpegdl") == "fail" and "masked" in checks[-1].meaning and "bpda" in checks[-1].detail
    transfer_stronger = frame(row(acc=0.30), row(acc=0.10, source="baseline", grad="none"))
    assert status(check_adaptive_not_stronger(transfer_stronger), "jpegdl") == "fail"
    unmatched = frame(row(acc=0.30, steps=5), row(acc=0.05, grad="bpda", steps=20))
    assert status(check_adaptive_not_stronger(unmatched), "jpegdl") == "skip"


class HardRoundNet(nn.Module):
    """Hard 8-bit rounding in front of a linear classifier: the input gradient is exactly zero everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc((torch.round(x * 255) / 255).flatten(1))


def test_zero_gradient_fraction_flags_hard_rounding():
    torch.manual_seed(0)
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    hard = zero_gradient_fraction(HardRoundNet().eval(), x, y)
    assert hard["zero_fraction"] == 1.0 and hard["all_zero_images"] == 16
    assert status(check_zero_input_gradients({"jpegdl": hard}), "jpegdl") == "fail"
    soft_model = create_model("tiny", jpeg=None).eval()
    healthy = zero_gradient_fraction(soft_model, x, y % 100)
    assert healthy["zero_fraction"] < 0.01
    assert status(check_zero_input_gradients({"baseline": healthy}), "baseline") == "pass"


def test_zero_gradient_fraction_measures_jpeg_in_soft_mode_and_restores():
    from robustbench_jpeg.jpeg import JpegConfig

    model = create_model("tiny", jpeg=JpegConfig(paper_table="resnet56")).eval()
    model.jpeg.mode = "hard"
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 100, (4,))
    stats = zero_gradient_fraction(model, x, y)
    assert stats["mode"] == "soft" and stats["zero_fraction"] < 0.01
    assert model.jpeg.mode == "hard"  # restored as found


def test_clean_matches_card():
    df = pd.DataFrame([{**row(attack="clean", acc=0.7), "norm": "none", "eps": 0.0, "clean_acc": 0.7}])
    cards = {"jpegdl": {"clean_top1": 0.702, "finished": True, "test_size": 1000}}
    assert status(check_clean_matches_card(df, cards), "jpegdl") == "pass"
    cards["jpegdl"]["clean_top1"] = 0.75
    assert status(check_clean_matches_card(df, cards), "jpegdl") == "fail"
    cards["jpegdl"]["finished"] = False
    assert status(check_clean_matches_card(df, cards), "jpegdl") == "skip"
    cards["jpegdl"].update(finished=True, test_size=10000)  # the clean cell covers only 1000 images
    assert status(check_clean_matches_card(df, cards), "jpegdl") == "skip"


def test_run_checks_and_verdict_on_a_sound_table():
    rows = []
    for arm in ("baseline", "jpegdl"):
        for eps, acc in ((1, 0.5), (2, 0.4), (4, 0.2), (64, 0.0)):
            rows.append(row(arm=arm, eps=eps, acc=acc))
            rows.append(row(arm=arm, eps=eps, acc=acc + 0.05, attack="fgsm"))
        rows.append(row(arm=arm, eps=4, acc=0.19, steps=100))
    rows.append(row(eps=4, acc=0.2, grad="bpda"))
    rows.append(row(eps=4, acc=0.25, source="baseline", grad="none"))
    grads = {a: {"zero_fraction": 0.0, "n_entries": 10, "n_images": 1, "all_zero_images": 0, "median_l2": 1.0}
             for a in ("baseline", "jpegdl")}
    checks = run_checks(pd.DataFrame(rows), grads)
    assert not [c for c in checks if c.status == "fail"], [c for c in checks if c.status == "fail"]
    assert verdict(checks).startswith("OK")
    names = {c.name for c in checks if c.status == "pass"}
    assert names >= {"monotone_in_eps", "pgd_not_weaker_than_fgsm", "large_eps_near_zero",
                     "more_iterations_not_weaker", "adaptive_not_stronger", "zero_input_gradients"}
    bad = run_checks(pd.DataFrame(rows + [row(eps=4, acc=0.01, grad="bpda", steps=100)]), grads)
    assert verdict(bad).startswith("FAIL") and "adaptive_not_stronger[jpegdl]" in verdict(bad)
