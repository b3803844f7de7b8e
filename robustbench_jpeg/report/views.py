"""The report's tables as :class:`ReportTable` objects: the headline (worst case, JPEG-DL vs baseline), one table per
control arm, one per attack setting, the worst-case tiers, and the evaluation-time-alpha tables.

Every table has eps rows and few columns; one that would be wider than a two-column paper's text (about 7 columns)
is split into parts. The same objects are rendered to Markdown, HTML and LaTeX (:mod:`.render`, :mod:`.latex`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import pandas as pd

from ..run_format import BASELINE, JPEGDL, arm_display, arm_order
from ..stats import CI_METHOD, P_METHOD
from . import fmt
from .cells import WORST
from .compare import diff_name, strip_alpha
from .paper import PAPER_CLAIM_NOTE, paper_claim
from .tables import label_order

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


def _acc_text(row, total_seeds: int) -> str:
    text = fmt.mean_pm(row["mean"], row["std"], int(row["seeds"]))
    return text + (fmt.DAGGER if int(row["seeds"]) < total_seeds else "")


def _diff_text(row) -> str:
    if int(row["seeds"]) > 1:
        return fmt.mean_pm(row["mean"], row["std"], int(row["seeds"]), diff=True)
    if int(row.get("n", 1) or 0) == 0:
        return fmt.DASH
    return f"{fmt.signed(row['mean'])} {fmt.interval(row['ci_low'], row['ci_high'])}"


def _p_text(row) -> str:
    if int(row["seeds"]) > 1:
        return ", ".join(map(fmt.pvalue, row["p_all"])) + " (" + ", ".join(map(fmt.pvalue, row["holm_all"])) + ")"
    return f"{fmt.pvalue(row['p_mcnemar'])} ({fmt.pvalue(row['p_holm'])})"


def excludes_zero(row) -> int:
    """+1 / -1 when every seed's 95% interval excludes zero on the same side, else 0."""
    lows, highs = list(row["lo_all"]), list(row["hi_all"])
    if lows and all(lo > 0 for lo in lows):
        return 1
    if highs and all(hi < 0 for hi in highs):
        return -1
    return 0


def _seed_sides(row) -> str:
    k = len(row["lo_all"])
    up = sum(lo > 0 for lo in row["lo_all"])
    down = sum(hi < 0 for hi in row["hi_all"])
    return f"above 0 in {up}/{k}, below in {down}/{k}"


def _eps_rows(frames: list[pd.DataFrame]) -> list[float]:
    return sorted({float(e) for f in frames if not f.empty for e in f["eps_key"]})


def _eps_cell(eps: float) -> str:
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


def _claim_spans(norm: str, eps_values: list[float]) -> list[tuple[str, list[float]]]:
    spans: list[tuple[str, list[float]]] = []
    for eps in eps_values:
        claim = paper_claim(norm, eps)
        if claim and spans and spans[-1][0] == claim:
            spans[-1][1].append(eps)
        elif claim:
            spans.append((claim, [eps]))
    return spans


def _eps_span(values: list[float]) -> str:
    text = fmt.eps_text(values[0]) if len(values) == 1 else f"{fmt.eps_text(values[0])}\u2013{fmt.eps_text(values[-1])}"
    return text + ("/255" if values[-1] > 0 else "")


def seeds_note(seeds: int) -> str:
    if seeds > 1:
        return (
            f"Mean \u00b1 std (sample std, ddof 1) over {seeds} training seeds ({fmt.DAGGER} = fewer seeds for "
            "that cell); differences: mean \u00b1 std of the per-seed differences, p-values listed per seed."
        )
    return "One training seed: the interval covers the sampling of test images only, not training variation."


# --- the headline ------------------------------------------------------------------------------------------------


