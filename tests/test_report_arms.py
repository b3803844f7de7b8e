"""Any set of arms (baseline, JPEG-DL, the two controls) and cells scored with an evaluation-time alpha."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import card, cell, write_run

from robustbench_jpeg.report import build_report
from robustbench_jpeg.stats import paired_from_samples

N = 120


def _vec(k: int) -> list[bool]:
    """The first k of N images correct."""
    return [True] * k + [False] * (N - k)


def four_arm_run(root: Path, alpha_cells: bool = False, extra_cells: tuple[dict, ...] = ()) -> Path:
    """JPEG-DL keeps 60 images under FGSM at 2/255, the frozen control 20, standard JPEG 58, the baseline 10 (each a
    prefix, so JPEG-DL's images include every other arm's: McNemar b = 60 - k, c = 0)."""
    cells = []
    for arm, grad, kept in (
        ("baseline", "none", 10),
        ("jpegdl", "soft", 60),
        ("jpeg-frozen", "soft", 20),
        ("jpeg-standard", "soft", 58),
    ):
        cells += [cell(arm, "clean", 0, _vec(100)), cell(arm, "fgsm", 2, _vec(kept), steps=1, grad=grad)]
    run = write_run(root, [*cells, *extra_cells], checks=None)
    for arm in ("jpeg-frozen", "jpeg-standard"):
        (run / arm).mkdir()
        data = card("jpegdl", 0)
        data["arm"] = arm
        (run / arm / "card.json").write_text(json.dumps(data))
    if alpha_cells:  # the official script's protocol: JPEG-DL scored at alpha 1 (clean and FGSM at 2/255)
        table = pd.read_csv(run / "results.csv")
        table["eval_alpha"] = np.nan
        extra = []
        for cid, attack, kept in (("alpha_clean", "clean", 110), ("alpha_fgsm", "fgsm", 90)):
            row = table[(table["arm"] == "jpegdl") & (table["attack"] == attack)].iloc[0].copy()
            np.save(run / "samples" / f"{cid}.npy", np.asarray(_vec(kept)), allow_pickle=False)
            row["cell_id"], row["n_correct"], row["eval_alpha"] = cid, kept, 1.0
            extra.append(row)
        pd.concat([table, pd.DataFrame(extra)], ignore_index=True).to_csv(run / "results.csv", index=False)
    return run


@pytest.fixture(scope="module")
def arms_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("arms")
    build_report([four_arm_run(root / "run")], root / "out")
    return root / "out"


def test_every_arm_against_the_baseline_and_jpegdl_against_each_control(arms_report):
    paired = pd.read_csv(arms_report / "paired.csv")
    pairs = set(zip(paired["arm"], paired["partner"], strict=True))
    assert pairs == {
        ("jpegdl", "baseline"),
        ("jpeg-frozen", "baseline"),
        ("jpeg-standard", "baseline"),
        ("jpegdl", "jpeg-frozen"),
        ("jpegdl", "jpeg-standard"),
    }
    row = paired[
        (paired["arm"] == "jpegdl") & (paired["partner"] == "jpeg-frozen") & (paired["family"] == "control jpeg-frozen")
    ]
    row = row[row["eps"] == 2].iloc[0]
    expected = paired_from_samples(np.asarray(_vec(60)), np.asarray(_vec(20)))
    assert (row["b"], row["c"], row["diff"]) == (40, 0, pytest.approx(expected.diff))


def test_summary_says_per_control_whether_the_difference_exceeds_the_interval_after_holm(arms_report):
    answer = (arms_report / "report.md").read_text(encoding="utf-8").split("## The answer", 1)[1].split("\n## ")[0]
    # 60 vs 20 kept: far beyond the interval; 60 vs 58 (b = 2, c = 0): not shown, and never "no effect"
    assert (
        "JPEG-DL \u2212 JPEG-DL (frozen tables), worst case over every attack (difference +33.33 points): "
        "JPEG-DL exceeds JPEG-DL (frozen tables) beyond the interval and after Holm at eps 2/255."
    ) in answer
    assert "JPEG-DL \u2212 standard JPEG" in answer and "a difference is not shown at eps 2/255" in answer
    assert "no effect" not in answer


def test_control_tables_in_every_format(arms_report):
    md = (arms_report / "report.md").read_text(encoding="utf-8")
    assert "## Control arms" in md
    assert "JPEG-DL against the control JPEG-DL (frozen tables)" in md and "against the control standard JPEG" in md
    names = {p.name for p in (arms_report / "tables").iterdir()}
    for control in ("jpeg-frozen", "jpeg-standard"):  # split into parts where wider than a paper's text width
        assert any(re.fullmatch(rf"resnet56-linf-control-{control}(-part\d)?\.tex", name) for name in names), names
    table = pd.read_csv(arms_report / "table.csv")
    assert "JPEG-DL (frozen tables): worst case (all attacks)" in table.columns
    assert "JPEG-DL - standard JPEG: worst case (all attacks) [p_holm]" in table.columns


def test_report_without_jpegdl_compares_each_arm_with_the_baseline(tmp_path):
    cells = [
        cell("baseline", "clean", 0, _vec(100)),
        cell("baseline", "fgsm", 2, _vec(10), steps=1),
        cell("jpeg-standard", "clean", 0, _vec(100)),
        cell("jpeg-standard", "fgsm", 2, _vec(50), steps=1, grad="soft"),
    ]
    run = write_run(tmp_path / "run", cells, checks=None)
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    assert "no JPEG-DL vs baseline comparison: the arms attacked are baseline, standard JPEG" in md
    paired = pd.read_csv(tmp_path / "out" / "paired.csv")
    assert set(zip(paired["arm"], paired["partner"], strict=True)) == {("jpeg-standard", "baseline")}


def test_eval_alpha_cells_get_their_own_section_and_never_enter_the_main_tables(tmp_path, arms_report):
    out = tmp_path / "out"
    build_report([four_arm_run(tmp_path / "run", alpha_cells=True)], out)
    md = (out / "report.md").read_text(encoding="utf-8")
    main, alpha = md.split("## As the official script ran it: JPEG-DL scored with alpha 1", 1)
    assert "scored at alpha 1" not in main.split("## Figures")[0]
    assert "scored at alpha 1" in alpha.split("## Figures")[0]
    # the clean accuracy at alpha 1 against the trained alpha, on the same images, with the changed images counted
    sentence = next(line for line in alpha.splitlines() if line.startswith("- JPEG-DL, clean accuracy"))
    assert f"first {N} test images: {100 * 110 / N:.2f}% at alpha 1, {100 * 100 / N:.2f}% at the trained" in sentence
    assert "10 images change correctness (10 correct only at alpha 1, 0 only at" in sentence
    assert f"McNemar p = {paired_from_samples(_vec(110), _vec(100)).p_mcnemar:.3f}" in sentence
    # the corrected tables are exactly those of the same run without the alpha cells
    before = (arms_report / "table.md").read_text(encoding="utf-8")
    after = (out / "table.md").read_text(encoding="utf-8")

    def headline(text: str) -> str:
        return text.split("## resnet56, L\u221e: worst case over every attack", 1)[1].split("\n## ")[0]

    assert headline(after) == headline(before)
    header = (out / "table.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert len(header) == len(set(header)), "table.csv repeats a column"
    assert "JPEG-DL: FGSM [eval alpha 1]" in header and "JPEG-DL - baseline: FGSM [eval alpha 1] [p_holm]" in header
    paired = pd.read_csv(out / "paired.csv")
    scored = paired[paired["eval_alpha"].notna()]
    assert set(scored["family"]) == {"eval alpha 1 attack FGSM"}
    row = scored[(scored["eps"] == 2) & (scored["partner"] == "baseline")].iloc[0]
    assert (row["acc_arm"], row["acc_partner"]) == (pytest.approx(90 / N), pytest.approx(10 / N))
    assert (out / "tables" / "resnet56-linf-alpha1-fgsm.tex").is_file() or any(
        p.name.startswith("resnet56-linf-alpha1-fgsm") for p in (out / "tables").iterdir()
    )


def test_controls_on_one_seed_beside_a_three_seed_pair(tmp_path):
    """The CPU study's shape: baseline and JPEG-DL on seeds 0, 1 and 2, the two controls on seed 0 only. The pair is
    pooled over the three seeds; each control is compared on its one seed and said to be so."""
    runs = [four_arm_run(tmp_path / "run0")]
    for seed in (1, 2):
        cells = [cell(arm, "clean", 0, _vec(100)) for arm in ("baseline", "jpegdl")]
        cells += [
            cell("baseline", "fgsm", 2, _vec(12 + seed), steps=1),
            cell("jpegdl", "fgsm", 2, _vec(55 + seed), steps=1, grad="soft"),
        ]
        runs.append(write_run(tmp_path / f"run{seed}", cells, seed=seed, checks=None))
    build_report(runs, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    controls = text[text.index("## Control arms") : text.index("## Results per attack")]
    frozen = controls[: controls.index("against the control standard JPEG")]
    # JPEG-DL beside the frozen control is JPEG-DL of seed 0 (60 of 120 images), not the three seeds' mean
    assert f"| 2 | {100 * 20 / N:.2f} | {100 * 60 / N:.2f} |" in frozen
    assert "Δ [95% CI]" in frozen and "mean ± std" not in frozen.split("\n- ")[0]
    assert "was trained on one training seed of the 3: every number here, JPEG-DL's included" in frozen
    headline = text[text.index("## The answer") : text.index("## Control arms")]
    seed_means = [100 * (60 - 0) / N, 100 * (55 + 1) / N, 100 * (55 + 2) / N]
    assert f"{np.mean(seed_means):.2f} ± {np.std(seed_means, ddof=1):.2f}" in headline  # the pair: all three seeds
    assert "worst case over every attack on the one training seed JPEG-DL (frozen tables) was trained for, of 3" in (
        headline
    )
    masking = [line for line in headline.splitlines() if line.startswith("- Gradient masking of JPEG-DL (frozen")]
    assert len(masking) == 1 and "the only run with this arm" in masking[0], masking
    assert "run1" not in masking[0] and "run2" not in masking[0]  # the control was never trained on seeds 1, 2
    per_attack = text[text.index("## Results per attack") :]
    assert "JPEG-DL − JPEG-DL (frozen tables): Δ [95% CI]†" in per_attack


def test_a_control_whose_gradient_attacks_square_beats_gets_a_caveat(tmp_path):
    """Square keeps 20 of the 58 images standard JPEG's gradient attack left (square_not_stronger fails there): the
    control bullet says its worst case may overstate it; the frozen control, without a Square cell, gets no caveat."""
    square = cell("jpeg-standard", "square", 2, _vec(20), steps=5000)
    build_report([four_arm_run(tmp_path / "run", extra_cells=(square,))], tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    answer = text[text.index("## The answer") : text.index("## Control arms")]
    bullets = {b.split(",")[0]: b for b in answer.split("\n- ") if b.startswith("JPEG-DL − ")}
    standard, frozen = bullets["JPEG-DL − standard JPEG"], bullets["JPEG-DL − JPEG-DL (frozen tables)"]
    assert "square_not_stronger fails" in standard and "overstate its robustness" in standard
    assert "square_not_stronger" not in frozen
