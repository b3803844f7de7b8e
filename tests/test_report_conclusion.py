"""The report's conclusion claims a worst-case difference only where the 95% paired interval and the Holm-corrected
test agree, names the radii where they disagree, and says so when nothing was attacked (hand-made run folders)."""

from __future__ import annotations

from test_report import build_report, cell, write_run

N = 200


def robust(*ranges: range) -> list[bool]:
    """N images, robust exactly on the given index ranges."""
    keep = {i for r in ranges for i in r}
    return [i in keep for i in range(N)]


def conclusion_of(md: str) -> str:
    return md.split("## Conclusion", 1)[1].split("## Reported in the paper", 1)[0]


def test_the_conclusion_claims_only_radii_that_survive_the_holm_correction(tmp_path):
    """The defect: the conclusion claimed a gain wherever the raw interval excluded zero, while the same table's
    Holm p was far above 0.05. Here at 4/255 (b=9, c=1 on 200 images) the interval excludes zero (p = 0.021) but
    the Holm-adjusted p over the headline table's five p-values is 0.086; at 2/255 (b=40, c=0) both agree."""
    everyone = robust(range(N))
    run = write_run(
        tmp_path / "r",
        [
            cell("baseline", "clean", 0, everyone),
            cell("jpegdl", "clean", 0, everyone),
            cell("baseline", "pgd", 2, robust(range(60)), steps=5),
            cell("jpegdl", "pgd", 2, robust(range(100)), steps=5, grad="soft"),
            cell("baseline", "pgd", 4, robust(range(30)), steps=5),
            cell("jpegdl", "pgd", 4, robust(range(29), range(30, 39)), steps=5, grad="soft"),
            cell("baseline", "pgd", 8, robust(range(10)), steps=5),
            cell("jpegdl", "pgd", 8, robust(range(10)), steps=5, grad="soft"),
            cell("baseline", "pgd", 16, robust(), steps=5),
            cell("jpegdl", "pgd", 16, robust(), steps=5, grad="soft"),
        ],
        checks=None,
    )
    closing = conclusion_of(build_report([run], tmp_path / "out").read_text(encoding="utf-8"))
    closing = closing.split("**Conclusion:**", 1)[1]
    assert "after the Holm correction at eps 2/255 (by +20.00 points)" in closing
    assert "at eps 4/255 the 95% paired interval excludes zero but the difference does not survive" in closing.lower()
    assert "p (Holm) 4/255: 0.086" in closing


def test_nothing_attacked_is_said_instead_of_a_conclusion(tmp_path):
    """The defect: with no test image classified correctly the checks passed and the report drew a conclusion."""
    nobody = robust()
    run = write_run(
        tmp_path / "r",
        [
            cell("baseline", "clean", 0, nobody),
            cell("jpegdl", "clean", 0, nobody),
            cell("baseline", "pgd", 2, nobody, steps=5),
            cell("jpegdl", "pgd", 2, nobody, steps=5, grad="soft"),
            cell("jpegdl", "pgd", 2, nobody, steps=5, grad="bpda"),
            cell("baseline", "pgd", 4, nobody, steps=5),
            cell("jpegdl", "pgd", 4, nobody, steps=5, grad="soft"),
        ],
        checks=None,
    )
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    closing = conclusion_of(md).split("**Conclusion:**", 1)[1]
    assert closing.strip().startswith("nothing was attacked: no test image is classified correctly")
    assert "robustness difference" not in closing and "support" not in closing
    assert "Masking of the white-box numbers of `jpegdl`: **nothing attacked**" in md


