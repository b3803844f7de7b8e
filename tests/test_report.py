"""Tests for the reporter on hand-built run folders (docs/run-format.md): numbers, statistics, files, errors."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustbench_jpeg.report import (
    ReportInputError,
    build_report,
    expand_inputs,
    mcnemar_exact_p,
    mean_std,
    paired_difference,
)

LUMA = [[1.0 + i + 0.5 * j for j in range(8)] for i in range(8)]
CHROMA = [[2.0 + 0.25 * (i + j) for j in range(8)] for i in range(8)]


def card(arm: str, seed: int, model: str = "resnet56", dataset: str = "cifar100") -> dict:
    c = {
        "model": model,
        "arm": arm,
        "dataset": dataset,
        "num_classes": 100,
        "seed": seed,
        "epochs": 240,
        "epochs_done": 240,
        "jpeg": None if arm == "baseline" else {"alpha": 5.0, "init": "paper"},
        "recipe": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 64, "jpeg_lr": 0.003},
        "clean_top1": 0.7,
        "best_top1": 0.71,
        "best_epoch": 230,
        "git_sha": "abc123",
        "device": "cpu (test)",
        "versions": {"torch": "2.x"},
        "timestamp": "2025-01-01T00:00:00+00:00",
        "wall_seconds": 12.0,
    }
    if arm == "jpegdl":
        c["qtables"] = {"luma": LUMA, "chroma": CHROMA}
        c["qtables_init"] = {"luma": [[v + 1 for v in r] for r in LUMA], "chroma": [[v + 1 for v in r] for r in CHROMA]}
    return c


def cell(arm, attack, eps_255, samples, steps=0, grad="none", source_arm=None, restarts=1) -> dict:
    return {
        "arm": arm,
        "attack": attack,
        "eps_255": eps_255,
        "samples": samples,
        "steps": steps,
        "grad": grad,
        "source_arm": source_arm or arm,
        "restarts": restarts,
    }


def write_run(
    root: Path,
    cells: list[dict],
    seed: int = 0,
    model: str = "resnet56",
    dataset: str = "cifar100",
    checks: dict | None = None,
    extra_arms: tuple[str, ...] = (),
) -> Path:
    """A run folder by hand: cards (baseline, JPEG-DL and ``extra_arms``), results.csv, samples/<cell_id>.npy,
    checks.json, commands.txt, config.json."""
    (root / "samples").mkdir(parents=True)
    rows = []
    for i, c in enumerate(cells):
        vec = np.asarray(c["samples"], dtype=bool)
        cell_id = f"s{seed}c{i:03d}"
        np.save(root / "samples" / f"{cell_id}.npy", vec, allow_pickle=False)
        eps = c["eps_255"] / 255
        rows.append(
            {
                "model": model,
                "arm": c["arm"],
                "dataset": dataset,
                "train_seed": seed,
                "attack": c["attack"],
                "norm": "linf",
                "eps": eps,
                "eps_255": c["eps_255"],
                "steps": c["steps"],
                "step_size": eps / 2 if c["steps"] else eps,
                "step_rule": "2.5*eps/steps" if c["attack"] == "pgd" else "eps",
                "restarts": c["restarts"],
                "random_start": c["attack"] == "pgd",
                "grad": c["grad"],
                "source_arm": c["source_arm"],
                "attack_seed": 0,
                "spec": "test",
                "n": vec.size,
                "clean_acc": 0.0,
                "robust_acc": vec.mean(),
                "n_correct": int(vec.sum()),
                "wall_s": 0.1,
                "cell_id": cell_id,
                "git_sha": "abc123",
                "torch": "2.x",
                "torchattacks": "3.5.1",
                "device": "cpu",
                "timestamp": "2025-01-01T00:00:00+00:00",
                **({"after": f"s{seed}c{c['after']:03d}"} if "after" in c else {}),  # a chain: its predecessor
            }
        )
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    for arm in ("baseline", "jpegdl", *extra_arms):
        (root / arm).mkdir()
        (root / arm / "card.json").write_text(json.dumps(card(arm, seed, model, dataset)))
    if checks is not None:
        (root / "checks.json").write_text(json.dumps(checks))
    (root / "commands.txt").write_text(
        f"2025-01-01T00:00:00Z jpeg-robust train --seed {seed} --out {root}\n"
        f"2025-01-01T01:00:00Z jpeg-robust attack --run {root}\n"
    )
    (root / "config.json").write_text(json.dumps({"model": model, "seed": seed, "epochs": 240}))
    return root


def bools(bits: str) -> list[bool]:
    return [b == "1" for b in bits]


# n = 10. At eps 2/255: JPEG-DL FGSM vs baseline FGSM has b = 3, c = 1 (the worked example).
BASE_CLEAN = "1111111100"
JPEG_CLEAN = "1111111110"
BASE_FGSM = "1100000100"  # 3 correct: images 0, 1, 7
JPEG_FGSM = "1011100100"  # 5 correct: b = images {2, 3, 4} -> 3, c = image {1} -> 1
BASE_PGD = "1000000000"
JPEG_PGD_SOFT = "1011000000"
JPEG_PGD_BPDA = "1001000000"
JPEG_TRANSFER = "1111000000"
CHECKS = {
    "verdict": "1 check failed",
    "checks": [
        {"name": "monotone_in_eps", "arm": "jpegdl", "status": "pass", "detail": "ok", "meaning": "acc falls with eps"},
        {
            "name": "transfer_weaker",
            "arm": "jpegdl",
            "status": "fail",
            "detail": "transfer 40% > soft 30%",
            "meaning": "if transfer beats white-box, gradients are masked",
        },
    ],
}


def single_run(root: Path, seed: int = 0, checks: dict | None = CHECKS, **kw) -> Path:
    return write_run(
        root,
        [
            cell("baseline", "clean", 0, bools(BASE_CLEAN)),
            cell("jpegdl", "clean", 0, bools(JPEG_CLEAN)),
            cell("baseline", "fgsm", 2, bools(BASE_FGSM), steps=1),
            cell("jpegdl", "fgsm", 2, bools(JPEG_FGSM), steps=1, grad="soft"),
            cell("baseline", "pgd", 2, bools(BASE_PGD), steps=5),
            cell("jpegdl", "pgd", 2, bools(JPEG_PGD_SOFT), steps=5, grad="soft"),
            cell("jpegdl", "pgd", 2, bools(JPEG_PGD_BPDA), steps=5, grad="bpda"),
            cell("jpegdl", "pgd", 2, bools(JPEG_TRANSFER), steps=5, source_arm="baseline"),
        ],
        seed=seed,
        checks=checks,
        **kw,
    )


# ----------------------------------------------------------------------------------------------- statistics


def test_mcnemar_edge_cases():
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 5) == 1.0  # capped at 1
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 2**10)
    for b, c in ((7, 3), (2, 9), (40, 25)):  # equals the textbook sum of math.comb terms
        m = b + c
        expected = min(1.0, 2 * sum(math.comb(m, k) for k in range(min(b, c) + 1)) / 2**m)
        assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-12)
    assert 0 < mcnemar_exact_p(3000, 2800) < 0.02  # large counts stay exact and finite


def test_mean_std_two_seeds():
    mean, std, k = mean_std([0.5, 0.7])
    assert (mean, k) == (pytest.approx(0.6), 2)
    assert std == pytest.approx(0.141421, abs=1e-6)
    assert math.isnan(mean_std([0.5])[1])


# ----------------------------------------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rep")
    run = single_run(root / "run_s0")
    build_report([run], root / "out", title="Test report")
    return root / "out"


def test_table_csv_holds_the_numbers(report):
    table = pd.read_csv(report / "table.csv")
    assert list(table["eps"]) == [0, 2]
    at = table.set_index("eps")
    assert at.loc[0, "baseline: FGSM"] == pytest.approx(0.8)
    assert at.loc[0, "JPEG-DL: FGSM"] == pytest.approx(0.9)
    assert at.loc[2, "baseline: FGSM"] == pytest.approx(0.3)
    assert at.loc[2, "baseline: PGD-5"] == pytest.approx(0.1)
    assert at.loc[2, "JPEG-DL: PGD-5 (soft)"] == pytest.approx(0.3)
    assert at.loc[2, "JPEG-DL: PGD-5 (bpda-hard)"] == pytest.approx(0.2)  # row format 1: bpda was hard-forward
    assert at.loc[2, "JPEG-DL: PGD-5 transfer from baseline"] == pytest.approx(0.4)
    # FGSM difference at eps 2 is the worked case b = 3, c = 1, n = 10, checked against hand-computed numbers
    col = "JPEG-DL - baseline: FGSM"
    assert at.loc[2, "JPEG-DL: FGSM"] == pytest.approx(0.5)
    assert at.loc[2, col] == pytest.approx(0.2)
    assert at.loc[2, col + " [ci_low]"] == pytest.approx(-0.2016549, abs=1e-6)  # Newcombe, a=2 b=3 c=1 d=4
    assert at.loc[2, col + " [ci_high]"] == pytest.approx(0.5260788, abs=1e-6)
    assert at.loc[2, col + " [p_mcnemar]"] == pytest.approx(0.625)
    assert at.loc[2, col + " [n]"] == 10
    # clean difference (eps 0): b = 1 (image 8), c = 0
    assert at.loc[0, col] == pytest.approx(0.1)
    assert at.loc[0, col + " [p_mcnemar]"] == pytest.approx(1.0)
    # the baseline's PGD-5 is the partner of both JPEG-DL PGD-5 attacks; transfer is not differenced
    assert "JPEG-DL - baseline: PGD-5 (bpda-hard)" in table.columns
    assert not any("transfer" in c and c.startswith("JPEG-DL - baseline") for c in table.columns)


def test_worst_case_is_per_sample_and(report):
    at = pd.read_csv(report / "table.csv").set_index("eps")
    jpeg = [bools(s) for s in (JPEG_FGSM, JPEG_PGD_SOFT, JPEG_PGD_BPDA, JPEG_TRANSFER)]
    base = [bools(s) for s in (BASE_FGSM, BASE_PGD)]
    jw, bw = np.logical_and.reduce(jpeg), np.logical_and.reduce(base)
    assert at.loc[2, "JPEG-DL: worst case (all attacks)"] == pytest.approx(jw.mean())
    assert at.loc[2, "baseline: worst case (all attacks)"] == pytest.approx(bw.mean())
    assert at.loc[0, "JPEG-DL: worst case (all attacks)"] == pytest.approx(0.9)
    d = paired_difference(int((jw & ~bw).sum()), int((~jw & bw).sum()), 10, a=int((jw & bw).sum()))
    assert at.loc[2, "JPEG-DL - baseline: worst case (all attacks)"] == pytest.approx(d.diff)


def test_all_files_and_html_that_shows_the_figure_files(report):
    for name in (
        "table.csv",
        "table.md",
        "table.tex",
        "paired.csv",
        "accuracy_vs_eps.png",
        "accuracy_vs_eps.svg",
        "qtables.png",
        "report.md",
        "report.html",
        "data/results.csv",
        "data/manifest.json",
    ):
        assert (report / name).is_file(), name
    html = (report / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    figures = re.findall(r'<img src="([^"]+)"', html)
    assert len(figures) == 2 and "base64" not in html  # each figure is stored once, as its own file
    assert all((report / name).is_file() for name in figures), figures
    assert not re.search(r"""(href|src)\s*=\s*["']?(https?:)?//""", html), "external resource in report.html"
    assert "<link" not in html and "<script" not in html
    md = (report / "report.md").read_text(encoding="utf-8")
    for text in (
        "jpeg-robust attack --run",
        "checks.json, written when the run was attacked, says: 1 check failed",
        "Reported in the paper (not our measurement)",
        "72.34",
        "+0.67% to +1.55%",
        "gradient masking",
        "## Conclusion",
        "![",
        "Sanity checks",
    ):
        assert text in md, text
    assert "+20.00 [\u221220.17, +52.61]" in (report / "table.md").read_text(encoding="utf-8")  # real minus sign
    assert "+20.00 [$-$20.17, +52.61]" in (report / "table.tex").read_text(encoding="utf-8")
    assert r"\toprule" in (report / "table.tex").read_text()
    data = pd.read_csv(report / "data" / "results.csv")
    assert set(data["run"]) == {"run_s0"} and len(data) == 8
    from robustbench_jpeg.runfolder import read_samples

    assert len(read_samples(report / "data" / "runs" / "run_s0" / "samples.bin")) == 8  # raises if damaged


