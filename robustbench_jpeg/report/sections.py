"""The report as one document: the answer first (headline table, masking verdict, verdict, control arms), then the
per-attack tables, the evaluation-time-alpha section, figures, checks, conclusion, provenance, statistics, the
paper's numbers and the list of files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..provenance import atomic_write_text, git_sha, now_iso
from ..runfolder import BASELINE, JPEGDL
from ..stats import CI_METHOD, P_METHOD
from . import fmt
from .attack_tables import alpha_tables, attack_list, attack_tables, eval_alphas, sanity_radii, tier_tables
from .cells import unchecked_radii
from .clean import alpha_clean_sentences
from .compare import arm_pairs, controls
from .conclude import conclusion, control_sentences, gradient_free_stronger, masking_sentences
from .headline import control_table, headline_table
from .load import Run
from .paper import PAPER_SOURCE, paper_table
from .render import Doc, to_html_text, to_markdown_text
from .run_sections import sanity_checks, what_was_run
from .views import ReportTable, split_table

QUESTION = (
    "Does JPEG-DL (a differentiable JPEG layer with learnable quantization tables in front of the CNN; "
    "Salamah et al., ICLR 2025, arXiv 2410.07081) make the classifier more robust to adversarial attacks "
    "than the same CNN trained without it?"
)


@dataclass
class ReportData:
    """Everything the document needs, computed once by ``build_report``."""

    runs: list[Run]
    cells: pd.DataFrame
    acc: pd.DataFrame
    dif: pd.DataFrame
    diffs: pd.DataFrame
    adaptive: pd.DataFrame
    quantizers: set[str]
    sizes: dict
    groups: list[tuple[str, str]]
    figure_caption: str = ""
    tables: dict[str, dict] = field(default_factory=dict)
    quantizer_figure: bool = False
    quantizer_rows: pd.DataFrame = field(default_factory=pd.DataFrame)


def collect_tables(data: ReportData) -> dict[str, dict]:
    """section -> (model, norm) or alpha -> tables, in document order."""
    out: dict[str, dict] = {"headline": {}, "controls": {}, "attacks": {}, "steps": {}, "tiers": {}, "alpha": {}}
    for model, norm in data.groups:
        arms = set(data.cells.loc[(data.cells["model"] == model) & (data.cells["norm"] == norm), "arm"])
        pairs = (
            [(JPEGDL, BASELINE)]
            if {JPEGDL, BASELINE} <= arms
            else [p for p in arm_pairs(arms, data.quantizers) if p[1] == BASELINE]
        )
        heads = [
            headline_table(
                data.acc,
                data.dif,
                model,
                norm,
                a,
                b,
                data.sizes,
                attack_list(data.acc, model, norm, (a, b)),
                _unchecked(data, model, norm, a),
            )
            for a, b in pairs
        ]
        out["headline"][(model, norm)] = [t for t in heads if t is not None]
        if JPEGDL in arms:
            found = [
                control_table(
                    data.acc, data.dif, model, norm, c, data.sizes, attack_list(data.acc, model, norm, (c, JPEGDL))
                )
                for c in controls(arms)
            ]
            out["controls"][(model, norm)] = [part for t in found if t is not None for part in split_table(t)]
        out["attacks"][(model, norm)] = attack_tables(data.acc, data.dif, model, norm, data.sizes)
        out["steps"][(model, norm)] = attack_tables(data.acc, data.dif, model, norm, data.sizes, chain_steps=True)
        out["tiers"][(model, norm)] = tier_tables(data.acc, data.dif, model, norm, data.sizes)
    for alpha in eval_alphas(data.acc):
        out["alpha"][alpha] = {g: alpha_tables(data.acc, data.dif, *g, alpha, data.sizes) for g in data.groups}
    return out


def _unchecked(data: ReportData, model: str, norm: str, arm: str) -> set[float]:
    """Attacked radii of a quantizer arm at which no adaptive attack ran against it (none for other arms)."""
    return unchecked_radii(data.cells, model, norm, [arm]) if arm in data.quantizers else set()


def all_tables(tables: dict[str, dict]) -> list[ReportTable]:
    found = []
    for section in ("headline", "controls", "attacks", "steps", "tiers"):
        for group in tables[section].values():
            found += group
    for by_group in tables["alpha"].values():
        for group in by_group.values():
            found += group
    return found


def _group_title(model: str, norm: str) -> str:
    return f"{model}, {fmt.norm_text(norm)}"


def write_documents(out: Path, title: str, data: ReportData) -> Path:
    """report.md and report.html: the answer first, then controls, per-attack tables, the official protocol's
    alpha, figures, checks, the conclusion, what was run, statistics and the paper's numbers kept apart."""
    doc = Doc()
    runs = data.runs
    doc.h(1, title)
    doc.p(
        f"Generated {now_iso()} by `robustbench_jpeg.report` (code {git_sha()}) from {len(runs)} run(s): "
        + ", ".join(f"`{run.name}`" for run in runs)
        + "."
    )
    doc.p(QUESTION)
    conclusions = {g: conclusion(*g, data.acc, data.dif, data.adaptive, data.cells, runs) for g in data.groups}
    _answer(doc, data, conclusions)
    _controls(doc, data.tables)
    _per_attack(doc, data)
    _official_alpha(doc, data)
    _figures(doc, data)
    sanity_checks(doc, runs, data.adaptive, data.groups, data.quantizers)
    doc.h(2, "Conclusion")
    for g in data.groups:
        bullets, verdict = conclusions[g]
        if len(data.groups) > 1:
            doc.h(3, _group_title(*g))
        doc.ul(bullets)
        doc.p(verdict)
    what_was_run(doc, runs)
    _statistics(doc, data)
    _paper_numbers(doc, runs)
    doc.h(2, "Files in this folder")
    doc.ul(FILES)
    atomic_write_text(out / "report.md", to_markdown_text(doc))
    atomic_write_text(out / "report.html", to_html_text(doc, out, title))
    return out / "report.md"