def headline_table(
    acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, arm: str, partner: str, sizes: dict, attacks: list[str]
) -> ReportTable | None:
    """Rows eps; robust accuracy of both arms under the worst case over every attack, their difference with its
    interval, raw and Holm p-values, and (JPEG-DL vs baseline, L-inf) the paper's claim, labelled as the paper's."""
    a = acc[(acc["model"] == model) & (acc["norm"] == norm) & (acc["label"] == WORST) & acc["eval_alpha"].isna()]
    d = (
        dif[
            (dif["model"] == model)
            & (dif["norm"] == norm)
            & (dif["label"] == WORST)
            & (dif["arm"] == arm)
            & (dif["partner"] == partner)
        ]
        if not dif.empty
        else dif
    )
    mine, theirs = a[a["arm"] == arm], a[a["arm"] == partner]
    if mine.empty or theirs.empty:
        return None
    seeds = int(a["seeds"].max())
    name = diff_name(arm, partner)
    claims = (arm, partner) == (JPEGDL, BASELINE) and any(paper_claim(norm, e) for e in _eps_rows([mine]))
    columns = [
        ("", fmt.eps_header(norm)),
        ("Robust accuracy (%)", arm_display(partner)),
        ("Robust accuracy (%)", arm_display(arm)),
    ]
    if seeds > 1:
        columns += [
            (f"{name} (points)", "\u0394 (mean \u00b1 std)"),
            (f"{name} (points)", "95% CI excludes 0"),
            (f"{name} (points)", "p per seed"),
            (f"{name} (points)", "p (Holm)"),
        ]
    else:
        columns += [
            (f"{name} (points)", "\u0394"),
            (f"{name} (points)", "95% CI"),
            (f"{name} (points)", "p"),
            (f"{name} (points)", "p (Holm)"),
        ]
    if claims:
        columns.append(("Paper (not ours)", "claimed gain"))
    rows = []
    for eps in _eps_rows([mine, theirs]):
        row = [_eps_cell(eps)]
        for frame in (theirs, mine):
            hit = frame[frame["eps_key"] == eps]
            row.append(_acc_text(hit.iloc[0], seeds) if not hit.empty else fmt.DASH)
        hit = d[d["eps_key"] == eps] if not d.empty else d
        if hit.empty:
            row += [fmt.DASH] * 4
        else:
            r = hit.iloc[0]
            if seeds > 1:
                row += [
                    _diff_text(r),
                    _seed_sides(r),
                    ", ".join(map(fmt.pvalue, r["p_all"])),
                    ", ".join(map(fmt.pvalue, r["holm_all"])),
                ]
            else:
                row += [
                    fmt.signed(r["mean"]),
                    fmt.interval(r["ci_low"], r["ci_high"]),
                    fmt.pvalue(r["p_mcnemar"]),
                    fmt.pvalue(r["p_holm"]),
                ]
        if claims:
            row.append(paper_claim(norm, eps) or "")
        rows.append(row)
    n = sorted({int(v) for v in pd.concat([mine["n_min"], theirs["n_min"]])})
    family = "headline" if (arm, partner) == (JPEGDL, BASELINE) else f"control {arm}"
    notes = [
        f"Robust accuracy under the worst case over every attack run ({', '.join(attacks) or 'none'}): an image "
        "counts as robust at eps only if no attack at that eps or any smaller one broke it. Only the attacks run; "
        "stronger ones could lower either arm.",
        f"On the first {'/'.join(map(str, n))} test images (test-set order), the images every attack covered; eps 0 "
        "is the clean accuracy on those images.",
        f"\u0394 = {name}, in percentage points on the same images. " + stats_note(sizes.get((model, norm, family))),
        seeds_note(seeds),
    ]
    latex_notes = [
        f"Worst case over every attack run ({', '.join(attacks) or 'none'}): an image is robust at eps only if no "
        f"attack at eps or below broke it; first {'/'.join(map(str, n))} test images; eps 0: clean accuracy. "
        f"\u0394: {name} in points on the same images. "
        + short_stats_note(sizes.get((model, norm, family)))
        + " "
        + short_seeds_note(seeds)
    ]
    if claims:
        notes.append(PAPER_CLAIM_NOTE)
        latex_notes.append(
            "Not our measurement: the paper reports "
            + "; ".join(f"{claim} at eps {_eps_span(eps)}" for claim, eps in _claim_spans(norm, _eps_rows([mine])))
            + " ([REVIEW], single attacks on the authors' models, not a worst case)."
        )
    return ReportTable(
        key=f"{model}-{norm}-headline" + ("" if family == "headline" else f"-{arm}"),
        title=f"{model}, {fmt.norm_text(norm)}: worst case over every attack, {name}",
        caption=f"{model}, {fmt.norm_text(norm)}: robust accuracy under the worst case over every attack run.",
        columns=columns,
        rows=rows,
        notes=notes,
        latex_skip=(len(columns) - 1,) if claims else (),
        latex_notes=latex_notes,
        family=family,
    )


