"""The per-attack tables, the worst-case tiers, the evaluation-time-alpha tables and the sanity radii, per model and
threat model (built from :func:`.views.setting_table`)."""

from __future__ import annotations

import math

import pandas as pd

from ..evaluation import LARGE_EPS
from ..runfolder import BASELINE, arm_display, arm_order
from . import fmt
from .cells import WORST, select_rows
from .tables import rank_of
from .views import (
    ReportTable,
    safe_key,
    seeds_note,
    setting_table,
    short_seeds_note,
    short_stats_note,
    split_table,
    stats_note,
)

FIGURE_LIMIT = {"linf": 16.0, "l2": LARGE_EPS["l2"]}  # larger radii are sanity checks, not informative


def informative(norm: str, eps_key: float) -> bool:
    """Whether a radius belongs in the figures (L-inf up to 16/255; L2 below the large-radius check)."""
    limit = FIGURE_LIMIT.get(norm, math.inf)
    return eps_key <= limit if norm == "linf" else eps_key < limit


def _latex_notes(a: pd.DataFrame, family_size: int | None, has_diffs: bool) -> list[str]:
    """Short notes for a paper: images, eps 0, the statistics, seeds."""
    n = sorted({int(v) for v in a["n_min"]} | {int(v) for v in a["n_max"]})
    text = f"Accuracy (%) on the first {'/'.join(map(str, n))} test images; eps 0: clean accuracy."
    if has_diffs:
        text += " \u0394 [95% CI]: paired difference in points; p with its Holm adjustment in brackets. "
        text += short_stats_note(family_size)
    return [text + " " + short_seeds_note(int(a["seeds"].max()))]


def _notes(a: pd.DataFrame, family_size: int | None, has_diffs: bool) -> list[str]:
    n = sorted({int(v) for v in a["n_min"]} | {int(v) for v in a["n_max"]})
    notes = [
        f"Accuracy in % on the first {'/'.join(map(str, n))} test images (test-set order); eps 0 = clean "
        "accuracy on the images of that column."
    ]
    if has_diffs:
        notes.append(
            "\u0394 [95% CI]: paired difference in percentage points on the first images common to both "
            "cells; 'p (Holm)': the raw p and, in brackets, the Holm-adjusted one. " + stats_note(family_size)
        )
    grads = " ".join(a["label"].astype(str))
    if "(bpda" in grads or "(surrogate)" in grads or "bpda" in " ".join(a.get("grad", pd.Series(dtype=str))):
        notes.append(
            "soft = gradients through the soft quantizer; bpda = the deployed forward with an identity "
            "backward; bpda-hard = hard rounding forward, identity backward; surrogate = a softer quantizer's "
            "gradient. An arm without a JPEG layer has one white-box column, the partner of every mode."
        )
    if a["transfer"].astype(bool).any():
        notes.append("transfer from X: adversarial examples crafted on arm X and evaluated on this arm (not paired).")
    notes.append(seeds_note(int(a["seeds"].max())))
    return notes


def attack_tables(
    acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, sizes: dict, chain_steps: bool = False
) -> list[ReportTable]:
    """One table per attack setting (ordinary cells only), split where too wide: the attacks and whole chains, or
    with ``chain_steps`` the cumulative steps of each chain before its last (where its images were broken)."""
    a = select_rows(acc, model=model, norm=norm)
    a = a[a["eval_alpha"].isna() & (a["kind"] != "worst") & (a["followed"].astype(bool) == chain_steps)]
    d = select_rows(dif, model=model, norm=norm)
    out = []
    for base in sorted(set(a["pair"]), key=rank_of(a, "pair_base").get):
        mine = a[a["pair"] == base]
        family = f"attack {base}"
        diffs = d[d["family"] == family] if not d.empty else d
        table = setting_table(
            key=f"{safe_key(model)}-{norm}-{safe_key(base)}",
            title=f"{base} ({fmt.norm_text(norm)})",
            caption=f"{model}, {fmt.norm_text(norm)}: accuracy (%) under {base}.",
            a=mine,
            d=diffs,
            norm=norm,
            notes=_notes(mine, sizes.get((model, norm, family)), not diffs.empty),
            family=family,
            latex_notes=_latex_notes(mine, sizes.get((model, norm, family)), not diffs.empty),
        )
        out += split_table(table)
    return out


