"""Per-image comparison of two attack cells on the images they share, and the attack cells a check sees.

A comparison of an attack that should be at least as strong (S) with one that should not beat it (W) counts
b = images S leaves robust but W breaks, c = the reverse, on the m first images both cells cover; it is a
*violation* when (b - c) / m exceeds :func:`tolerance` and a *significant* one when, in addition, the exact McNemar
test gives p < :data:`ALPHA`. :mod:`.checks` builds its checks from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ..runfolder.cell import Setting, describe
from ..stats import mcnemar_exact_p
from .methods import METHODS

ALPHA = 0.05  # significance level of a violation (exact McNemar, two-sided)


def tolerance(m: int) -> float:
    """Accuracy slack when comparing two cells on ``m`` images: one image or 0.5 points, whichever is larger."""
    return max(1.0 / max(int(m), 1), 0.005)


@dataclass(frozen=True)
class Comparison:
    """S (should be at least as strong) against W on their ``m`` common images."""

    strong: str
    weak: str
    m: int
    b: int  # S leaves robust, W breaks
    c: int  # S breaks, W leaves robust
    p: float

    @property
    def excess(self) -> float:
        return (self.b - self.c) / self.m if self.m else 0.0

    @property
    def violated(self) -> bool:
        return self.m > 0 and self.excess > tolerance(self.m)

    @property
    def significant(self) -> bool:
        return self.violated and self.p < ALPHA

    def text(self) -> str:
        return (
            f"{self.strong} leaves {self.b - self.c:+d} more of {self.m} images robust than {self.weak} "
            f"(b={self.b}, c={self.c}, McNemar p={self.p:.2g})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "strong": self.strong,
            "weak": self.weak,
            "m": self.m,
            "b": self.b,
            "c": self.c,
            "p": self.p,
            "violated": self.violated,
            "significant": self.significant,
        }


def compare(strong: np.ndarray, weak: np.ndarray, strong_label: str, weak_label: str) -> Comparison:
    m = min(strong.size, weak.size)
    s, w = strong[:m], weak[:m]
    b, c = int(np.count_nonzero(s & ~w)), int(np.count_nonzero(~s & w))
    return Comparison(strong_label, weak_label, m, b, c, mcnemar_exact_p(b, c))


# --- the cells a check sees ----------------------------------------------------------------------------------------


def cell_label(r: Any) -> str:
    return describe(Setting.from_row(r), str(r.arm), int(r.n))


def attack_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Attack rows with helper columns: ``_eps`` (rounded), ``_budget``, ``_alpha`` (eval alpha or -1), ``_label``."""
    if df is None or df.empty:
        return pd.DataFrame(columns=["arm", "attack"])
    out = df[df["attack"] != "clean"].copy()
    if out.empty:
        return out
    out["after"] = out["after"].fillna("").astype(str) if "after" in out else ""
    out["_eps"] = out["eps"].astype(float).round(10)
    out["_budget"] = out["steps"].astype(int) * out["restarts"].astype(int)
    out["_alpha"] = out["eval_alpha"].astype(float).fillna(-1.0) if "eval_alpha" in out else -1.0
    out["_chained"] = out["after"] != ""
    out["_gradient"] = [METHODS[a].uses_gradient if a in METHODS else True for a in out["attack"]]
    out["_label"] = [cell_label(r) for r in out.itertuples(index=False)]
    return out


def paired_comparisons(group: pd.DataFrame, samples: Mapping[str, np.ndarray], strong_of) -> list[Comparison]:
    out = []
    for (_, a), (_, b) in combinations(group.iterrows(), 2):
        for s, w in ((a, b), (b, a)):
            if strong_of(s, w):
                out.append(compare(samples[s["cell_id"]], samples[w["cell_id"]], s["_label"], w["_label"]))
    return out
