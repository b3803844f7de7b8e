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
official script's protocol) get worst cases of their own; on an arm with a quantizer they never enter the corrected
one, while on an arm without one (the baseline has no alpha) they are ordinary attacks on the same weights and enter
its worst case as well.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..runfolder import ARMS

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


def _groups(rows: pd.DataFrame, quantizer_arms: Collection[str] | None) -> list[tuple[tuple, pd.DataFrame]]:
    """The cells behind each worst case, keyed (arm, eval alpha or None). Cells of one eval alpha form their own
    group; the ordinary group of an arm without a quantizer holds every cell of that arm, eval alpha or not."""
    alpha = rows["eval_alpha"].astype(float).fillna(-1.0) if "eval_alpha" in rows else pd.Series(-1.0, rows.index)
    arms = rows["arm"].astype(str)
    if quantizer_arms is None:
        alpha_free = {a for a in set(arms) if a in ARMS and not ARMS[a].has_jpeg}
    else:
        alpha_free = set(arms) - set(quantizer_arms)
    keys = list(dict.fromkeys(zip(arms, alpha, strict=True)))
    keys += [(a, -1.0) for a in dict.fromkeys(arms) if a in alpha_free and (a, -1.0) not in keys]
    out = []
    for arm, a in keys:
        mine = arms == arm if (a == -1.0 and arm in alpha_free) else (arms == arm) & (alpha == a)
        out.append(((arm, None if a == -1.0 else float(a)), rows[mine]))
    return out


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
    name = label or (lambda r: str(r.cell_id))
    out: list[WorstCase] = []
    for key, group in _groups(rows, quantizer_arms):
        for norm in dict.fromkeys(group["norm"].astype(str)):
            tiers = sorted({int(n) for n in group.loc[group["norm"] == norm, "n"]})
            for tier in tiers:
                out += _tier_curve(key, group, norm, tier, tier == tiers[0], samples, name)
    return out
