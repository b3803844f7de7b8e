"""The headline table (worst case over every attack, JPEG-DL vs baseline, with the paper's claim labelled as the
paper's) and one table per control arm."""

from __future__ import annotations

import pandas as pd

from ..runfolder import BASELINE, JPEGDL, arm_display
from . import fmt
from .cells import WORST, select_rows
from .compare import diff_name
from .paper import COLUMN, PAPER_CLAIM_LATEX, PAPER_CLAIM_NOTE, paper_claim
from .views import (
    ReportTable,
    acc_text,
    delta_header,
    diff_text,
    eps_cell,
    eps_rows,
    p_text,
    pooled_interval_text,
    pooled_text,
    seeds_note,
    short_seeds_note,
    short_stats_note,
    stats_note,
)


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


def _common_images(d: pd.DataFrame) -> dict[float, int]:
    """eps -> the number of first test images both arms' worst cases cover there (the paired difference's n)."""
    return {} if d.empty else {float(e): int(n) for e, n in zip(d["eps_key"], d["n_min"], strict=True)}


def _accuracies(eps: float, frames: tuple[pd.DataFrame, pd.DataFrame], d: pd.DataFrame, seeds: int) -> list[str]:
    """Partner and arm accuracy at ``eps``: from the paired difference (the images both cover) when there is one,
    else each arm's own worst case."""
    hit = d[d["eps_key"] == eps] if not d.empty else d
    if not hit.empty:
        r = hit.iloc[0]
        return [
            acc_text({"mean": r[f"{side}_mean"], "std": r[f"{side}_std"], "seeds": r["seeds"]}, seeds)
            for side in ("acc_partner", "acc_arm")
        ]
    out = []
    for frame in frames:
        own = frame[frame["eps_key"] == eps]
        out.append(acc_text(own.iloc[0], seeds) if not own.empty else fmt.DASH)
    return out


def _headline_columns(norm: str, name: str, partner: str, arm: str, seeds: int, claims: bool) -> list[tuple[str, str]]:
    """The headline's columns: eps, both arms' robust accuracy, the difference's statistics, the paper's claim."""
    if seeds > 1:
        stats = ("\u0394 (mean \u00b1 std)", "p per seed (Holm)", "pooled 95% CI", "pooled p (Holm)")
    else:
        stats = ("\u0394", "95% CI", "p", "p (Holm)")
    columns = [
        ("", fmt.eps_header(norm)),
        ("Robust accuracy (%)", arm_display(partner)),
        ("Robust accuracy (%)", arm_display(arm)),
        *[(f"{name} (points)", text) for text in stats],
    ]
    return columns + ([(COLUMN, "claimed gain")] if claims else [])


def _difference_cells(hit: pd.DataFrame, seeds: int) -> list[str]:
    """The difference's cells at one eps: mean (or mean ± std), interval, raw p and Holm p (per seed), and with
    several seeds the test pooled over them."""
    if hit.empty:
        return [fmt.DASH] * 4
    r = hit.iloc[0]
    if seeds > 1:
        per_seed = ", ".join(map(fmt.pvalue, r["p_all"])) + " (" + ", ".join(map(fmt.pvalue, r["holm_all"])) + ")"
        return [diff_text(r), per_seed, pooled_interval_text(r), pooled_text(r)]
    return [
        fmt.signed(r["mean"]),
        fmt.interval(r["ci_low"], r["ci_high"]),
        fmt.pvalue(r["p_mcnemar"]),
        fmt.pvalue(r["p_holm"]),
    ]


def _headline_notes(
    name: str, attacks: list[str], n: list[int], stats: str, seeds: int, latex_stats: str
) -> tuple[list[str], list[str]]:
    """The notes under the headline (HTML/Markdown) and their short LaTeX form."""
    run = ", ".join(attacks) or "none"
    images = "/".join(map(str, n))
    notes = [
        f"Robust accuracy under the worst case over every attack run ({run}): an image "
        "counts as robust at eps only if no attack at that eps or any smaller one broke it. Only the attacks run; "
        "stronger ones could lower either arm.",
        f"On the first {images} test images (test-set order), the images every attack covered; eps 0 "
        "is the clean accuracy on those images.",
        f"\u0394 = {name}, in percentage points on the same images. " + stats,
        seeds_note(seeds),
    ]
    latex_notes = [
        f"Worst case over every attack run ({run}): an image is robust at eps only if no "
        f"attack at eps or below broke it; first {images} test images; eps 0: clean accuracy. "
        f"\u0394: {name} in points on the same images. " + latex_stats + " " + short_seeds_note(seeds)
    ]
    return notes, latex_notes


def _dagger_note(arm: str) -> str:
    return (
        f"\u2020 No adaptive attack (BPDA, surrogate, transfer) was run against {arm_display(arm)} at this radius: "
        "its worst case there holds adaptive attacks only from smaller radii, so it may still be inflated by "
        "gradient masking."
    )


def _claim_latex(norm: str, eps_values: list[float]) -> str:
    return (
        "Not our measurement: the paper reports "
        + "; ".join(f"{claim} at eps {_eps_span(eps)}" for claim, eps in _claim_spans(norm, eps_values))
        + f" ({PAPER_CLAIM_LATEX})."
    )


