"""``build_report``: run folders (or a report's data/ folder) in, a self-contained report folder out."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from ..attack.checks import run_checks
from ..attack.store import pack_record
from ..data import TEST_SIZES
from ..provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, git_sha, now_iso, public_mode
from .cells import build_cells, paired_differences
from .conclude import adaptive_comparisons
from .load import DATA_FORMAT, MANIFEST, ReportInputError, Run, load_runs
from .plots import plot_accuracy_vs_eps, plot_qtables
from .sections import write_documents
from .tables import aggregate, display_table, eps_header, table_notes, to_latex, to_markdown, wide_csv


def build_report(run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike, title: str | None = None) -> Path:
    """Write tables, figures, report.md/report.html and a data/ copy for ``run_dirs`` into ``out_dir``.

    Args:
        run_dirs: run folders (docs/run-format.md), a previous report's ``data/`` folder, or a report folder.
            Runs of one model with different train seeds are pooled as seeds (mean ± std); different models get
            their own sections; different datasets are an error.
        out_dir: the report folder (created). Its ``data/`` is replaced; other files are overwritten.
        title: report title; a default naming model(s), dataset and seeds otherwise.

    Returns:
        The path of ``report.md``.

    Raises:
        ReportInputError: missing results.csv or per-sample files, malformed results.csv, mixed datasets, ...
    """
    runs = load_runs(run_dirs)
    for run in runs:
        run.checks_now = recompute_checks(run)
    out = Path(out_dir)
    if (out / "results.csv").exists():
        raise ReportInputError(f"{out} holds a results.csv: refusing to write a report into a run folder")
    out.mkdir(parents=True, exist_ok=True)
    cells, vectors = build_cells(runs)
    diffs = paired_differences(cells, vectors)
    acc, dif = aggregate(cells, diffs)
    adaptive = adaptive_comparisons(cells, vectors)
    title = title or default_title(runs)

    atomic_write_text(out / "table.csv", wide_csv(acc, dif).to_csv(index=False))
    atomic_write_text(out / "paired.csv", (diffs if not diffs.empty else pd.DataFrame(
        columns=["run", "model", "train_seed", "norm", "eps_key", "label"])).rename(
        columns={"eps_key": "eps"}).to_csv(index=False))
    groups = list(acc[["model", "norm"]].drop_duplicates().itertuples(index=False, name=None))
    md, tex = [f"# {title}: accuracy (%) vs eps", ""], []
    for model, norm in groups:
        md += [f"## {model}, {'L-inf' if norm == 'linf' else norm.upper()}", "",
               to_markdown(display_table(acc, dif, model, norm)), "", *table_notes(acc, cells, model, norm), ""]
        tex.append(to_latex(display_table(acc, dif, model, norm, latex=True),
                            caption=f"{model}: accuracy (%) vs {eps_header(norm)}. " + " ".join(
                                table_notes(acc, cells, model, norm, plain=True)),
                            label=f"tab:{model}-{norm}"))
    atomic_write_text(out / "table.md", "\n".join(md) + "\n")
    tex_head = "% needs \\usepackage{booktabs}; wide tables: wrap the tabular in \\resizebox{\\textwidth}{!}{...}\n"
    atomic_write_text(out / "table.tex", tex_head + "\n".join(tex))

    plot_accuracy_vs_eps(acc, out / "accuracy_vs_eps.png", out / "accuracy_vs_eps.svg", title)
    plot_qtables(qtable_blocks(runs), out / "qtables.png")
    write_data(runs, out)
    return write_documents(out, title, runs, groups, acc, dif, diffs, cells, adaptive)


def recompute_checks(run: Run) -> list:
    """The sanity checks of :mod:`robustbench_jpeg.attack.checks` over this run's rows and per-sample vectors (the
    same function the sweep uses, so the report and checks.json cannot disagree on the same data)."""
    quantizer = [arm for arm, card in run.cards.items() if card.get("jpeg")]
    test_size = TEST_SIZES.get(run.dataset)
    return run_checks(run.results, run.samples, run.diagnostics, run.cards or None, test_size, quantizer)


def default_title(runs: list[Run]) -> str:
    models = sorted({run.model for run in runs})
    seeds = len({(run.model, run.seed) for run in runs}) // max(len(models), 1)
    plural = "s" if seeds > 1 else ""
    return f"Does JPEG-DL make {', '.join(models)} more robust? {runs[0].dataset}, {seeds} seed{plural}"


def qtable_blocks(runs: list[Run]) -> list[dict]:
    """The learned and initial tables of the first (lowest-seed) JPEG-DL card of each model."""
    blocks = []
    for model in sorted({run.model for run in runs}):
        for run in sorted((r for r in runs if r.model == model), key=lambda r: r.seed):
            card = run.cards.get("jpegdl", {})
            if card.get("qtables"):
                blocks.append({"title": f"{model} (train seed {run.seed}, run {run.name})",
                               "learned": card["qtables"], "init": card.get("qtables_init")})
                break
    return blocks


def write_data(runs: list[Run], out: Path) -> None:
    """Write out/data (manifest, concatenated results, one run folder per run) via a temporary folder and a swap."""
    target = out / "data"
    if target.exists() and not (target / MANIFEST).is_file():
        raise ReportInputError(f"{target} exists and is not a report data folder; choose another --out")
    tmp = Path(tempfile.mkdtemp(prefix=".data.", dir=out))
    public_mode(tmp, directory=True)  # mkdtemp makes it private; a published report must stay readable
    try:
        frames = []
        for run in runs:
            dest = tmp / "runs" / run.name
            atomic_write_bytes(dest / "results.csv", run.raw_results)
            frames.append(pd.read_csv(io.BytesIO(run.raw_results), dtype={"cell_id": str}).assign(run=run.name))
            atomic_write_bytes(dest / "samples.bin", b"".join(pack_record(c, v) for c, v in run.samples.items()))
            for arm, card in run.cards.items():
                atomic_write_json(dest / arm / "card.json", card)
            for arm, history in run.histories.items():
                atomic_write_bytes(dest / arm / "history.csv", history)
            for name, obj in (("checks.json", run.checks), ("config.json", run.config),
                              ("diagnostics.json", run.diagnostics)):
                if obj is not None:
                    atomic_write_json(dest / name, obj)
            if run.commands is not None:
                atomic_write_text(dest / "commands.txt", "\n".join(run.commands) + "\n")
        table = pd.concat(frames, ignore_index=True)
        table = table[["run"] + [c for c in table.columns if c != "run"]]
        atomic_write_text(tmp / "results.csv", table.to_csv(index=False))
        atomic_write_text(tmp / MANIFEST, json.dumps({
            "format": DATA_FORMAT, "version": 1, "runs": [run.name for run in runs], "created": now_iso(),
            "generator": "robustbench_jpeg.report.build_report", "git_sha": git_sha(),
            "regenerate": "jpeg-robust report --run <this data folder> --out <new folder>",
        }, indent=2) + "\n")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".data-old.", dir=out))
            os.replace(target, old / "data")
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