def _three_seeds(tmp_path, disjoint: bool) -> str:
    """Three seeds of one pair; at 2/255 JPEG-DL wins on 6 images and loses on 1 in every seed (per-seed exact
    McNemar p = 0.125), on other images in every seed (``disjoint``) or on the same ones."""
    everyone = robust(range(N))
    runs = []
    for seed in range(3):
        start = 100 + (6 * seed if disjoint else 0)
        lost = seed if disjoint else 0
        jpegdl = robust(range(lost), range(lost + 1, 100), range(start, start + 6))
        cells = [
            cell("baseline", "clean", 0, everyone),
            cell("jpegdl", "clean", 0, everyone),
            cell("baseline", "pgd", 2, robust(range(100)), steps=5),
            cell("jpegdl", "pgd", 2, jpegdl, steps=5, grad="soft"),
        ]
        runs.append(write_run(tmp_path / f"s{seed}", cells, seed=seed, checks=None))
    return build_report(runs, tmp_path / "out").read_text(encoding="utf-8")


def test_three_seeds_are_pooled_by_an_exact_test_over_images(tmp_path):
    """Per seed nothing is significant (p = 0.125 each); pooled over the seeds, the same 3 x 6 wins on 18 different
    images are (exact sign-flip p = 2 * P(X <= 3), X ~ Binomial(21, 1/2) = 0.0015, Holm x2 = 0.003), so the
    conclusion claims the gain; the headline shows the per-seed and the pooled statistics."""
    md = _three_seeds(tmp_path / "disjoint", disjoint=True)
    assert "pooled p (Holm)" in md and "pooled 95% CI" in md
    assert "0.12, 0.12, 0.12" in md and "| 0.001 (0.003) |" in md
    # the bullet states the rule applied (the pooled interval), not a per-seed one no seed meets (p = 0.125 each)
    assert (
        "the pooled 95% paired interval excludes zero (every seed's difference on that side) in JPEG-DL's favour"
        in (conclusion_of(md))
    )
    closing = conclusion_of(md).split("**Conclusion:**", 1)[1]
    assert "after the Holm correction at eps 2/255" in closing


def test_three_seeds_winning_on_the_same_images_are_not_three_times_the_evidence(tmp_path):
    """The same 6 wins and 1 loss in every seed: the pooled test sees 7 discordant images, not 21 (p = 0.125)."""
    md = _three_seeds(tmp_path / "same", disjoint=False)
    assert "0.12 (0.25)" in md
    closing = conclusion_of(md).split("**Conclusion:**", 1)[1]
    assert "after the Holm correction at eps 2/255" not in closing


def test_what_was_run_gives_the_minutes_of_each_arm_and_spec(tmp_path):
    """Training minutes from each card's wall time (12 s -> 0.2), attack minutes from the cells' wall_s per spec
    (two cells of 0.1 s per arm in spec ``test`` (clean and PGD): 0.2 s -> 0.0)."""
    everyone = robust(range(N))
    cells = [
        cell("baseline", "clean", 0, everyone),
        cell("jpegdl", "clean", 0, everyone),
        cell("baseline", "pgd", 2, robust(range(60)), steps=5),
        cell("jpegdl", "pgd", 2, robust(range(100)), steps=5, grad="soft"),
    ]
    run = write_run(tmp_path / "r", cells, checks=None)
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    section = md.split("### Time", 1)[1].split("###", 1)[0]
    assert "| run | step | baseline | JPEG-DL |" in section
    assert "| r | training | 0.2 | 0.2 |" in section and "| r | attack: test | 0.0 | 0.0 |" in section


def test_an_attack_run_on_fewer_seeds_is_named_in_the_worst_case_note(tmp_path):
    """The defect: with FGSM run on one seed of two, the headline's worst case (mean over the seeds) listed FGSM
    among 'every attack run' as if both seeds' worst cases held it."""
    everyone = robust(range(N))
    runs = []
    for seed in range(2):
        cells = [
            cell("baseline", "clean", 0, everyone),
            cell("jpegdl", "clean", 0, everyone),
            cell("baseline", "pgd", 2, robust(range(50)), steps=5),
            cell("jpegdl", "pgd", 2, robust(range(50)), steps=5, grad="soft"),
        ]
        if seed == 0:
            cells += [cell("baseline", "fgsm", 2, robust(range(80)))]
            cells += [cell("jpegdl", "fgsm", 2, robust(range(80)), grad="soft")]
        runs.append(write_run(tmp_path / f"s{seed}", cells, seed=seed, checks=None))
    md = build_report(runs, tmp_path / "out").read_text(encoding="utf-8")
    (note,) = [line for line in md.splitlines() if line.startswith("- Robust accuracy under the worst case over every")]
    assert "(FGSM (on 1 of 2 seeds), PGD-5)" in note
    bullets = conclusion_of(md)
    assert "- FGSM (white-box; on 1 of 2 seeds): difference 0.00 points" in bullets
    assert "- PGD-5 (white-box): difference 0.00 points" in bullets