def headline_table(
    acc: pd.DataFrame,
    dif: pd.DataFrame,
    model: str,
    norm: str,
    arm: str,
    partner: str,
    sizes: dict,
    attacks: list[str],
    unchecked: set[float] = frozenset(),
) -> ReportTable | None:
    """Rows eps; robust accuracy of both arms under the worst case over every attack, their difference with its
    interval, raw and Holm p-values, and (JPEG-DL vs baseline, L-inf) the paper's claim, labelled as the paper's.
    Radii in ``unchecked`` (no adaptive attack against ``arm`` there) are marked with a dagger and a note."""
    a = select_rows(acc, model=model, norm=norm, label=WORST, trained_alpha=True)
    d = select_rows(dif, model=model, norm=norm, label=WORST, arm=arm, partner=partner)
    mine, theirs = a[a["arm"] == arm], a[a["arm"] == partner]
    if mine.empty or theirs.empty:
        return None
    seeds = int(a["seeds"].max())
    name = diff_name(arm, partner)
    claims = (arm, partner) == (JPEGDL, BASELINE) and any(paper_claim(norm, e) for e in eps_rows([mine]))
    columns = _headline_columns(norm, name, partner, arm, seeds, claims)
    common = _common_images(d)
    n = sorted(set(common.values())) or sorted({int(v) for v in pd.concat([mine["n_min"], theirs["n_min"]])})
    rows = []
    for eps in eps_rows([mine, theirs]):
        where = f" (n = {common[eps]})" if len(n) > 1 and eps in common else ""
        row = [eps_cell(eps) + where + (" \u2020" if eps in unchecked else "")]
        row += _accuracies(eps, (theirs, mine), d, seeds)
        row += _difference_cells(d[d["eps_key"] == eps] if not d.empty else d, seeds)
        rows.append(row + ([paper_claim(norm, eps) or ""] if claims else []))
    family = "headline" if (arm, partner) == (JPEGDL, BASELINE) else f"control {arm}"
    size = sizes.get((model, norm, family))
    notes, latex_notes = _headline_notes(name, attacks, n, stats_note(size), seeds, short_stats_note(size))
    if any(e in unchecked for e in eps_rows([mine, theirs])):
        notes.append(_dagger_note(arm))
        latex_notes.append(_dagger_note(arm))
    if claims:
        notes.append(PAPER_CLAIM_NOTE)
        latex_notes.append(_claim_latex(norm, eps_rows([mine])))
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
    acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, control: str, sizes: dict, attacks: list[str]
) -> ReportTable | None:
    """Worst case over every attack: the control arm, JPEG-DL, JPEG-DL - control and control - baseline, on the
    training seeds the control was trained for (JPEG-DL's accuracy beside it is on those seeds and images too)."""
    a = select_rows(acc, model=model, norm=norm, label=WORST, trained_alpha=True)
    d = select_rows(dif, model=model, norm=norm, label=WORST, family=f"control {control}")
    arms = [x for x in (control, JPEGDL) if not a[a["arm"] == x].empty]
    if control not in arms:
        return None
    all_seeds = int(a["seeds"].max())
    seeds = int(d["seeds"].max()) if not d.empty else int(a[a["arm"] == control]["seeds"].max())
    pairs = [
        (x, y)
        for x, y in ((JPEGDL, control), (control, BASELINE))
        if not d.empty and not d[(d["arm"] == x) & (d["partner"] == y)].empty
    ]
    versus = d[(d["arm"] == JPEGDL) & (d["partner"] == control)] if not d.empty else d
    columns = [("", fmt.eps_header(norm))] + [("Robust accuracy (%)", arm_display(x)) for x in arms]
    for x, y in pairs:
        columns += [(diff_name(x, y), delta_header(seeds)), (diff_name(x, y), "p (Holm)")]
    rows = []
    for eps in eps_rows([a[a["arm"].isin(arms)]]):
        row = [eps_cell(eps)]
        row += _accuracies(eps, tuple(a[a["arm"] == x] for x in (control, JPEGDL)), versus, seeds)[: len(arms)]
        for x, y in pairs:
            hit = d[(d["arm"] == x) & (d["partner"] == y) & (d["eps_key"] == eps)]
            row += [diff_text(hit.iloc[0]), p_text(hit.iloc[0])] if not hit.empty else [fmt.DASH, fmt.DASH]
        rows.append(row)
    notes = [
        f"Worst case over every attack run on each arm ({', '.join(attacks) or 'none'}), as in the headline table. "
        + stats_note(sizes.get((model, norm, f"control {control}"))),
        "\u0394 [95% CI] in percentage points on the same images; 'p (Holm)' gives the raw p and, in brackets, "
        "the Holm-adjusted one.",
        seeds_note(seeds),
    ]
    if seeds < all_seeds:
        notes.append(_fewer_seeds_note(control, seeds, all_seeds))
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
            + (" " + _fewer_seeds_note(control, seeds, all_seeds) if seeds < all_seeds else "")
        ],
        units=[[i] for i in range(1, 1 + len(arms))]
        + [[1 + len(arms) + 2 * k, 2 + len(arms) + 2 * k] for k in range(len(pairs))],
        family=f"control {control}",
    )


def _fewer_seeds_note(control: str, seeds: int, all_seeds: int) -> str:
    trained = fmt.counted(seeds, "training seed")
    return (
        f"{arm_display(control)} was trained on {trained} of the {all_seeds}: every number here, JPEG-DL's "
        f"included, is on {'that seed' if seeds == 1 else 'those seeds'} and the images both arms cover (the "
        f"headline averages all {all_seeds})."
    )