def test_embedded_html_carries_the_same_figures_as_data_uris(report):
    from robustbench_jpeg.report.render import Doc, to_html_text

    doc = Doc()
    doc.img("qtables.png", "the tables")
    embedded = to_html_text(doc, report, "t", embed=True)
    payload = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', embedded).group(1)
    assert base64.b64decode(payload) == (report / "qtables.png").read_bytes()
    assert '<img src="qtables.png"' in to_html_text(doc, report, "t")


def test_conclusion_flags_masking_from_recomputed_checks(tmp_path):
    """The conclusion's masking statement comes from the checks recomputed on the per-sample data (the same function
    as checks.json): BPDA significantly stronger than the soft attack of the same budget means masked."""
    n = 40
    clean = [True] * n
    soft = [True] * 30 + [False] * 10  # the soft-gradient PGD leaves 30 of 40 robust
    bpda = [True] * 5 + [False] * 35  # BPDA (same steps) leaves 5: b = 25, c = 0, p ~ 6e-8
    run = write_run(
        tmp_path / "r",
        [
            cell("baseline", "clean", 0, clean),
            cell("jpegdl", "clean", 0, clean),
            cell("baseline", "pgd", 2, [True] * 4 + [False] * 36, steps=5),
            cell("jpegdl", "pgd", 2, soft, steps=5, grad="soft"),
            cell("jpegdl", "pgd", 2, bpda, steps=5, grad="bpda"),
        ],
        checks=None,
    )
    md = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    conclusion = md.split("## Conclusion", 1)[1].split("## Reported in the paper", 1)[0]
    assert "likely inflated by gradient masking (failed: adaptive_not_stronger" in conclusion
    # how large the masked white-box gain is (30/40 - 4/40 robust), and each bullet says what kind of attack it is
    assert "white-box soft-quantizer numbers for JPEG-DL (up to +65.00 points, PGD-5 (soft) at eps 2/255)" in conclusion
    assert "- PGD-5 (soft) (white-box): difference +65.00" in conclusion
    assert "- PGD-5 (bpda-hard) (adaptive): difference +2.50" in conclusion  # the helper writes legacy rows
    assert "Failed sanity checks (recomputed from the per-sample data): adaptive_not_stronger (jpegdl)" in conclusion
    assert "Masking of the white-box numbers of `jpegdl`: **masked**" in md


