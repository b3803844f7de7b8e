"""The worst case over every attack: per image, robust only if no attack at this radius or any smaller one broke it.

An image broken inside a smaller ball is broken at every larger radius, so the worst case at eps is the per-image
AND of every attack cell of that arm and norm with eps' <= eps (every method, gradient mode, transfer source,
restart count and attack seed), taken on the images those cells have in common. An L2 perturbation of norm r has
every pixel within r (||d||_inf <= ||d||_2), so an L2 cell at radius r is also an L-inf attack at every eps >= r and
enters the L-inf worst case there (same images, per image). Cells run on different numbers of images give *tiers*:
the tier of n images ANDs every cell that covers at least the first n images; the tiers are the n of the norm's own
cells. The tier of the smallest n includes every attack ("all attacks"); larger tiers trade attacks for images and
are labelled with their n. Within a tier the image set is fixed and the set of attacks only grows with eps, so its
robust accuracy never rises with eps (checked as an invariant). Cells scored with an evaluation-time alpha (the
official script's protocol) on an arm with a quantizer get worst cases of their own and never enter the corrected
one; on an arm without one (the baseline has no alpha) they are ordinary attacks on the same weights and enter its
worst case.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..run_format import ARMS

__all__ = ["WorstCase", "worst_cases"]

EPS_ROUND = 10


@dataclass(frozen=True)
class WorstCase:
    """One point of a worst-case curve."""

    arm: str
    norm: str
    eval_alpha: float | None
    tier: int  # the number of first test images it covers
    primary: bool  # the tier with every attack (the smallest n)
    eps: float
    vector: np.ndarray
    components: tuple[str, ...]  # labels of the cells ANDed (eps' <= eps)

    @property
    def acc(self) -> float:
        return float(self.vector.mean()) if self.vector.size else float("nan")


def _alpha_groups(rows: pd.DataFrame, quantizer_arms: Collection[str] | None) -> pd.Series:
    """The eval alpha a cell's worst case is kept under: its own on an arm with a quantizer, -1 (none) otherwise."""
    alpha = rows["eval_alpha"].astype(float) if "eval_alpha" in rows else pd.Series(np.nan, index=rows.index)
    if quantizer_arms is None:
        has_alpha = [ARMS[a].has_jpeg if a in ARMS else True for a in rows["arm"].astype(str)]
    else:
        has_alpha = rows["arm"].astype(str).isin(set(quantizer_arms)).to_list()
    return alpha.where(has_alpha, np.nan).fillna(-1.0)


def _contributors(group: pd.DataFrame, norm: str) -> pd.DataFrame:
    """The cells that attack within the ``norm`` ball: the norm's own, and for L-inf also every L2 cell."""
    return group[(group["norm"] == norm) | ((norm == "linf") & (group["norm"] == "l2"))]


def _tier_curve(key: tuple, group: pd.DataFrame, norm: str, tier: int, primary: bool, samples, name) -> list:
    """One tier's worst-case points: at each eps of the norm's own cells, the AND of every contributor up to it."""
    arm, alpha = key
    members = _contributors(group, norm)
    members = members[members["n"].astype(int) >= tier].sort_values("_eps", kind="stable")
    radii = sorted(set(members.loc[members["norm"] == norm, "_eps"]))
    vec, parts, last_acc, out, i = None, [], np.inf, [], 0
    rows, radius_of = list(members.itertuples(index=False)), members["_eps"].to_list()
    for eps in radii:
        while i < len(rows) and radius_of[i] <= eps + 1e-12:
            cell = np.asarray(samples[rows[i].cell_id][:tier], dtype=bool)
            vec = cell.copy() if vec is None else vec & cell
            parts.append(name(rows[i]))
            i += 1
        acc = float(vec.mean()) if vec.size else 0.0
        if acc > last_acc + 1e-12:  # cannot happen: same images, more attacks
            raise RuntimeError(f"internal error: worst case of {arm} {norm} rises with eps at {eps}")
        last_acc = acc
        out.append(WorstCase(str(arm), norm, alpha, tier, primary, float(eps), vec.copy(), tuple(parts)))
    return out


def worst_cases(
    rows: pd.DataFrame,
    samples: Mapping[str, np.ndarray],
    label: Callable[[object], str] | None = None,
    quantizer_arms: Collection[str] | None = None,
) -> list[WorstCase]:
    """Worst-case points of one run's attack rows (columns arm, norm, eps, n, cell_id, eval_alpha).

    ``samples[cell_id]`` is the per-sample robustness of each row. ``label(row)`` names a cell in ``components``.
    ``quantizer_arms``: the arms with a JPEG layer, whose eval-alpha cells are kept apart (default: the arm
    registry's; an arm it does not know is taken to have one).
    """
    if rows is None or rows.empty:
        return []
    rows = rows[rows["attack"] != "clean"].copy()
    if rows.empty:
        return []
    rows["_eps"] = rows["eps"].astype(float).round(EPS_ROUND)
    rows["_alpha"] = _alpha_groups(rows, quantizer_arms)
    name = label or (lambda r: str(r.cell_id))
    out: list[WorstCase] = []
    for (arm, alpha), group in rows.groupby(["arm", "_alpha"], sort=False):
        key = (arm, None if alpha == -1.0 else float(alpha))
        for norm in dict.fromkeys(group["norm"].astype(str)):
            tiers = sorted({int(n) for n in group.loc[group["norm"] == norm, "n"]})
            for tier in tiers:
                out += _tier_curve(key, group, norm, tier, tier == tiers[0], samples, name)
    return out