def test_an_attack_run_on_one_arm_only_is_named_in_the_headline_and_the_control_table(tmp_path):
    """The defect: the worst cases of two arms were compared as 'over every attack run' while one of them held an
    attack (here FGSM, run on JPEG-DL only) the other never faced."""
    everyone = robust(range(N))
    cells = [cell(arm, "clean", 0, everyone) for arm in ("baseline", "jpegdl", "jpeg-frozen")]
    cells += [cell(arm, "pgd", 2, robust(range(50)), steps=5, grad="soft") for arm in ("jpegdl", "jpeg-frozen")]
    cells += [cell("baseline", "pgd", 2, robust(range(50)), steps=5), cell("jpegdl", "fgsm", 2, robust(range(40)))]
    run = write_run(tmp_path / "r", cells, checks=None, extra_arms=("jpeg-frozen",))
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    (headline,) = [line for line in md.splitlines() if line.startswith("- Robust accuracy under the worst case over")]
    assert "(FGSM (JPEG-DL only), PGD-5)" in headline
    (control,) = [line for line in md.splitlines() if line.startswith("- Worst case over every attack run on each")]
    assert "(FGSM (JPEG-DL only), PGD-5)" in control


def test_a_chain_is_named_once_whole_in_the_worst_case_note(tmp_path):
    """AutoAttack-style chains store each cumulative step; the note listed every prefix as if it were an attack."""
    everyone = robust(range(N))
    cells = [cell("baseline", "clean", 0, everyone), cell("jpegdl", "clean", 0, everyone)]
    for arm, grad in (("baseline", "none"), ("jpegdl", "soft")):
        first = len(cells)
        cells.append(cell(arm, "apgd-ce", 2, robust(range(30)), steps=100, grad=grad))
        cells.append({**cell(arm, "apgd-t", 2, robust(range(20)), steps=100, grad=grad), "after": first})
    run = write_run(tmp_path / "r", cells, checks=None)
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    (note,) = [line for line in md.splitlines() if line.startswith("- Robust accuracy under the worst case over")]
    assert "(APGD-CE-100 → APGD-T-100)" in note
    bullets = conclusion_of(md)  # the chain's first step is part of the chain, not a bullet of its own
    assert "- APGD-CE-100 → APGD-T-100 (white-box): " in bullets and "- APGD-CE-100 (" not in bullets
    assert "**Details: the steps of each chain" in md and "#### APGD-CE-100 (L∞)" in md.split("**Details: the steps")[1]


def test_what_was_run_says_over_how_many_processes_the_cells_ran(tmp_path):
    """Cells sharded over two processes (torchrun) took half the wall time one process would: the report named the
    device ('cpu, 1 thread') and the minutes but not the processes, so the timings could not be reproduced."""
    import pandas as pd

    everyone = robust(range(N))
    cells = [cell("baseline", "clean", 0, everyone), cell("jpegdl", "clean", 0, everyone)]
    cells += [cell("baseline", "fgsm", 2, robust(range(50))), cell("jpegdl", "fgsm", 2, robust(range(50)), grad="soft")]
    run = write_run(tmp_path / "r", cells, checks=None)
    results = pd.read_csv(run / "results.csv")
    results.assign(world_size=2).to_csv(run / "results.csv", index=False)
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    assert "- Attack processes per cell (world_size;" in md and "whole cell's): 2" in md
    one = write_run(tmp_path / "one", cells, checks=None)  # one process: nothing to add
    assert "Attack processes per cell" not in build_report([one], tmp_path / "out1").read_text(encoding="utf-8")