def _controls(doc: Doc, tables: dict) -> None:
    if any(tables["controls"].values()):
        doc.h(2, "Control arms")
        doc.p(
            "Each control arm against JPEG-DL and against the baseline, worst case over every attack run on each "
            "arm: does the learned table matter, or does any JPEG front end do the same?"
        )
        for found in tables["controls"].values():
            for table in found:
                doc.h(3, table.title)
                doc.table(table)


_FOLDED_BELOW_ATTACKS = (  # (section of collect_tables, its fold's summary), in document order
    (
        "steps",
        "the steps of each chain (cumulative: robust after that step and every one before it; the whole chain's "
        "table is above)",
    ),
    (
        "tiers",
        "worst cases over the attacks run on at least N images (larger tiers leave out the attacks run on fewer "
        "images)",
    ),
)


def _per_attack(doc: Doc, data: ReportData) -> None:
    tables = data.tables
    doc.h(2, "Results per attack")
    doc.p(
        "One table per attack setting: rows are radii, columns the arms (one per gradient mode or transfer source) "
        "and the paired differences. Everything is computed from the per-sample files in data/."
    )
    for g in data.groups:
        doc.h(3, _group_title(*g))
        for table in tables["attacks"][g]:
            doc.h(4, table.title)
            doc.table(table)
        for section, summary in _FOLDED_BELOW_ATTACKS:
            if tables[section][g]:
                folded = doc.details(summary)
                for table in tables[section][g]:
                    folded.h(4, table.title)
                    folded.table(table)


def _official_alpha(doc: Doc, data: ReportData) -> None:
    for alpha, by_group in data.tables["alpha"].items():
        doc.h(2, f"As the official script ran it: JPEG-DL scored with alpha {alpha:g}")
        doc.p(
            f"The official robustness script attacks and scores the JPEG-DL model with soft-quantizer alpha "
            f"{alpha:g} rather than the alpha it was trained with. These cells are kept here, beside the same "
            "attacks under the corrected protocol, and never enter the tables or the worst case above."
        )
        doc.ul(alpha_clean_sentences(data.runs, alpha))
        for g, found in by_group.items():
            for table in found:
                doc.h(3, f"{_group_title(*g)}: {table.title}")
                doc.table(table)


def _paper_numbers(doc: Doc, runs: list) -> None:
    doc.h(2, "Reported in the paper (not our measurement)")
    doc.p(
        f"Source: {PAPER_SOURCE}; each row names where its number was read. These numbers are not comparable "
        "one-to-one with ours (different training runs; the paper's baselines are RepDistiller's checkpoints); the "
        "headline table shows the claims beside our numbers, "
        "labelled as the paper's, and they never enter our statistics."
    )
    for model in sorted({run.model for run in runs}):
        doc.table(paper_table(model))


def _answer(doc: Doc, data: ReportData, conclusions: dict) -> None:
    doc.h(2, "The answer")
    doc.p(
        "Robust accuracy under the worst case over every attack run (per image: broken by any attack at that "
        "radius or a smaller one), JPEG-DL against the baseline on the same images."
    )
    for g in data.groups:
        model, norm = g
        doc.h(3, _group_title(model, norm))
        heads = data.tables["headline"][g]
        for table in heads:
            doc.table(table)
        if not heads:
            doc.p("No worst case was computed for both JPEG-DL and the baseline here.")
        doc.ul(masking_sentences(data.runs, model, data.quantizers))
        doc.p(conclusions[g][1])
        doc.ul(control_sentences(data.dif, data.cells, model, norm, gradient_free_stronger(data.runs, model)))
    doc.p(
        "The control arms, the tables per attack, the figures, the sanity checks and how the runs were made "
        "follow; the statistics are described at the end."
    )