def test_regenerate_from_data_folder(report, tmp_path):
    assert [name for name, _ in expand_inputs([report])] == ["run_s0"]  # the report folder itself is accepted
    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    again = build_report([copy / "data"], copy, title="Test report")  # in place, from its own data/
    assert again == copy / "report.md"
    pd.testing.assert_frame_equal(pd.read_csv(report / "table.csv"), pd.read_csv(copy / "table.csv"))
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []  # no temporary folders left


def test_two_seeds_mean_and_std(tmp_path):
    # baseline FGSM at eps 2: 5/10 correct in seed 0, 7/10 in seed 1 -> 0.6 ± 0.1414
    runs = []
    for seed, fgsm in ((0, "1111100000"), (1, "1111111000")):
        runs.append(
            write_run(
                tmp_path / f"s{seed}",
                [
                    cell("baseline", "clean", 0, bools("1111111100")),
                    cell("jpegdl", "clean", 0, bools("1111111110")),
                    cell("baseline", "fgsm", 2, bools(fgsm), steps=1),
                    cell("jpegdl", "fgsm", 2, bools("1111110000"), steps=1, grad="soft"),
                ],
                seed=seed,
                checks=CHECKS,
            )
        )
    out = tmp_path / "out"
    build_report(runs, out)
    at = pd.read_csv(out / "table.csv").set_index("eps")
    assert at.loc[2, "baseline: FGSM"] == pytest.approx(0.6)
    assert at.loc[2, "baseline: FGSM [std]"] == pytest.approx(0.141421, abs=1e-6)
    assert at.loc[2, "baseline: FGSM [seeds]"] == 2
    assert "60.00 ± 14.14" in (out / "table.md").read_text(encoding="utf-8")
    assert "over 2 training seeds" in (out / "report.md").read_text(encoding="utf-8")


