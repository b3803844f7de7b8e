"""The worst case over every attack: per image, robust only if no attack at this radius or any smaller one broke it.

An image broken inside a smaller ball is broken at every larger radius, so the worst case at eps is the per-image
AND of every attack cell of that arm and norm with eps' <= eps (every method, gradient mode, transfer source,
restart count and attack seed), taken on the images those cells have in common. Cells run on different numbers of
images give *tiers*: the tier of n images ANDs every cell that covers at least the first n images. The tier of the
smallest n includes every attack ("all attacks"); larger tiers trade attacks for images and are labelled with their
n. Within a tier the image set is fixed and the set of attacks only grows with eps, so its robust accuracy never
rises with eps (checked as an invariant). Cells scored with an evaluation-time alpha (the official script's
protocol) get worst cases of their own and never enter the corrected one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def worst_cases(
    rows: pd.DataFrame, samples: Mapping[str, np.ndarray], label: Callable[[object], str] | None = None
) -> list[WorstCase]:
    """Worst-case points of one run's attack rows (columns arm, norm, eps, n, cell_id, eval_alpha).

    ``samples[cell_id]`` is the per-sample robustness of each row. ``label(row)`` names a cell in ``components``.
    """
    if rows is None or rows.empty:
        return []
    rows = rows[rows["attack"] != "clean"].copy()
    if rows.empty:
        return []
    rows["_eps"] = rows["eps"].astype(float).round(EPS_ROUND)
    rows["_alpha"] = rows["eval_alpha"].astype(float) if "eval_alpha" in rows else np.nan
    name = label or (lambda r: str(r.cell_id))
    out: list[WorstCase] = []
    for (arm, norm, alpha), group in rows.groupby(["arm", "norm", rows["_alpha"].fillna(-1.0)], sort=False):
        alpha_value = None if alpha == -1.0 else float(alpha)
        tiers = sorted({int(n) for n in group["n"]})
        for tier in tiers:
            members = group[group["n"].astype(int) >= tier].sort_values("_eps", kind="stable")
            vec = None
            parts: list[str] = []
            last_acc = np.inf
            for eps, at_eps in members.groupby("_eps", sort=True):
                for r in at_eps.itertuples(index=False):
                    cell = np.asarray(samples[r.cell_id][:tier], dtype=bool)
                    vec = cell.copy() if vec is None else vec & cell
                    parts.append(name(r))
                acc = float(vec.mean()) if vec.size else 0.0
                if acc > last_acc + 1e-12:  # cannot happen: same images, more attacks
                    raise RuntimeError(f"internal error: worst case of {arm} {norm} rises with eps at {eps}")
                last_acc = acc
                out.append(
                    WorstCase(
                        str(arm), str(norm), alpha_value, tier, tier == tiers[0], float(eps), vec.copy(), tuple(parts)
                    )
                )
    return out
