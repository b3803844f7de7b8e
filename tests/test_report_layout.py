"""The report's layout: the answer first (a narrow headline table), no pivot-name header, folded JSON, LaTeX that
compiles without overfull boxes, figures that never switch the user's backend, and regeneration from data/."""

from __future__ import annotations

import html.parser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import BASE_FGSM, BASE_PGD, JPEG_FGSM, JPEG_PGD_BPDA, JPEG_PGD_SOFT, JPEG_TRANSFER, bools, single_run

from robustbench_jpeg.report import build_report
from robustbench_jpeg.report.latex import standalone
from robustbench_jpeg.stats import holm_adjust, paired_from_samples

R20 = Path(__file__).resolve().parents[1] / "reports" / "cifar100-resnet20-cpu" / "data"


class Tables(html.parser.HTMLParser):
    """Every <table> of an HTML page as (header cells, first body row's cell count)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: str | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"headers": [], "rows": []})
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[-1]["rows"].append(0)
        elif tag in ("th", "td"):
            self._cell = tag
            if tag == "th":
                self.tables[-1]["headers"].append("")
            elif self._in_body:
                self.tables[-1]["rows"][-1] += 1

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell == "th":
            self.tables[-1]["headers"][-1] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    build_report([single_run(root / "run_s0")], root / "out", title="Layout test")
    return root / "out"


def test_report_opens_with_a_narrow_headline_table(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    first_h2 = re.findall(r"^## (.+)$", md, flags=re.M)[0]
    assert first_h2 == "The answer"
    answer = md.split("## The answer", 1)[1].split("\n## ", 1)[0]
    assert "Gradient masking of JPEG-DL's white-box numbers: **not detected**" in answer  # 10 images: not significant
    assert "**Conclusion:**" in answer
    parser = Tables()
    parser.feed((report / "report.html").read_text(encoding="utf-8"))
    headline = parser.tables[0]
    assert max(headline["rows"]) <= 8, headline
    assert any("p (Holm)" in h for h in headline["headers"]) and any("95% CI" in h for h in headline["headers"])
    assert "claimed gain" in headline["headers"] and "Salamah et al. (not ours)" in headline["headers"]


def test_no_table_has_a_header_named_column(report):
    parser = Tables()
    parser.feed((report / "report.html").read_text(encoding="utf-8"))
    assert len(parser.tables) > 5
    headers = [h.strip() for t in parser.tables for h in t["headers"]]
    assert "column" not in headers and all(headers), "a header cell named 'column' or an empty one"
    for line in (report / "report.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| "):
            assert not line.startswith("| column |"), line


def test_json_dumps_and_wide_parts_are_folded(report):
    page = (report / "report.html").read_text(encoding="utf-8")
    for summary in (
        "recipe of each arm (JSON",
        "resolved training configuration",
        "every attack setting run",
        "the exact commands",
    ):
        assert re.search(r"<details><summary>[^<]*" + re.escape(summary), page), summary
    assert "<pre><code>{" not in page.split("<details>", 1)[0], "a JSON dump outside <details>"
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "**Details: recipe of each arm (JSON" in md


def test_headline_numbers_and_holm_family(report):
    """The headline row at eps 2 is the per-image AND of every attack, paired, with Newcombe's interval; its Holm p is
    the adjustment over exactly the p-values of that table (eps 0 and eps 2)."""
    jw = np.logical_and.reduce([bools(s) for s in (JPEG_FGSM, JPEG_PGD_SOFT, JPEG_PGD_BPDA, JPEG_TRANSFER)])
    bw = np.logical_and.reduce([bools(s) for s in (BASE_FGSM, BASE_PGD)])
    stat = paired_from_samples(jw, bw)
    paired = pd.read_csv(report / "paired.csv")
    head = paired[paired["family"] == "headline"].sort_values("eps")
    assert list(head["eps"]) == [0, 2]
    row = head.iloc[1]
    assert row["diff"] == pytest.approx(stat.diff) and row["ci_low"] == pytest.approx(stat.ci_low)
    assert row["p_mcnemar"] == pytest.approx(stat.p_mcnemar)
    assert list(head["p_holm"]) == pytest.approx(holm_adjust(list(head["p_mcnemar"])))
    for _, grp in paired.groupby(["model", "norm", "family"]):
        assert list(grp["p_holm"]) == pytest.approx(holm_adjust(list(grp["p_mcnemar"])))
        assert (grp["p_holm"] >= grp["p_mcnemar"] - 1e-12).all()
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "Holm-Bonferroni adjusted over the 2 p-values of this table" in md
    assert "Newcombe hybrid score" in md and "exact McNemar" in md
    assert "[p_holm]" in " ".join(pd.read_csv(report / "table.csv").columns)


def test_no_degenerate_or_hyphen_minus_numbers(report):
    for path in [report / "table.md", report / "report.md", *sorted((report / "tables").glob("*.tex"))]:
        text = path.read_text(encoding="utf-8")
        assert "+0.00 [+0.00, +0.00]" not in text and "[+0.00, +0.00]" not in text, path
        assert not re.search(r"[\[ ]-\d+\.\d\d", text), f"hyphen used as a minus sign in {path.name}"
    tex = (report / "table.tex").read_text(encoding="utf-8")
    assert "$-$" in tex and r"\multicolumn" in tex and r"\toprule" in tex and r"\begin{table*}" in tex


def _latex_tables(folder: Path) -> list[Path]:
    files = sorted((folder / "tables").glob("*.tex"))
    assert files and all(re.fullmatch(r"[a-z0-9][a-z0-9.-]*\.tex", f.name) for f in files)
    return files


def compile_in_a_paper(files: list[Path], workdir: Path) -> str:
    """Typeset ``files`` (one per page) in a two-column article with pdflatex; assert it compiles without an overfull
    box and return the log. Skips when pdflatex is not installed."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    body = "\n".join(f"\\input{{{f.as_posix()}}}\n\\clearpage" for f in files)
    (workdir / "doc.tex").write_text(standalone(body), encoding="utf-8")
    done = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = (workdir / "doc.log").read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)
    return log


