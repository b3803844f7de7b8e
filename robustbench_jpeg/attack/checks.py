"""Sanity checks over attack results: do the numbers behave like a sound attack on an unmasked model?

Every check compares cells **per image** on the images two cells share, whatever their n, steps or seeds
(:mod:`.comparison`). A significant violation fails the check; a violation that could be noise makes it a warning;
a check with nothing to compare is a warning too (``skip`` only where the check does not apply, e.g. adaptive
attacks on an arm without a quantizer). docs/attacks.md explains every check; :mod:`.verdict` turns them into
one verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..run_format import arm_order
from .check_record import MEANINGS, Check
from .comparison import ALPHA, Comparison, attack_cells, compare, paired_comparisons, tolerance

__all__ = [
    "Check",
    "Comparison",
    "MEANINGS",
    "tolerance",
    "compare",
    "LARGE_EPS",
    "LARGE_SURVIVAL",
    "ZERO_GRAD_MAX_FRACTION",
    "CARD_TOLERANCE",
    "ALPHA",
    "attack_cells",
    "CHECKS",
]

LARGE_EPS = {"linf": 32 / 255, "l2": 4.0}
LARGE_SURVIVAL = 0.05  # at most this share of the clean-correct images may survive a huge radius
ZERO_GRAD_MAX_FRACTION = 0.10
CARD_TOLERANCE = 0.01
ADAPTIVE_GRADS = ("bpda", "bpda-hard", "surrogate", "surrogate-hard")


def _arms(df: pd.DataFrame, extra: Iterable[str] = ()) -> list[str]:
    arms = set(extra) | (set(df["arm"].astype(str)) if df is not None and not df.empty else set())
    return sorted(arms, key=arm_order)


def _summarise(name: str, arm: str, comparisons: list[Comparison], what: str) -> Check:
    evidence = tuple(c.as_dict() for c in comparisons if c.violated)
    if not comparisons:
        return Check(name, arm, "warn", f"could not compare anything: no {what}", MEANINGS[name])
    bad = [c for c in comparisons if c.significant]
    maybe = [c for c in comparisons if c.violated and not c.significant]
    shown = "; ".join(c.text() for c in (bad or maybe)[:4])
    more = f" ({len(bad or maybe)} in all)" if len(bad or maybe) > 4 else ""
    if bad:
        return Check(
            name,
            arm,
            "fail",
            f"{len(bad)} of {len(comparisons)} comparisons violate significantly: {shown}{more}",
            MEANINGS[name],
            evidence,
            len(comparisons),
        )
    if maybe:
        return Check(
            name,
            arm,
            "warn",
            f"{len(maybe)} of {len(comparisons)} comparisons exceed the tolerance but "
            f"not significantly (p >= {ALPHA}): {shown}{more}",
            MEANINGS[name],
            evidence,
            len(comparisons),
        )
    return Check(
        name,
        arm,
        "pass",
        f"{len(comparisons)} comparisons hold on common images (tolerance max(1/m, 0.5%), McNemar at 0.05)",
        MEANINGS[name],
        (),
        len(comparisons),
    )


# --- the checks ----------------------------------------------------------------------------------------------------


def check_monotone_in_eps(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """Per attack setting (all but eps, n and seed), the cell at a larger eps is at least as strong."""
    sub = cells[cells["arm"] == arm]
    keys = [
        "attack",
        "norm",
        "steps",
        "step_rule",
        "restarts",
        "random_start",
        "grad",
        "source_arm",
        "params",
        "_alpha",
        "_chained",
    ]
    comps: list[Comparison] = []
    for _, group in sub.groupby(keys, dropna=False):
        comps += paired_comparisons(group, samples, lambda s, w: s["_eps"] > w["_eps"])
    return _summarise("monotone_in_eps", arm, comps, "attack setting run at two or more radii")


def check_pgd_not_weaker_than_fgsm(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """At equal eps, gradient mode and source, every untargeted iterative cell is at least as strong as FGSM."""
    sub = cells[(cells["arm"] == arm) & (cells["norm"] == "linf") & ~cells["_chained"]]
    comps: list[Comparison] = []
    for _, group in sub.groupby(["_eps", "grad", "source_arm", "_alpha"]):
        fgsm = group[group["attack"] == "fgsm"]
        iterative = group[group["attack"].isin(["pgd", "apgd-ce", "apgd-dlr"])]
        comps += [
            compare(samples[p["cell_id"]], samples[f["cell_id"]], p["_label"], f["_label"])
            for _, p in iterative.iterrows()
            for _, f in fgsm.iterrows()
        ]
    return _summarise("pgd_not_weaker_than_fgsm", arm, comps, "PGD/APGD and FGSM cells at equal eps")


def check_more_iterations_not_weaker(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """Cells differing only in steps and/or restarts: more of either is at least as strong."""
    sub = cells[(cells["arm"] == arm) & ~cells["_chained"]]
    keys = ["attack", "norm", "_eps", "step_rule", "random_start", "grad", "source_arm", "params", "_alpha"]
    comps: list[Comparison] = []
    for _, group in sub.groupby(keys, dropna=False):
        comps += paired_comparisons(
            group,
            samples,
            lambda s, w: (
                s["steps"] >= w["steps"]
                and s["restarts"] >= w["restarts"]
                and (s["steps"], s["restarts"]) != (w["steps"], w["restarts"])
            ),
        )
    return _summarise("more_iterations_not_weaker", arm, comps, "cells differing only in steps or restarts")


def check_large_eps_near_zero(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """White-box gradient cells at a huge radius leave at most 5% of the clean-correct images robust."""
    name = "large_eps_near_zero"
    sub = cells[(cells["arm"] == arm) & (cells["source_arm"] == arm) & cells["_gradient"] & ~cells["_chained"]]
    sub = sub[[float(e) >= LARGE_EPS.get(nm, np.inf) - 1e-9 for e, nm in zip(sub["eps"], sub["norm"], strict=True)]]
    if sub.empty:
        return Check(
            name,
            arm,
            "warn",
            "could not compare anything: no white-box gradient attack at >= 32/255 "
            "(L-inf) or >= 4 (L2); the standard-linf spec has one",
            MEANINGS[name],
        )
    parts, failed, evidence = [], False, []
    for _, r in sub.iterrows():
        clean = int(r["n_clean_correct"])
        share = int(r["n_correct"]) / clean if clean else 0.0
        bad = clean > 0 and share > LARGE_SURVIVAL
        failed |= bad
        parts.append(
            f"{r['_label']}: {int(r['n_correct'])} of {clean} clean-correct images survive ({100 * share:.1f}%)"
        )
        if bad:
            evidence.append({"cell": r["_label"], "survivors": int(r["n_correct"]), "clean_correct": clean})
    if (sub["n_clean_correct"].astype(int) == 0).all():
        return Check(
            name,
            arm,
            "warn",
            "could not compare anything: no clean-correct image in the large-eps cells",
            MEANINGS[name],
        )
    return Check(
        name,
        arm,
        "fail" if failed else "pass",
        "; ".join(parts) + f" (at most {100 * LARGE_SURVIVAL:g}%)",
        MEANINGS[name],
        tuple(evidence),
        len(sub),
    )


def check_adaptive_not_stronger(
    cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str, has_quantizer: bool
) -> Check:
    """Every adaptive cell (BPDA, surrogate, transfer) against every white-box gradient cell of at least its budget
    at the same eps and norm: the adaptive one must not be significantly stronger."""
    name = "adaptive_not_stronger"
    sub = cells[(cells["arm"] == arm) & cells["_gradient"] & ~cells["_chained"]]
    adaptive = sub[sub["grad"].isin(ADAPTIVE_GRADS) | (sub["source_arm"] != arm)]
    white = sub[(sub["source_arm"] == arm) & sub["grad"].isin(["soft", "hard", "none"])]
    if adaptive.empty:
        if has_quantizer:
            return Check(
                name,
                arm,
                "warn",
                "no adaptive attack (BPDA, surrogate or transfer) was run against this "
                "arm: its white-box numbers are unchecked for gradient masking",
                MEANINGS[name],
            )
        return Check(name, arm, "skip", "no quantizer and no transfer attack: nothing to check", MEANINGS[name])
    comps = []
    for _, a in adaptive.iterrows():
        peers = white[
            (white["norm"] == a["norm"])
            & (white["_eps"] == a["_eps"])
            & (white["_alpha"] == a["_alpha"])
            & (white["_budget"] >= a["_budget"])
        ]
        comps += [
            compare(samples[w["cell_id"]], samples[a["cell_id"]], w["_label"], a["_label"]) for _, w in peers.iterrows()
        ]
    return _summarise(name, arm, comps, "white-box cell with at least the budget of an adaptive cell at its eps")


def check_square_not_stronger(
    cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str, has_quantizer: bool
) -> Check:
    """Square against the white-box gradient cells at equal eps; chained Square against the chain before it."""
    name = "square_not_stronger"
    sub = cells[cells["arm"] == arm]
    square = sub[~sub["_gradient"]]
    if square.empty:
        status = "warn" if has_quantizer else "skip"
        return Check(
            name,
            arm,
            status,
            "no gradient-free attack (Square) was run against this arm; the autoattack and square specs have one",
            MEANINGS[name],
        )
    white = sub[(sub["source_arm"] == arm) & sub["_gradient"] & ~sub["_chained"]]
    by_id = sub.set_index("cell_id")
    comps = []
    for _, s in square.iterrows():
        if s["after"]:
            if s["after"] in by_id.index:
                prev = by_id.loc[s["after"]]
                comps.append(
                    compare(
                        samples[s["after"]],
                        samples[s["cell_id"]],
                        f"the attacks before it ({prev['_label']})",
                        s["_label"],
                    )
                )
            continue
        peers = white[(white["norm"] == s["norm"]) & (white["_eps"] == s["_eps"]) & (white["_alpha"] == s["_alpha"])]
        comps += [
            compare(samples[w["cell_id"]], samples[s["cell_id"]], w["_label"], s["_label"]) for _, w in peers.iterrows()
        ]
    return _summarise(name, arm, comps, "white-box gradient cell at the eps of a Square cell")


def check_zero_input_gradients(diagnostics: Mapping[str, Any] | None, arm: str) -> Check:
    """Exact-zero input gradients on clean test images: in pixels, and at the quantizer's input (DCT coefficients,
    per channel and frequency band) for arms with a JPEG layer."""
    name = "zero_input_gradients"
    stats = (diagnostics or {}).get(arm, {}).get("gradients")
    if not stats:
        return Check(
            name, arm, "warn", "could not compare anything: no gradient statistics for this arm", MEANINGS[name]
        )
    pixel = float(stats["pixel_zero_fraction"])
    parts = [
        f"pixels: {100 * pixel:.2f}% of {int(stats['pixel_entries'])} gradient entries exactly zero on "
        f"{int(stats['n_images'])} clean test images"
    ]
    failed = pixel > ZERO_GRAD_MAX_FRACTION
    coeff = stats.get("coefficients")
    if coeff:
        overall = float(coeff["zero_fraction"])
        failed |= overall > ZERO_GRAD_MAX_FRACTION
        dead = [f"{band['channel']} {band['band']}" for band in coeff["bands"] if band["zero_fraction"] >= 1.0]
        failed |= bool(dead)
        worst = sorted(coeff["bands"], key=lambda b: -b["zero_fraction"])[:4]
        parts.append(
            f"DCT coefficients at the quantizer's input: {100 * overall:.2f}% exactly zero ("
            + ", ".join(f"{b['channel']} {b['band']} {100 * b['zero_fraction']:.0f}%" for b in worst)
            + ")"
        )
        if dead:
            parts.append(f"entirely zero: {', '.join(dead)}")
    detail = "; ".join(parts) + f" (fail above {100 * ZERO_GRAD_MAX_FRACTION:g}% or when a band is entirely zero)"
    return Check(name, arm, "fail" if failed else "pass", detail, MEANINGS[name], (), 1)


def check_clean_matches_card(df: pd.DataFrame, card: Mapping[str, Any] | None, arm: str, test_size: int) -> Check:
    """The clean cell over the whole test set matches the card's ``clean_top1`` within 1 point."""
    name = "clean_matches_card"
    card = card or {}
    top1 = card.get("clean_top1")
    clean = (
        df[(df["attack"] == "clean") & (df["arm"] == arm) & (df["n"].astype(int) == test_size)]
        if df is not None and not df.empty
        else pd.DataFrame()
    )
    if "eval_alpha" in clean:
        clean = clean[clean["eval_alpha"].isna()]
    if top1 is None:
        return Check(name, arm, "skip", "the card records no clean_top1", MEANINGS[name])
    if not card.get("finished", True):
        return Check(
            name, arm, "skip", "training unfinished: the checkpoint may be newer than clean_top1", MEANINGS[name]
        )
    if clean.empty:
        return Check(
            name,
            arm,
            "warn",
            f"could not compare anything: no clean cell over the whole test set ({test_size} images)",
            MEANINGS[name],
        )
    acc = float(clean.iloc[-1]["clean_acc"])
    status = "pass" if abs(acc - float(top1)) <= CARD_TOLERANCE else "fail"
    return Check(
        name,
        arm,
        status,
        f"sweep {100 * acc:.2f}% vs card {100 * float(top1):.2f}% on {test_size} images "
        f"(tolerance {100 * CARD_TOLERANCE:g} points)",
        MEANINGS[name],
        (),
        1,
    )