def tier_tables(acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, sizes: dict) -> list[ReportTable]:
    """The worst cases over the attacks run on at least N images (larger tiers trade attacks for images)."""
    a = select_rows(acc, model=model, norm=norm)
    a = a[a["eval_alpha"].isna() & (a["kind"] == "worst") & (a["label"] != WORST)]
    if a.empty:
        return []
    d = select_rows(dif, model=model, norm=norm, family="worst-case tiers")
    out = []
    tiers = a.groupby("label")["n_max"].max()  # a tier's label names the images it covers: its n
    for label in sorted(set(a["label"]), key=lambda lab: (int(tiers[lab]), lab)):
        notes = [
            f"'{label}': the per-image worst case over only the attacks that covered at least those images; it "
            "leaves out the attacks run on fewer images, so it is higher than (or equal to) the worst case over "
            "every attack.",
            *_notes(a[a["label"] == label], sizes.get((model, norm, "worst-case tiers")), not d.empty),
        ]
        out += split_table(
            setting_table(
                key=f"{safe_key(model)}-{norm}-{safe_key(label)}",
                title=f"{label} ({fmt.norm_text(norm)})",
                caption=f"{model}, {fmt.norm_text(norm)}: {label}.",
                a=a[a["label"] == label],
                d=d[d["label"] == label] if not d.empty else d,
                norm=norm,
                notes=notes,
                family="worst-case tiers",
                latex_notes=["Worst case over the attacks run on at least the images shown."]
                + _latex_notes(a[a["label"] == label], sizes.get((model, norm, "worst-case tiers")), not d.empty),
            )
        )
    return out


def eval_alphas(acc: pd.DataFrame) -> list[float]:
    return sorted({float(x) for x in acc["eval_alpha"].dropna()})


def alpha_tables(
    acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, alpha: float, sizes: dict
) -> list[ReportTable]:
    """The cells scored with evaluation-time alpha ``alpha``, per attack setting, beside the same setting's ordinary
    cells (the corrected protocol), and the worst case over the attacks scored with that alpha."""
    a = select_rows(acc, model=model, norm=norm)
    scored = a[a["eval_alpha"] == alpha]
    if scored.empty:
        return []
    d = select_rows(dif, model=model, norm=norm)
    prefix = f"eval alpha {alpha:g} "
    out = []
    settings = set(scored.loc[scored["kind"] != "worst", "pair_base"])
    for base in sorted(settings, key=rank_of(scored, "pair_base").get):
        alpha_arms = {BASELINE, *scored["arm"]}  # the baseline and the arms scored at this alpha, corrected beside
        ordinary = a[a["eval_alpha"].isna() & (a["pair"] == base) & a["arm"].isin(alpha_arms)]
        mine = pd.concat([scored[scored["pair_base"] == base], ordinary])
        family = prefix + f"attack {base}"
        diffs = d[d["family"] == family] if not d.empty else d
        notes = [
            f"Columns 'scored at alpha {alpha:g}': the JPEG arms attacked and scored with soft-quantizer alpha "
            f"{alpha:g} instead of the alpha they were trained with, as the official robustness script does; the "
            "other columns are the same attack under the corrected protocol (the trained alpha).",
            *_notes(mine, sizes.get((model, norm, family)), not diffs.empty),
        ]
        out += split_table(
            setting_table(
                key=f"{safe_key(model)}-{norm}-alpha{safe_key(f'{alpha:g}')}-{safe_key(base)}",
                title=f"{base} ({fmt.norm_text(norm)}), scored at alpha {alpha:g}",
                caption=f"{model}, {fmt.norm_text(norm)}: {base}, JPEG arms scored at alpha {alpha:g}.",
                a=mine,
                d=diffs,
                norm=norm,
                notes=notes,
                family=family,
                latex_notes=[
                    f"JPEG arms scored at alpha {alpha:g} (the official script) beside the corrected protocol."
                ]
                + _latex_notes(mine, sizes.get((model, norm, family)), not diffs.empty),
            )
        )
    worst = scored[(scored["kind"] == "worst") & (scored["pair_base"] == WORST)]
    if not worst.empty:
        notes = [
            f"Worst case over the attacks scored at alpha {alpha:g} only (the official script's protocol); it "
            "is kept apart from the corrected worst case and not differenced against the baseline, whose worst "
            "case covers other attacks.",
            seeds_note(int(worst["seeds"].max())),
        ]
        out += split_table(
            setting_table(
                key=f"{safe_key(model)}-{norm}-alpha{safe_key(f'{alpha:g}')}-worst-case",
                title=f"Worst case over the attacks scored at alpha {alpha:g} ({fmt.norm_text(norm)})",
                caption=f"{model}, {fmt.norm_text(norm)}: worst case, JPEG arms scored at alpha {alpha:g}.",
                a=worst,
                d=worst.iloc[0:0],
                norm=norm,
                notes=notes,
            )
        )
    return out