def test_two_models_get_separate_sections_and_missing_checks_is_said(tmp_path):
    small = [
        cell("baseline", "clean", 0, bools(BASE_CLEAN)),
        cell("jpegdl", "clean", 0, bools(JPEG_CLEAN)),
        cell("baseline", "fgsm", 2, bools(BASE_FGSM), steps=1),
        cell("jpegdl", "fgsm", 2, bools(JPEG_FGSM), steps=1, grad="soft"),
    ]
    a = write_run(tmp_path / "a", small, model="resnet56", checks=CHECKS)
    b = write_run(tmp_path / "b", small, model="vgg8")
    vgg_card = json.loads((b / "jpegdl" / "card.json").read_text())
    del vgg_card["qtables"], vgg_card["qtables_init"]  # a card without tables: qtables.png shows resnet56's only
    (b / "jpegdl" / "card.json").write_text(json.dumps(vgg_card))
    report_md = build_report([a, b], tmp_path / "out").read_text(encoding="utf-8")
    md = (tmp_path / "out" / "table.md").read_text(encoding="utf-8")
    assert "## resnet56" in md and "## vgg8" in md
    assert set(pd.read_csv(tmp_path / "out" / "table.csv")["model"]) == {"resnet56", "vgg8"}
    assert "Recomputed by this report" in report_md and "70.36" in report_md  # vgg8's CRD baseline, paper section