def _figures(doc: Doc, data: ReportData) -> None:
    doc.h(2, "Figures")
    doc.img("accuracy_vs_eps.png", data.figure_caption)
    doc.p(
        "Vector versions: `accuracy_vs_eps.svg`; for a paper column (3.4 in wide): `worst_case_column.pdf` "
        "(also `.png`, `.svg`)."
    )
    radii = sanity_radii(data.acc)
    if not radii.empty:
        doc.h(3, "Radii left out of the figures")
        doc.p(
            "Sanity-check radii (beyond 16/255 L-inf, at least the large L2 check radius): a working attack should "
            "break almost every image there (check large_eps_near_zero)."
        )
        doc.table(radii)
    doc.img(
        "qtables.png",
        "Learned quantization step tables (luma, chroma) of each JPEG arm with learned tables, beside "
        "their initial values and the standard JPEG quality-50 tables.",
    )
    _quantizer(doc, data)


def _quantizer(doc: Doc, data: ReportData) -> None:
    doc.h(2, "The quantizer in numbers")
    if data.quantizer_rows.empty:
        doc.p(
            "No JPEG arm of these runs has a quantizer audit (diagnostics.json is written by `jpeg-robust attack` "
            "since version 0.2)."
        )
        return
    doc.p(
        "Why gradients through the soft quantizer can vanish (docs/method.md, section 2): its slope is "
        "2 alpha Var_p, near zero wherever the hardness alpha q^2 is large. Per JPEG arm with a soft quantizer, on "
        "the first 256 test images: the hardness of the trained tables, the share of DCT coefficients where the "
        "soft quantizer's slope is below 1% of the identity's (the input gradient through the layer is then "
        "close to zero), and the share of exactly-zero loss gradients at the quantizer's input (from the "
        "zero_input_gradients check)."
    )
    doc.table(data.quantizer_rows)
    if data.quantizer_figure:
        doc.img(
            "quantizer.png",
            "Per DCT frequency (u vertical, v horizontal): alpha q^2 (log scale), the share of "
            "coefficients with a near-zero soft-quantizer slope, and the share of exactly-zero loss gradients, "
            "for luma and chroma.",
        )


def _statistics(doc: Doc, data: ReportData) -> None:
    doc.h(2, "Statistics")
    families = sorted({(m, n, f) for (m, n, f) in data.sizes})
    doc.ul(
        [
            f"Paired 95% interval of a difference: {CI_METHOD}; p-value: {P_METHOD} (both on the same images; "
            "`robustbench_jpeg.stats`, formulas in docs/report.md). The interval of a single accuracy in the figures "
            "is the 95% Wilson score interval.",
            "Holm-Bonferroni adjustment: p (Holm) is adjusted over every p-value of one report table (its family: all "
            "radii, all seeds, every difference column of that table), so that the chance of any false 'significant' "
            f"entry in that table stays at most 5%. This report has {len(families)} such families.",
            "A difference 'exceeds the interval' when its 95% paired interval excludes zero (with several seeds: every "
            "seed's interval, on the same side); anything else is reported as 'not shown', never as 'no effect'.",
            "One training seed: the intervals cover the sampling of test images only, not the variation between "
            "training runs.",
        ]
    )


FILES = [
    "`report.md`, `report.html`: this report (the HTML shows the figure files of this folder).",
    "`table.csv`: every accuracy and difference as raw fractions, one row per (model, threat model, eps); difference "
    "columns with `[ci_low]`, `[ci_high]`, `[p_mcnemar]`, `[p_holm]`, `[n]`; `[std]`/`[seeds]` with several seeds.",
    "`table.md`: the report's tables in percent. `tables/*.tex`: one LaTeX table per file (booktabs, `table*`); "
    "`table.tex`: all of them in one file.",
    "`paired.csv`: every paired comparison per run (arm, partner, b, c, n, difference, interval, p, Holm p, family).",
    "`accuracy_vs_eps.png`/`.svg`: the figure grid; `worst_case_column.pdf`/`.png`/`.svg`: the one-column figure; "
    "`qtables.png`: the learned tables.",
    "`quantizer.png`: the quantizer audit (hardness, near-zero slopes, zero gradients per frequency), when the runs "
    "have one.",
    "`data/`: the inputs (results, per-sample files, cards, checks, commands, configs); "
    "`jpeg-robust report --run data --out NEW` regenerates this report.",
]


def table_markdown(title: str, data: ReportData) -> str:
    """table.md: every table of the report, in document order, with its notes."""
    doc = Doc()
    doc.h(1, f"{title}: tables")
    for table in all_tables(data.tables):
        doc.h(2, table.title)
        doc.table(table)
    return to_markdown_text(doc)