def sanity_radii(acc: pd.DataFrame) -> pd.DataFrame:
    """Accuracy at the radii the figures leave out (beyond 16/255 L-inf, at least the large L2 check radius)."""
    a = acc[(acc["eps_key"] > 0) & acc["eval_alpha"].isna() & (acc["kind"] != "worst")]
    a = a[[not informative(nm, e) for nm, e in zip(a["norm"], a["eps_key"], strict=True)]]
    if a.empty:
        return pd.DataFrame()
    a = a.assign(
        _o=[
            (m, nm, e, arm_order(x), int(k))
            for m, nm, e, x, k in zip(a["model"], a["norm"], a["eps_key"], a["arm"], a["label_rank"], strict=True)
        ]
    )
    rows = [
        {
            "model": r.model,
            "threat model": fmt.norm_text(r.norm),
            "eps": fmt.eps_text(r.eps_key) + fmt.eps_unit(r.norm).replace(" ", ""),
            "arm": arm_display(r.arm),
            "attack": r.label,
            "accuracy (%)": fmt.mean_pm(r.mean, r.std, int(r.seeds)),
            "n": str(r.n_min),
        }
        for r in a.sort_values("_o").itertuples()
    ]
    return pd.DataFrame(rows)


def attack_list(acc: pd.DataFrame, model: str, norm: str, arms: tuple[str, ...]) -> list[str]:
    """The attack settings the all-attacks worst case of ``arms`` covers (ordinary cells). A setting run on some of
    the arms only, or on fewer training seeds than the worst case spans, says so (``FGSM (JPEG-DL only)``,
    ``FGSM (on 1 of 3 seeds)``): the worst cases compared then differ in it. A chain is named once, whole (its
    cumulative steps before the last are part of it)."""
    a = select_rows(acc, model=model, norm=norm)
    a = a[a["arm"].isin(arms) & (a["kind"] == "attack") & a["eval_alpha"].isna() & ~a["followed"].astype(bool)]
    if a.empty:
        return []
    seeds, most = a.groupby("pair")["seeds"].max(), int(a["seeds"].max())
    covered = a.groupby("pair")["arm"].agg(set)
    out = []
    for pair in sorted(set(a["pair"]), key=rank_of(a, "pair_base").get):
        only = sorted(covered[pair], key=arm_order) if covered[pair] != set(arms) else []
        caveats = ([" and ".join(map(arm_display, only)) + " only"] if only else []) + (
            [f"on {seeds[pair]} of {most} seeds"] if seeds[pair] < most else []
        )
        out.append(str(pair) + (f" ({'; '.join(caveats)})" if caveats else ""))
    return out
    if a.empty:
        return []
    seeds, most = a.groupby("pair")["seeds"].max(), int(a["seeds"].max())
    return [
        str(p) + (f" (on {seeds[p]} of {most} seeds)" if seeds[p] < most else "")
        for p in sorted(set(a["pair"]), key=rank_of(a, "pair_base").get)
    ]