# ----------------------------------------------------------------------------------------------- errors


def test_error_no_results_csv(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match="no results.csv"):
        build_report([tmp_path / "empty"], tmp_path / "out")


def test_error_missing_samples_file(tmp_path):
    run = single_run(tmp_path / "r")
    victim = sorted((run / "samples").glob("*.npy"))[2]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name) as err:
        build_report([run], tmp_path / "out")
    assert isinstance(err.value, ReportInputError) and "run r" in str(err.value)


def test_error_missing_samples_folder(tmp_path):
    run = single_run(tmp_path / "r")
    shutil.rmtree(run / "samples")
    with pytest.raises(ReportInputError, match="samples/"):
        build_report([run], tmp_path / "out")


def test_error_missing_columns(tmp_path):
    run = single_run(tmp_path / "r")
    pd.read_csv(run / "results.csv").drop(columns=["n_correct", "cell_id"]).to_csv(run / "results.csv", index=False)
    with pytest.raises(ReportInputError, match="n_correct, cell_id"):
        build_report([run], tmp_path / "out")


def test_error_mixed_datasets(tmp_path):
    a = single_run(tmp_path / "a", seed=0, dataset="cifar100")
    b = single_run(tmp_path / "b", seed=1, dataset="cifar100-mini")
    with pytest.raises(ValueError, match="cifar100-mini") as err:
        build_report([a, b], tmp_path / "out")
    assert "'cifar100'" in str(err.value)


def test_error_same_seed_twice(tmp_path):
    a = single_run(tmp_path / "a")
    with pytest.raises(ReportInputError, match="train seed 0"):
        build_report([a, a], tmp_path / "out")


def test_error_rows_of_one_arm_from_two_checkpoints(tmp_path):
    """Format-2 rows record the checkpoint's fingerprint: an arm whose rows come from two checkpoints is refused."""
    run = single_run(tmp_path / "a")
    table = pd.read_csv(run / "results.csv")
    table["row_format"] = 2
    table["fingerprint"] = ["old" if arm == "jpegdl" and i % 2 else "new" for i, arm in enumerate(table["arm"])]
    table.to_csv(run / "results.csv", index=False)
    with pytest.raises(ReportInputError, match="rows of arm jpegdl come from 2 different checkpoints"):
        build_report([run], tmp_path / "out")


