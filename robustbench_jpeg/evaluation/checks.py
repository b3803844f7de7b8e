"""Sanity checks over attack results: do the numbers behave like a sound attack on an unmasked model?

Every check compares cells **per image** on the images two cells share, whatever their n, steps or seeds
(:mod:`.comparison`), with the exact McNemar p-values Holm-adjusted over the comparisons of that one check, so that
each check's family-wise error rate is at most 5%. A violation significant after Holm fails the check; a violation
that is not significant, or a comparison that could not have failed (too few images), makes it *inconclusive*; a
check with nothing to compare warns, and one whose cells attacked nothing (no clean-correct image) says so (``skip``
only where the check does not apply, e.g. adaptive attacks on an arm without a quantizer). docs/attacks.md explains
every check; :mod:`.verdict` turns them into one verdict. The checks are a pure function of the results rows and
their per-image vectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..runfolder import arm_order
from ..runfolder.cell import MethodKind
from .check_record import MEANINGS, NOTHING_ATTACKED_TEXT, Check, CheckStatus
from .comparison import (
    ALPHA,
    Comparison,
    Outcome,
    attack_cells,
    compare,
    compare_cells,
    judge,
    paired_comparisons,
    tolerance,
)
from .thresholds import (
    CARD_TOLERANCE,
    LARGE_EPS,
    LARGE_SURVIVAL,
    ZERO_GRAD_MAX_FRACTION,
    check_clean_matches_card,
    check_large_eps_near_zero,
    check_zero_input_gradients,
)

__all__ = [
    "Check",
    "CheckStatus",
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
    "run_checks",
]

ADAPTIVE_GRADS = ("bpda", "bpda-hard", "surrogate", "surrogate-hard")
RULE = f"tolerance max(1/m, 0.5%); exact McNemar, Holm over the check's comparisons at {ALPHA:g}; each could fail"


def _arms(df: pd.DataFrame, extra: Iterable[str] = ()) -> list[str]:
    arms = set(extra) | (set(df["arm"].astype(str)) if df is not None and not df.empty else set())
    return sorted(arms, key=arm_order)


def _listed(comparisons: list[Comparison]) -> str:
    shown = "; ".join(c.text() for c in comparisons[:4])
    return shown + (f" ({len(comparisons)} in all)" if len(comparisons) > 4 else "")


def _summarise(name: str, arm: str, comparisons: list[Comparison], what: str) -> Check:
    """One check's status from its comparisons, judged together (Holm within the check)."""
    if not comparisons:
        return Check(name, arm, CheckStatus.WARN, f"could not compare anything: no {what}", MEANINGS[name])
    judged = judge(comparisons)
    k = len(judged)
    if all(c.attackable == 0 for c in judged):
        return Check(name, arm, CheckStatus.NOTHING_ATTACKED, NOTHING_ATTACKED_TEXT, MEANINGS[name], (), k)
    by = {o: [c for c in judged if c.outcome is o] for o in Outcome}
    evidence = tuple(c.as_dict() for c in judged if c.outcome is not Outcome.HOLDS)
    bad, unclear, weak = by[Outcome.VIOLATED], by[Outcome.NOT_SIGNIFICANT], by[Outcome.NO_POWER]
    if bad:
        detail = f"{len(bad)} of {k} comparisons violate significantly (Holm over {k}): {_listed(bad)}"
        return Check(name, arm, CheckStatus.FAIL, detail, MEANINGS[name], evidence, k)
    parts = []
    if unclear:
        parts.append(
            f"{len(unclear)} of {k} comparisons exceed the tolerance but not significantly (Holm-adjusted p >= "
            f"{ALPHA:g} over {k}): {_listed(unclear)}"
        )
    if weak:
        fewest = min(c.attackable for c in weak)
        parts.append(
            f"{len(weak)} of {k} comparisons could not have failed (as few as {fewest} images that could be broken: "
            f"even all of them the wrong way would not be a violation significant after Holm over {k}): "
            f"{_listed(weak)}"
        )
    if parts:
        return Check(name, arm, CheckStatus.INCONCLUSIVE, "; ".join(parts), MEANINGS[name], evidence, k)
    detail = f"{k} comparisons hold on common images ({RULE})"
    return Check(name, arm, CheckStatus.PASS, detail, MEANINGS[name], (), k)