@pytest.mark.parametrize("source", ["hand", "resnet20", "four arms and eval alpha"])
def test_every_latex_table_compiles_without_overfull_boxes(report, tmp_path, source):
    folder = report
    if source == "resnet20":
        folder = tmp_path / "r20"
        build_report([R20], folder)
    elif source != "hand":
        from test_report_arms import four_arm_run

        folder = tmp_path / "arms"
        build_report([four_arm_run(tmp_path / "run", alpha_cells=True)], folder)
    files = _latex_tables(folder)
    log = compile_in_a_paper(files, tmp_path)
    pages = int(re.search(r"Output written on doc.pdf \((\d+) page", log).group(1))
    assert pages >= len(files)  # every table typeset, one per page


def test_figures_and_the_one_column_export(report):
    from PIL import Image

    for name in (
        "accuracy_vs_eps.png",
        "accuracy_vs_eps.svg",
        "worst_case_column.pdf",
        "worst_case_column.png",
        "worst_case_column.svg",
    ):
        assert (report / name).stat().st_size > 1000, name
    width, _ = Image.open(report / "worst_case_column.png").size
    assert width == pytest.approx(3.4 * 200, abs=2)  # 3.4 in at 200 dpi: one paper column
    grid, _ = Image.open(report / "accuracy_vs_eps.png").size
    assert grid == pytest.approx(7.0 * 200, abs=2)
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "95% Wilson interval" in md  # one seed: the caption says which band


def test_importing_and_running_the_report_keeps_the_users_backend(tmp_path):
    run = single_run(tmp_path / "r")
    code = (
        "import matplotlib; matplotlib.use('pdf'); import robustbench_jpeg.report as r; "
        f"r.build_report([{str(run)!r}], {str(tmp_path / 'out')!r}); print(matplotlib.get_backend())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "pdf"


def _masked(text: str) -> str:
    text = re.sub(
        r"Generated \S+ by (`|<code>)robustbench_jpeg.report(`|</code>) \(code [^)]*\)",
        "Generated <time> (code <sha>)",
        text,
    )
    return text


def test_regenerated_report_is_identical(report, tmp_path):
    again = tmp_path / "again"
    build_report([report / "data"], again, title="Layout test")
    for name in ("report.md", "table.md", "table.csv", "paired.csv", "table.tex"):
        assert _masked((again / name).read_text(encoding="utf-8")) == _masked(
            (report / name).read_text(encoding="utf-8")
        ), name
    assert sorted(p.name for p in (again / "tables").iterdir()) == sorted(p.name for p in (report / "tables").iterdir())
    for path in (report / "tables").iterdir():
        assert (again / "tables" / path.name).read_text() == path.read_text(), path.name
    for name in ("accuracy_vs_eps.svg", "worst_case_column.svg", "worst_case_column.pdf"):
        assert (again / name).read_bytes() == (report / name).read_bytes(), name  # no dates, fixed SVG ids
    html_a = _masked((again / "report.html").read_text(encoding="utf-8"))
    html_b = _masked((report / "report.html").read_text(encoding="utf-8"))
    strip = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
    assert strip.sub("", html_a) == strip.sub("", html_b)


def test_run_names_that_become_paths_are_validated(tmp_path):
    from robustbench_jpeg.report import ReportInputError

    run = single_run(tmp_path / "bad name")
    with pytest.raises(ReportInputError, match="not a safe file name.*rename the run folder"):
        build_report([run], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written
