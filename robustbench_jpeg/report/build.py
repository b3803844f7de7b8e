"""``build_report``: run folders (or a report's data/ folder) in, a self-contained report folder out."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from ..data import TEST_SIZES
from ..evaluation import run_checks
from ..outputs import OutputFolderError, claim_output, finish_output, release_output
from ..provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, git_sha, now_iso, public_mode
from ..runfolder import ARMS, CARD_NAME, JPEGDL, RunFormatError, arm_display, arm_order, safe_name
from ..runfolder.records import pack_record
from .cells import adaptive_radii, build_cells, unchecked_radii
from .compare import PAIR_COLUMNS, arm_pairs, family_sizes, paired_differences, quantizer_arms
from .conclude import adaptive_comparisons
from .latex import PREAMBLE, to_latex
from .load import DATA_FORMAT, MANIFEST, ReportInputError, Run, load_runs
from .plot_qtables import plot_qtables
from .plots import band_caption, plot_accuracy_vs_eps, plot_worst_case_column
from .quantizer import FIGURE as QUANTIZER_FIGURE
from .quantizer import plot_quantizer, quantizer_rows
from .sections import ReportData, all_tables, collect_tables, table_markdown, write_documents
from .tables import aggregate, wide_csv

TABLES_DIR = "tables"


def build_report(
    run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike, title: str | None = None, force: bool = False
) -> Path:
    """Write tables, figures, report.md/report.html and a data/ copy for ``run_dirs`` into ``out_dir``.

    Args:
        run_dirs: run folders (docs/run-format.md), a previous report's ``data/`` folder, or a report folder.
            Runs of one model with different train seeds are pooled as seeds (mean ± std); different models get
            their own sections; different datasets are an error. Any set of arms (runfolder.ARMS) is handled.
        out_dir: the report folder (created). Its ``data/`` and ``tables/`` are replaced; other files overwritten. It
            must be new, empty or hold only an earlier report (recorded in its ``jpeg-robust-output.json``).
        force: write into an ``out_dir`` that holds other files too (never into a run folder).
        title: report title; a default naming model(s), dataset and seeds otherwise.

    Returns:
        The path of ``report.md``.

    Raises:
        ReportInputError: missing results.csv or per-sample files, malformed results.csv, mixed datasets, ...
    """
    runs = load_runs(run_dirs)
    for run in runs:  # each name becomes data/runs/<name>: refuse unsafe ones before writing anything
        try:
            safe_name(run.name, f"run folder name ({run.path})")
        except RunFormatError as exc:
            raise ReportInputError(f"{exc}; rename the run folder") from None
        run.checks_now = recompute_checks(run)
    out = Path(out_dir)
    try:
        claim = claim_output(out, "report", force)
    except OutputFolderError as exc:
        raise ReportInputError(str(exc)) from None
    try:
        path = _write_report(runs, out, title)
    except ReportInputError:
        release_output(claim)
        raise
    finish_output(claim)
    return path


def _write_report(runs: list[Run], out: Path, title: str | None) -> Path:
    quantizers = quantizer_arms(runs)
    cells, vectors = build_cells(runs)
    pairs = arm_pairs(set(cells["arm"]), quantizers)
    diffs = paired_differences(cells, vectors, pairs, quantizers)
    acc, dif = aggregate(cells, diffs)
    groups = list(acc[["model", "norm"]].drop_duplicates().itertuples(index=False, name=None))
    data = ReportData(
        runs=runs,
        cells=cells,
        acc=acc,
        dif=dif,
        diffs=diffs,
        adaptive=adaptive_comparisons(cells, vectors, quantizers),
        quantizers=quantizers,
        sizes=family_sizes(diffs),
        groups=groups,
    )
    data.tables = collect_tables(data)
    title = title or default_title(runs)

    atomic_write_text(out / "table.csv", wide_csv(acc, dif).to_csv(index=False))
    atomic_write_text(
        out / "paired.csv", diffs.reindex(columns=PAIR_COLUMNS).rename(columns={"eps_key": "eps"}).to_csv(index=False)
    )
    atomic_write_text(out / "table.md", table_markdown(title, data))
    write_latex(all_tables(data.tables), out)
    # open markers on the worst case where no adaptive attack ran against a JPEG arm (if one ran anywhere: otherwise
    # the whole worst case is unchecked and the text says so)
    unchecked = {
        g: unchecked_radii(cells, *g, quantizers) if adaptive_radii(cells, *g, quantizers) else set() for g in groups
    }
    plot_accuracy_vs_eps(acc, dif, unchecked, out / "accuracy_vs_eps.png", out / "accuracy_vs_eps.svg")
    plot_worst_case_column(acc, dif, unchecked, out / "worst_case_column")
    data.figure_caption = figure_caption(acc)
    plot_qtables(qtable_blocks(runs), out / "qtables.png")
    data.quantizer_figure = plot_quantizer(runs, out / QUANTIZER_FIGURE)
    data.quantizer_rows = quantizer_rows(runs)
    write_data(runs, out)
    return write_documents(out, title, data)


def figure_caption(acc) -> str:
    return (
        "Robust accuracy (%) vs eps per attack setting (a chained attack such as AutoAttack drawn whole; its steps "
        "are in the tables), the worst case over every attack run, and JPEG-DL minus each partner under the worst "
        "case (points). Colours: one per arm (Okabe-Ito); line styles: gradient "
        "mode (solid soft, dashed BPDA, dotted transfer); star: clean accuracy at eps 0; open markers on the "
        "worst case: eps with no adaptive attack against the JPEG arm. "
        + band_caption(acc)
        + " Radii beyond 16/255 (L-inf) or at the large L2 check radius are left out (tables below)."
    )


def write_latex(tables, out: Path) -> None:
    """``tables/<key>.tex`` (one table each; every key validated as a file name) and ``table.tex`` (all of them)."""
    target = out / TABLES_DIR
    if target.exists() and any(p.suffix != ".tex" for p in target.iterdir()):
        raise ReportInputError(f"{target} exists and holds files other than .tex tables; choose another --out")
    bodies = []
    tmp = Path(tempfile.mkdtemp(prefix=".tables.", dir=out))
    public_mode(tmp, directory=True)
    try:
        for table in tables:
            try:
                name = safe_name(table.key, "table name") + ".tex"
            except RunFormatError as exc:
                raise ReportInputError(f"{exc}; rename the model or attack label that it comes from") from None
            body = to_latex(table)
            bodies.append(body)
            atomic_write_text(tmp / name, PREAMBLE + body)
        _swap(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    atomic_write_text(out / "table.tex", PREAMBLE + _flushed(bodies))


FLOATS_PER_PAGE_BREAK = 8  # LaTeX holds at most 18 unplaced floats: table.tex flushes them every few tables


def _flushed(bodies: list[str]) -> str:
    """The table bodies of ``table.tex``, with a ``\\clearpage`` after every FLOATS_PER_PAGE_BREAK tables (a report
    with dozens of tables otherwise stops LaTeX with "Too many unprocessed floats")."""
    chunks = [bodies[i : i + FLOATS_PER_PAGE_BREAK] for i in range(0, len(bodies), FLOATS_PER_PAGE_BREAK)]
    return "\\clearpage\n".join("\n".join(chunk) for chunk in chunks)


def _swap(new: Path, target: Path) -> None:
    """Replace folder ``target`` by ``new`` with renames (the old one is removed only after the swap)."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old.", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def recompute_checks(run: Run) -> list:
    """The sanity checks of :mod:`robustbench_jpeg.evaluation.checks` over this run's rows and per-sample vectors (the
    same function the sweep uses, so the report and checks.json cannot disagree on the same data)."""
    quantizer = [arm for arm, card in run.cards.items() if card.jpeg]
    test_size = TEST_SIZES.get(run.dataset)
    cards = {arm: card.to_dict() for arm, card in run.cards.items()}
    return run_checks(run.results, run.samples, run.diagnostics, cards or None, test_size, quantizer)


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
            for arm in sorted(run.cards, key=arm_order):
                card = run.cards[arm]
                if card.qtables and ARMS.get(arm, ARMS[JPEGDL]).learns_tables:
                    blocks.append(
                        {
                            "title": f"{model}, {arm_display(arm)} (train seed {run.seed}, run {run.name})",
                            "learned": card.qtables,
                            "init": card.qtables_init,
                        }
                    )
            if blocks and blocks[-1]["title"].startswith(f"{model},"):
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
            dest = tmp / "runs" / run.name  # validated by build_report
            atomic_write_bytes(dest / "results.csv", run.raw_results)
            frames.append(pd.read_csv(io.BytesIO(run.raw_results), dtype={"cell_id": str}).assign(run=run.name))
            atomic_write_bytes(dest / "samples.bin", b"".join(pack_record(c, v) for c, v in run.samples.items()))
            for arm, card in run.cards.items():
                atomic_write_json(dest / arm / CARD_NAME, card.to_dict())
            for arm, history in run.histories.items():
                atomic_write_bytes(dest / arm / "history.csv", history)
            for name, obj in (
                ("checks.json", run.checks),
                ("config.json", run.config),
                ("diagnostics.json", run.diagnostics),
            ):
                if obj is not None:
                    atomic_write_json(dest / name, obj)
            if run.commands is not None:
                atomic_write_text(dest / "commands.txt", "\n".join(run.commands) + "\n")
        table = pd.concat(frames, ignore_index=True)
        table = table[["run"] + [c for c in table.columns if c != "run"]]
        atomic_write_text(tmp / "results.csv", table.to_csv(index=False))
        atomic_write_text(
            tmp / MANIFEST,
            json.dumps(
                {
                    "format": DATA_FORMAT,
                    "version": 1,
                    "runs": [run.name for run in runs],
                    "created": now_iso(),
                    "generator": "robustbench_jpeg.report.build_report",
                    "git_sha": git_sha(),
                    "regenerate": "jpeg-robust report --run <this data folder> --out <new folder>",
                },
                indent=2,
            )
            + "\n",
        )
        _swap(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
