"""The report's tables as :class:`ReportTable` objects, their cell text, the split of wide tables, and the table of
one attack setting (the headline and control tables are in :mod:`.headline`).

Every table has eps rows and few columns; one that would be wider than a two-column paper's text (about 7 columns)
is split into parts. The same objects are rendered to Markdown, HTML and LaTeX (:mod:`.render`, :mod:`.latex`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from ..runfolder import arm_display, arm_order
from ..stats import CI_METHOD, P_METHOD
from . import fmt
from .compare import diff_name
from .tables import rank_of

MAX_COLUMNS = 7  # eps + 6: what fits a two-column paper's \textwidth at \footnotesize
WIDTH_BUDGET = 100  # estimated characters (cells + padding) that fit 469 pt at \footnotesize
PAD = 3


@dataclass
class ReportTable:
    """One table: ``columns`` are (group, name) pairs (group "" for none), ``rows`` hold display text.

    ``units`` lists the column indices (never 0, the eps column) that a split keeps together; ``latex_skip`` the
    columns left out of the LaTeX version. ``latex_notes``, when given, replace ``notes`` below the LaTeX table (short
    notes for a paper, carrying what the skipped columns held).
    """

    key: str
    title: str
    caption: str
    columns: list[tuple[str, str]]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    units: list[list[int]] | None = None
    latex_skip: tuple[int, ...] = ()
    latex_notes: list[str] = field(default_factory=list)
    family: str | None = None

    def frame(self) -> pd.DataFrame:
        """A flat DataFrame view (headers ``group: name``), e.g. for table.md."""
        names = [f"{g}: {n}" if g and n else g or n for g, n in self.columns]
        return pd.DataFrame(self.rows, columns=names)


def _width(table: ReportTable, index: int) -> int:
    return max([len(table.columns[index][1])] + [len(r[index]) for r in table.rows]) + PAD


def split_table(table: ReportTable) -> list[ReportTable]:
    """Parts of at most MAX_COLUMNS columns and WIDTH_BUDGET estimated characters, each with the eps column."""
    units = table.units or [[i] for i in range(1, len(table.columns))]
    fits = (
        len(table.columns) <= MAX_COLUMNS and sum(_width(table, i) for i in range(len(table.columns))) <= WIDTH_BUDGET
    )
    if fits:
        return [table]
    parts, current, used = [], [], _width(table, 0)
    kinds = [_is_diff(table, u) for u in units]
    for k, unit in enumerate(units):
        if current and k > 0 and kinds[k] != kinds[k - 1]:  # accuracies and differences go to separate parts
            parts.append(current)
            current, used = [], _width(table, 0)
        width = sum(_width(table, i) for i in unit)
        group = len({table.columns[i][0] for i in unit}) == 1 and table.columns[unit[0]][0]
        width = max(width, len(group) + PAD) if group else width
        if current and (1 + len(current) + len(unit) > MAX_COLUMNS or used + width > WIDTH_BUDGET):
            parts.append(current)
            current, used = [], _width(table, 0)
        current += unit
        used += width
    parts.append(current)
    if len(parts) == 1:
        return [table]
    out = []
    for k, cols in enumerate(parts, start=1):
        keep = [0, *cols]
        out.append(
            replace(
                table,
                key=f"{table.key}-part{k}",
                title=f"{table.title} (part {k} of {len(parts)})",
                caption=f"{table.caption.rstrip('.')} (part {k} of {len(parts)}).",
                columns=[table.columns[i] for i in keep],
                rows=[[r[i] for i in keep] for r in table.rows],
                units=None,
                notes=table.notes if k == len(parts) else [],
            )
        )  # latex_notes: every part
    return out


def _is_diff(table: ReportTable, unit: list[int]) -> bool:
    return "\u2212" in table.columns[unit[0]][0] or "\u0394" in table.columns[unit[0]][1]


# --- cell text ----------------------------------------------------------------------------------------------------


def acc_text(row, total_seeds: int) -> str:
    text = fmt.mean_pm(row["mean"], row["std"], int(row["seeds"]))
    return text + (fmt.DAGGER if int(row["seeds"]) < total_seeds else "")


def diff_text(row) -> str:
    if int(row["seeds"]) > 1:
        return fmt.mean_pm(row["mean"], row["std"], int(row["seeds"]), diff=True)
    if int(row.get("n", 1) or 0) == 0:
        return fmt.DASH
    return f"{fmt.signed(row['mean'])} {fmt.interval(row['ci_low'], row['ci_high'])}"


def p_text(row) -> str:
    if int(row["seeds"]) > 1:
        per_seed = ", ".join(map(fmt.pvalue, row["p_all"])) + " (" + ", ".join(map(fmt.pvalue, row["holm_all"])) + ")"
        return per_seed + "; pooled " + pooled_text(row)
    return f"{fmt.pvalue(row['p_mcnemar'])} ({fmt.pvalue(row['p_holm'])})"


def seeds_agree(row, side: int) -> bool:
    """Every seed's difference lies on ``side`` (+1 above zero, -1 below; 0: never)."""
    return all(side * d > 0 for d in row["diff_all"])


def pooled_text(row) -> str:
    """The test pooled over seeds and its Holm adjustment: ``0.003 (0.012)``."""
    return f"{fmt.pvalue(row.get('p_pooled'))} ({fmt.pvalue(row.get('holm_pooled'))})"


def pooled_interval_text(row) -> str:
    """The pooled 95% interval in points: ``[+1.2, +3.4]``."""
    return fmt.interval(row.get("ci_pooled_low"), row.get("ci_pooled_high"))