def test_error_rows_of_two_row_formats(tmp_path):
    run = single_run(tmp_path / "a")
    table = pd.read_csv(run / "results.csv")
    table["row_format"] = [1 + i % 2 for i in range(len(table))]
    table.to_csv(run / "results.csv", index=False)
    with pytest.raises(ReportInputError, match="mixes row formats"):
        build_report([run], tmp_path / "out")


def test_cli_handler(tmp_path, capsys, monkeypatch):
    import argparse

    import robustbench_jpeg.report as report_pkg
    from robustbench_jpeg.cli import report_cmd

    parser = argparse.ArgumentParser()
    report_cmd.add_parser(parser.add_subparsers())
    calls = []

    def fake_build(runs, out, title=None, force=False):  # the library is tested above; here only the wiring
        calls.append((runs, out, title, force))
        return Path(out) / "report.md"

    monkeypatch.setattr(report_pkg, "build_report", fake_build)
    args = parser.parse_args(["report", "--run", "a", "--run", "b", "--out", str(tmp_path / "out"), "--title", "T"])
    assert args.handler(args) == 0
    assert calls == [([Path("a"), Path("b")], tmp_path / "out", "T", False)]
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "report.md")
    monkeypatch.undo()
    bad = parser.parse_args(["report", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert bad.handler(bad) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "--out", str(tmp_path)])  # --run is required


def test_html_renders_in_headless_browser(report, tmp_path):
    browser = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        pytest.skip("no headless browser (chromium) installed")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            (report / "report.html").as_uri(),
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_same_setting_at_two_sizes_keeps_the_larger_and_soft_only_eps_are_flagged(tmp_path):
    """One FGSM setting run on 16 and on 8 images (two specs) is one column (the 16-image cell); a worst-case gain at
    an eps where no BPDA/transfer attack ran is reported as unchecked for gradient masking. (8 images all going one
    way are significant after the headline's Holm correction, so the gain is claimed at both radii.)"""
    yes, no = [True] * 16, [False] * 16
    cells = [
        cell("baseline", "clean", 0, yes),
        cell("jpegdl", "clean", 0, yes),
        cell("baseline", "fgsm", 1, no),
        cell("baseline", "fgsm", 1, [False] * 8),
        cell("jpegdl", "fgsm", 1, yes),
        cell("jpegdl", "fgsm", 1, [True] * 8),
        cell("baseline", "fgsm", 2, no),
        cell("jpegdl", "fgsm", 2, yes),
        cell("jpegdl", "pgd", 2, yes, steps=5, grad="bpda"),
    ]
    out = tmp_path / "report"
    build_report([write_run(tmp_path / "run", cells)], out)
    table = pd.read_csv(out / "table.csv")
    fgsm_cols = [c for c in table.columns if "FGSM" in c and "[" not in c and c.startswith("JPEG-DL:")]
    assert fgsm_cols == ["JPEG-DL: FGSM"]
    summary = (out / "report.md").read_text().split("## The answer", 1)[1].split("## Results", 1)[0]
    assert "adaptive attacks included" in summary and "at eps 2/255" in summary
    assert "At eps 1/255 JPEG-DL's worst case also exceeds the baseline's" in summary
    assert "no adaptive attack was run at that radius itself" in summary
    # the headline table marks the radius without an adaptive attack, and only that one
    headline = summary.split("### ", 1)[1]
    rows = {line.split("|")[1].strip() for line in headline.splitlines() if line.startswith("| ")}
    assert "1 \u2020" in rows and "2" in rows and "2 \u2020" not in rows
    assert "\u2020 No adaptive attack (BPDA, surrogate, transfer) was run against JPEG-DL at this radius" in headline
    tex = (out / "tables" / "resnet56-linf-headline.tex").read_text(encoding="utf-8")
    assert "No adaptive attack" in tex