CHECKS = (
    "monotone_in_eps",
    "pgd_not_weaker_than_fgsm",
    "large_eps_near_zero",
    "more_iterations_not_weaker",
    "adaptive_not_stronger",
    "square_not_stronger",
    "zero_input_gradients",
    "clean_matches_card",
)


def run_checks(
    df: pd.DataFrame,
    samples: Mapping[str, np.ndarray],
    diagnostics: Mapping[str, Any] | None = None,
    cards: Mapping[str, Mapping[str, Any]] | None = None,
    test_size: int | None = None,
    quantizer_arms: Iterable[str] = (),
) -> list[Check]:
    """Every check for every arm over the current rows of a run (``df``) and their per-sample vectors."""
    df = df if df is not None else pd.DataFrame(columns=["arm", "attack"])
    cells = attack_cells(df)
    cells = cells[cells["cell_id"].astype(str).isin(samples.keys())] if not cells.empty else cells
    quantizer = set(quantizer_arms)
    out: list[Check] = []
    for arm in _arms(df, (cards or {}).keys()):
        q = arm in quantizer
        if cells.empty or (cells["arm"] != arm).all():
            out += [
                Check(n, arm, "warn", "could not compare anything: no attack cell for this arm", MEANINGS[n])
                for n in CHECKS[:6]
            ]
        else:
            out += [
                check_monotone_in_eps(cells, samples, arm),
                check_pgd_not_weaker_than_fgsm(cells, samples, arm),
                check_large_eps_near_zero(cells, samples, arm),
                check_more_iterations_not_weaker(cells, samples, arm),
                check_adaptive_not_stronger(cells, samples, arm, q),
                check_square_not_stronger(cells, samples, arm, q),
            ]
        out.append(check_zero_input_gradients(diagnostics, arm))
        if cards is not None and test_size:
            out.append(check_clean_matches_card(df, cards.get(arm), arm, test_size))
    return out
