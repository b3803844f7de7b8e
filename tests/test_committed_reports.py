"""Every committed report regenerates from its own data/ folder with the current code (text apart from the
generation line), and the corrected worst case holds on the published data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report_layout import compile_in_a_paper

from robustbench_jpeg.report import build_report

REPORTS = Path(__file__).resolve().parents[1] / "reports"
COMMITTED = sorted(p for p in REPORTS.iterdir() if (p / "data" / "manifest.json").is_file())
TEXT_FILES = ("report.md", "table.md", "table.csv", "paired.csv")


def _text(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("Generated ")]


@pytest.mark.slow
@pytest.mark.parametrize("report", COMMITTED, ids=lambda p: p.name)
def test_committed_report_regenerates_from_its_data(report, tmp_path):
    title = (report / "report.md").read_text(encoding="utf-8").splitlines()[0].removeprefix("# ")
    again = build_report([report / "data"], tmp_path / "again", title=title).parent
    for name in TEXT_FILES:
        assert _text(again / name) == _text(report / name), f"{report.name}/{name} differs from its regeneration"
    for tex in sorted((report / "tables").glob("*.tex")):
        assert _text(again / "tables" / tex.name) == _text(tex), tex.name


def test_the_v01_worst_case_counts_every_smaller_radius():
    """On the first published data (version 0.1 attacks), the corrected worst case never rises with eps, and at
    2.33/255 the JPEG-DL gain over the attacks run on >= 500 images is +3.2 points, not the +14.8 published then
    (which ignored smaller radii and dropped the cells run on fewer images)."""
    report = REPORTS / "cifar100-resnet20-cpu-v0.1"
    table = pd.read_csv(report / "table.csv")
    linf = table[table["norm"] == "linf"].set_index("eps")
    for arm in ("baseline", "JPEG-DL"):
        for column in [c for c in linf.columns if c.startswith(f"{arm}: worst case") and "[" not in c]:
            curve = linf[column].dropna().sort_index().to_numpy()
            assert np.all(np.diff(curve) <= 1e-12), column
    tier = "JPEG-DL - baseline: worst case (attacks on >= 500 images)"
    at = linf.loc[np.isclose(linf.index, 7 / 3, atol=1e-3)]
    assert at[tier].iloc[0] == pytest.approx(0.032, abs=1e-9)
    assert at[f"{tier} [n]"].iloc[0] == 500


@pytest.mark.slow
@pytest.mark.parametrize("report", COMMITTED, ids=lambda p: p.name)
def test_every_committed_tex_compiles_without_overfull_boxes(report, tmp_path):
    """Each committed .tex (the per-table files and table.tex) typesets in a two-column paper, no overfull box."""
    files = [*sorted((report / "tables").glob("*.tex")), report / "table.tex"]
    assert all(f.is_file() for f in files)
    compile_in_a_paper(files, tmp_path)


@pytest.mark.parametrize("report", COMMITTED, ids=lambda p: p.name)
def test_every_committed_worst_case_never_rises_with_eps(report):
    """Per arm, norm and tier (and evaluation alpha), the worst case over every attack is non-increasing in eps."""
    table = pd.read_csv(report / "table.csv")
    columns = [c for c in table.columns if ": worst case" in c and "[" not in c and " - " not in c]
    assert columns, f"{report.name}: no worst-case column"
    for (model, norm), grp in table.groupby(["model", "norm"]):
        for column in columns:
            curve = grp.set_index("eps")[column].dropna().sort_index().to_numpy()
            assert np.all(np.diff(curve) <= 1e-12), (report.name, model, norm, column)