# --- the checks ----------------------------------------------------------------------------------------------------


def _groups_differing_only_in(cells: pd.DataFrame, *fields: str) -> list[pd.DataFrame]:
    """The cells grouped by everything of their setting but ``fields`` (:meth:`Setting.same_except`)."""
    if cells.empty:
        return []
    keys = [repr(s.same_except(*fields)) for s in cells["_setting"]]
    return [group for _, group in cells.groupby(keys, sort=False)]


def check_monotone_in_eps(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """Per attack setting (all but eps, n and seed), the cell at a larger eps is at least as strong. Cells of a
    radius cascade are left out: they are monotone by construction, so comparing them could not fail."""
    sub = cells[(cells["arm"] == arm) & ~cells["_cascade"]]
    comps: list[Comparison] = []
    for group in _groups_differing_only_in(sub, "eps"):
        comps += paired_comparisons(group, samples, lambda s, w: s["_eps"] > w["_eps"])
    return _summarise("monotone_in_eps", arm, comps, "attack setting run at two or more radii outside a radius cascade")


def check_pgd_not_weaker_than_fgsm(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """At equal eps, gradient mode and source, every untargeted iterative cell is at least as strong as FGSM."""
    sub = cells[(cells["arm"] == arm) & (cells["norm"] == "linf") & ~cells["_chained"]]
    comps: list[Comparison] = []
    for _, group in sub.groupby(["_eps", "grad", "source_arm", "_alpha", "_cascade"]):
        fgsm = group[group["_kind"] == MethodKind.SINGLE_STEP]
        iterative = group[group["_kind"] == MethodKind.ITERATIVE]
        comps += [compare_cells(p, f, samples) for _, p in iterative.iterrows() for _, f in fgsm.iterrows()]
    return _summarise("pgd_not_weaker_than_fgsm", arm, comps, "PGD/APGD and FGSM cells at equal eps")


def check_more_iterations_not_weaker(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """Cells differing only in steps and/or restarts: more of either is at least as strong."""
    sub = cells[(cells["arm"] == arm) & ~cells["_chained"]]
    comps: list[Comparison] = []
    for group in _groups_differing_only_in(sub, "steps", "restarts"):
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
                CheckStatus.WARN,
                "no adaptive attack (BPDA, surrogate or transfer) was run against this "
                "arm: its white-box numbers are unchecked for gradient masking",
                MEANINGS[name],
            )
        return Check(
            name, arm, CheckStatus.SKIP, "no quantizer and no transfer attack: nothing to check", MEANINGS[name]
        )
    comps = []
    for _, a in adaptive.iterrows():
        peers = white[
            (white["norm"] == a["norm"])
            & (white["_eps"] == a["_eps"])
            & (white["_alpha"] == a["_alpha"])
            & (white["_budget"] >= a["_budget"])
            & (white["_cascade"] == a["_cascade"])
        ]
        comps += [compare_cells(w, a, samples) for _, w in peers.iterrows()]
    return _summarise(name, arm, comps, "white-box cell with at least the budget of an adaptive cell at its eps")


def check_square_not_stronger(
    cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str, has_quantizer: bool
) -> Check:
    """Square against the white-box gradient cells at equal eps; chained Square against the chain before it."""
    name = "square_not_stronger"
    sub = cells[cells["arm"] == arm]
    square = sub[~sub["_gradient"]]
    if square.empty:
        status = CheckStatus.WARN if has_quantizer else CheckStatus.SKIP
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
                comps.append(_against_the_chain_before(s, by_id, samples))
            continue
        peers = white[
            (white["norm"] == s["norm"])
            & (white["_eps"] == s["_eps"])
            & (white["_alpha"] == s["_alpha"])
            & (white["_cascade"] == s["_cascade"])
        ]
        comps += [compare_cells(w, s, samples) for _, w in peers.iterrows()]
    return _summarise(name, arm, comps, "white-box gradient cell at the eps of a Square cell")


def _against_the_chain_before(square: pd.Series, by_id: pd.DataFrame, samples: Mapping[str, np.ndarray]) -> Comparison:
    """A chained Square cell against what it attacked: the chain before it at its eps and, in a radius cascade, also
    the chain at the radius below (the images Square never saw there)."""
    prev = by_id.loc[square["after"]]
    vector, label = samples[square["after"]], f"the attacks before it ({prev['_label']})"
    if square["below"] and square["below"] in samples:
        vector = vector[: samples[square["below"]].size] & samples[square["below"]][: vector.size]
        label = f"the attacks before it and the chain at the radius below ({prev['_label']})"
    before = {**prev.to_dict(), "cell_id": "_before", "_label": label}
    return compare_cells(before, square, {**samples, "_before": vector})


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


def _with_clean_vectors(cells: pd.DataFrame, df: pd.DataFrame, samples: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``_attackable`` bounded by the arm's clean cell (same eval alpha), where one covers the attack cell's images:
    only images classified correctly can be attacked."""
    if cells.empty or "attack" not in df:
        return cells
    clean = df[(df["attack"] == "clean") & df["cell_id"].astype(str).isin(samples.keys())]
    if clean.empty:
        return cells
    alpha = clean["eval_alpha"].astype(float).fillna(-1.0) if "eval_alpha" in clean else pd.Series(-1.0, clean.index)
    vectors = {}
    for r, a in zip(clean.itertuples(index=False), alpha, strict=True):
        vec = np.asarray(samples[r.cell_id], dtype=bool)
        if vec.size > vectors.get((r.arm, a), np.zeros(0)).size:
            vectors[(r.arm, a)] = vec
    cells = cells.copy()
    bounds = []
    for arm, a, n, known in zip(cells["arm"], cells["_alpha"], cells["n"], cells["_attackable"], strict=True):
        vec = vectors.get((arm, a))
        bounds.append(min(int(known), int(vec[: int(n)].sum())) if vec is not None and vec.size >= n else known)
    cells["_attackable"] = bounds
    return cells


def _comparison_checks(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str, q: bool) -> list[Check]:
    """The six checks that compare attack cells, for one arm."""
    mine = cells[cells["arm"] == arm] if not cells.empty else cells
    if mine.empty:
        text = "could not compare anything: no attack cell for this arm"
        return [Check(n, arm, CheckStatus.WARN, text, MEANINGS[n]) for n in CHECKS[:6]]
    if (mine["_attackable"] == 0).all():
        return [Check(n, arm, CheckStatus.NOTHING_ATTACKED, NOTHING_ATTACKED_TEXT, MEANINGS[n]) for n in CHECKS[:6]]
    return [
        check_monotone_in_eps(cells, samples, arm),
        check_pgd_not_weaker_than_fgsm(cells, samples, arm),
        check_large_eps_near_zero(cells, samples, arm),
        check_more_iterations_not_weaker(cells, samples, arm),
        check_adaptive_not_stronger(cells, samples, arm, q),
        check_square_not_stronger(cells, samples, arm, q),
    ]


def run_checks(
    df: pd.DataFrame,
    samples: Mapping[str, np.ndarray],
    diagnostics: Mapping[str, Any] | None = None,
    cards: Mapping[str, Mapping[str, Any]] | None = None,
    test_size: int | None = None,
    quantizer_arms: Iterable[str] = (),
) -> list[Check]:
    """Every check for every arm over the current rows of a run (``df``) and their per-sample vectors; what the
    checks need to know of each attack (its label, its kind) comes from the row's typed record."""
    df = df if df is not None else pd.DataFrame(columns=["arm", "attack"])
    cells = attack_cells(df)
    cells = cells[cells["cell_id"].astype(str).isin(samples.keys())] if not cells.empty else cells
    cells = _with_clean_vectors(cells, df, samples)
    quantizer = set(quantizer_arms)
    out: list[Check] = []
    for arm in _arms(df, (cards or {}).keys()):
        out += _comparison_checks(cells, samples, arm, arm in quantizer)
        out.append(check_zero_input_gradients(diagnostics, arm))
        if cards is not None and test_size:
            out.append(check_clean_matches_card(df, cards.get(arm), arm, test_size))
    return out