def control_table(
    acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, control: str, sizes: dict
) -> ReportTable | None:
    """Worst case over every attack: the control arm, JPEG-DL, JPEG-DL - control and control - baseline."""
    a = acc[(acc["model"] == model) & (acc["norm"] == norm) & (acc["label"] == WORST) & acc["eval_alpha"].isna()]
    d = (
        dif[
            (dif["model"] == model)
            & (dif["norm"] == norm)
            & (dif["label"] == WORST)
            & (dif["family"] == f"control {control}")
        ]
        if not dif.empty
        else dif
    )
    arms = [x for x in (control, JPEGDL) if not a[a["arm"] == x].empty]
    if control not in arms:
        return None
    seeds = int(a["seeds"].max())
    pairs = [
        (x, y)
        for x, y in ((JPEGDL, control), (control, BASELINE))
        if not d.empty and not d[(d["arm"] == x) & (d["partner"] == y)].empty
    ]
    columns = [("", fmt.eps_header(norm))] + [("Robust accuracy (%)", arm_display(x)) for x in arms]
    for x, y in pairs:
        columns += [(diff_name(x, y), _delta_header(seeds)), (diff_name(x, y), "p (Holm)")]
    rows = []
    for eps in _eps_rows([a[a["arm"].isin(arms)]]):
        row = [_eps_cell(eps)]
        for x in arms:
            hit = a[(a["arm"] == x) & (a["eps_key"] == eps)]
            row.append(_acc_text(hit.iloc[0], seeds) if not hit.empty else fmt.DASH)
        for x, y in pairs:
            hit = d[(d["arm"] == x) & (d["partner"] == y) & (d["eps_key"] == eps)]
            row += [_diff_text(hit.iloc[0]), _p_text(hit.iloc[0])] if not hit.empty else [fmt.DASH, fmt.DASH]
        rows.append(row)
    notes = [
        "Worst case over every attack run on each arm, as in the headline table. "
        + stats_note(sizes.get((model, norm, f"control {control}"))),
        "\u0394 [95% CI] in percentage points on the same images; 'p (Holm)' gives the raw p and, in brackets, "
        "the Holm-adjusted one.",
        seeds_note(seeds),
    ]
    return ReportTable(
        key=f"{model}-{norm}-control-{control}",
        title=f"{model}, {fmt.norm_text(norm)}: JPEG-DL against the control {arm_display(control)}",
        caption=f"{model}, {fmt.norm_text(norm)}: worst-case robust accuracy, JPEG-DL vs {arm_display(control)}.",
        columns=columns,
        rows=rows,
        notes=notes,
        latex_notes=[
            "Worst case over every attack run on each arm; \u0394 [95% CI] in points on the "
            "same images; p with its Holm adjustment in brackets. "
            + short_stats_note(sizes.get((model, norm, f"control {control}")))
            + " "
            + short_seeds_note(seeds)
        ],
        units=[[i] for i in range(1, 1 + len(arms))]
        + [[1 + len(arms) + 2 * k, 2 + len(arms) + 2 * k] for k in range(len(pairs))],
        family=f"control {control}",
    )


def _delta_header(seeds: int) -> str:
    return "\u0394 (mean \u00b1 std)" if seeds > 1 else "\u0394 [95% CI]"


# --- one attack setting --------------------------------------------------------------------------------------------


def variant(label: str, base: str) -> str:
    """What distinguishes a column inside one setting: ``bpda-hard``, ``transfer from baseline``, ``alpha 1``."""
    alpha = re.search(r" \[eval alpha ([^\]]+)\]$", str(label))
    core = strip_alpha(label)
    extra = core[len(base) :].strip() if core.startswith(base) else core
    if extra.startswith("(") and ")" in extra:
        grad, rest = extra[1:].split(")", 1)
        extra = (grad + rest).strip()
    if alpha:
        extra = (extra + ", " if extra else "") + f"scored at alpha {alpha.group(1)}"
    return extra


def setting_table(
    key: str,
    title: str,
    caption: str,
    a: pd.DataFrame,
    d: pd.DataFrame,
    norm: str,
    base: str,
    notes: list[str],
    family: str | None = None,
    latex_notes: list[str] | None = None,
) -> ReportTable:
    """Rows eps; accuracy columns grouped by arm (one per gradient mode / transfer source), then per difference a
    ``Δ [95% CI]`` and a ``p (Holm)`` column. ``a``/``d``: the accuracy and difference rows of this setting."""
    seeds = int(a["seeds"].max()) if not a.empty else 1
    acc_cols = sorted({(r.arm, r.label) for r in a.itertuples()}, key=lambda k: (arm_order(k[0]), label_order(k[1])))
    per_arm = {arm: [lab for x, lab in acc_cols if x == arm] for arm, _ in acc_cols}
    flat = all(len(v) == 1 and not variant(v[0], base) for v in per_arm.values())
    columns = [("", fmt.eps_header(norm))]
    units = []
    for arm, labels in per_arm.items():
        start = len(columns)
        for lab in labels:
            columns.append(
                ("Accuracy (%)", arm_display(arm)) if flat else (arm_display(arm), variant(lab, base) or "white-box")
            )
        units.append(list(range(start, len(columns))))
    diff_cols = (
        sorted(
            {(r.arm, r.partner, r.label) for r in d.itertuples()},
            key=lambda k: (arm_order(k[0]), arm_order(k[1]), label_order(k[2])),
        )
        if not d.empty
        else []
    )
    for arm, partner, lab in diff_cols:
        extra = variant(lab, base)
        group = diff_name(arm, partner) + (f" ({extra})" if extra else "")
        columns += [(group, _delta_header(seeds)), (group, "p (Holm)")]
        units.append([len(columns) - 2, len(columns) - 1])
    rows = []
    for eps in _eps_rows([a, d]):
        row = [_eps_cell(eps)]
        for arm, lab in acc_cols:
            hit = a[(a["arm"] == arm) & (a["label"] == lab) & (a["eps_key"] == eps)]
            row.append(_acc_text(hit.iloc[0], seeds) if not hit.empty else fmt.DASH)
        for arm, partner, lab in diff_cols:
            hit = d[(d["arm"] == arm) & (d["partner"] == partner) & (d["label"] == lab) & (d["eps_key"] == eps)]
            row += [_diff_text(hit.iloc[0]), _p_text(hit.iloc[0])] if not hit.empty else [fmt.DASH, fmt.DASH]
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
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "table"