def excludes_zero(row) -> int:
    """+1 / -1 when the 95% interval excludes zero: with several seeds the pooled interval, and every seed's
    difference on the same side; else 0."""
    if int(row["seeds"]) > 1 and not fmt.missing(row.get("ci_pooled_low")):
        side = 1 if row["ci_pooled_low"] > 0 else -1 if row["ci_pooled_high"] < 0 else 0
        return side if seeds_agree(row, side) else 0
    lows, highs = list(row["lo_all"]), list(row["hi_all"])
    if lows and all(lo > 0 for lo in lows):
        return 1
    if highs and all(hi < 0 for hi in highs):
        return -1
    return 0


def eps_rows(frames: list[pd.DataFrame]) -> list[float]:
    return sorted({float(e) for f in frames if not f.empty for e in f["eps_key"]})


def eps_cell(eps: float) -> str:
    return fmt.eps_text(eps) + (" (clean)" if eps == 0 else "")


def stats_note(m: int | None) -> str:
    holm = (
        f"p (Holm): Holm-Bonferroni adjusted over the {m} p-values of this table (family-wise error rate 5%)"
        if m
        else "p (Holm): Holm-Bonferroni adjusted within this table"
    )
    return f"95% CI: {CI_METHOD}. p: {P_METHOD}. {holm}."


def short_stats_note(m: int | None) -> str:
    return "95% CI: Newcombe hybrid score; p: exact McNemar; Holm: adjusted over the " + (
        f"{m} p-values of this table." if m else "p-values of this table."
    )


def short_seeds_note(seeds: int) -> str:
    return f"Mean \u00b1 std over {seeds} training seeds." if seeds > 1 else "One training seed."


def seeds_note(seeds: int) -> str:
    if seeds > 1:
        return (
            f"Mean \u00b1 std (sample std, ddof 1) over {seeds} training seeds ({fmt.DAGGER} = fewer seeds for "
            "that cell); differences: mean \u00b1 std of the per-seed differences, p-values listed per seed, and "
            "pooled over the seeds: the exact paired sign-flip test over images of the per-image differences summed "
            "over the seeds (the image is the unit every seed shares; with one seed it is the exact McNemar test; "
            "docs/report.md), Holm-adjusted within the table."
        )
    return "One training seed: the interval covers the sampling of test images only, not training variation."


def delta_header(seeds: int) -> str:
    return "\u0394 (mean \u00b1 std)" if seeds > 1 else "\u0394 [95% CI]"


# --- one attack setting --------------------------------------------------------------------------------------------


def setting_table(
    key: str,
    title: str,
    caption: str,
    a: pd.DataFrame,
    d: pd.DataFrame,
    norm: str,
    notes: list[str],
    family: str | None = None,
    latex_notes: list[str] | None = None,
) -> ReportTable:
    """Rows eps; accuracy columns grouped by arm (one per gradient mode / transfer source), then per difference a
    ``Δ [95% CI]`` and a ``p (Holm)`` column. ``a``/``d``: the accuracy and difference rows of this setting."""
    seeds = int(a["seeds"].max()) if not a.empty else 1
    rank = rank_of(a) | rank_of(d)
    variant = dict(zip(a["label"], a["variant"], strict=True)) | dict(zip(d["label"], d["variant"], strict=True))
    acc_cols = sorted({(r.arm, r.label) for r in a.itertuples()}, key=lambda k: (arm_order(k[0]), rank[k[1]]))
    per_arm = {arm: [lab for x, lab in acc_cols if x == arm] for arm, _ in acc_cols}
    flat = all(len(v) == 1 and not variant[v[0]] for v in per_arm.values())
    columns = [("", fmt.eps_header(norm))]
    units = []
    for arm, labels in per_arm.items():
        start = len(columns)
        for lab in labels:
            columns.append(
                ("Accuracy (%)", arm_display(arm)) if flat else (arm_display(arm), variant[lab] or "white-box")
            )
        units.append(list(range(start, len(columns))))
    diff_cols = (
        sorted(
            {(r.arm, r.partner, r.label) for r in d.itertuples()},
            key=lambda k: (arm_order(k[0]), arm_order(k[1]), rank[k[2]]),
        )
        if not d.empty
        else []
    )
    for arm, partner, lab in diff_cols:
        extra = variant[lab]
        group = diff_name(arm, partner) + (f" ({extra})" if extra else "")
        pair_seeds = int(d[(d["arm"] == arm) & (d["partner"] == partner) & (d["label"] == lab)]["seeds"].max())
        fewer = fmt.DAGGER if pair_seeds < seeds else ""  # a control arm trained on fewer seeds
        columns += [(group, delta_header(pair_seeds) + fewer), (group, "p (Holm)")]
        units.append([len(columns) - 2, len(columns) - 1])
    rows = []
    for eps in eps_rows([a, d]):
        row = [eps_cell(eps)]
        for arm, lab in acc_cols:
            hit = a[(a["arm"] == arm) & (a["label"] == lab) & (a["eps_key"] == eps)]
            row.append(acc_text(hit.iloc[0], seeds) if not hit.empty else fmt.DASH)
        for arm, partner, lab in diff_cols:
            hit = d[(d["arm"] == arm) & (d["partner"] == partner) & (d["label"] == lab) & (d["eps_key"] == eps)]
            row += [diff_text(hit.iloc[0]), p_text(hit.iloc[0])] if not hit.empty else [fmt.DASH, fmt.DASH]
        rows.append(row)
    return ReportTable(
        key=key,
        title=title,
        caption=caption,
        columns=columns,
        rows=rows,
        notes=notes,
        units=units,
        family=family,
        latex_notes=latex_notes or [],
    )


def safe_key(text: str) -> str:
    """A file-name-safe slug of a label (letters, digits, dashes)."""
    slug = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in text)
    return "-".join(slug.split()).lower() or "table"
