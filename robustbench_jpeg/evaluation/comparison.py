"""Per-image comparison of two attack cells on the images they share, its judgement within a check, and the attack
cells a check sees.

A comparison of an attack that should be at least as strong (S) with one that should not beat it (W) counts
b = images S leaves robust but W breaks, c = the reverse, on the m first images both cells cover. Within a check,
every comparison gets one :class:`Outcome`, with the exact McNemar p-values Holm-adjusted over the check's
comparisons (:func:`judge`):

* **violated**: (b - c) / m exceeds :func:`tolerance` and the Holm-adjusted p is below :data:`ALPHA`;
* **not significant**: (b - c) / m exceeds the tolerance, but the Holm-adjusted p does not reach :data:`ALPHA`
  (a gap that may be real: the sample is too small to tell);
* **no power**: within the tolerance, but the comparison could not have failed: even had every image that can be
  broken at all (the clean-correct ones among the m) gone the wrong way (b = all of them, c = 0), the violation
  would not be beyond the tolerance and significant after Holm (one image, a handful of images, or nothing
  classified correctly);
* **holds**: within the tolerance, and it could have failed.

:mod:`.checks` builds its checks from these: one violated comparison fails a check; a check with a comparison that
is not significant or has no power is *inconclusive*, never passed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ..runfolder.cell import MethodKind, Setting, describe
from ..stats import format_p, holm_adjust, mcnemar_exact_p

ALPHA = 0.05  # family-wise error rate of each check (exact McNemar, two-sided, Holm within the check)


def tolerance(m: int) -> float:
    """Accuracy slack when comparing two cells on ``m`` images: one image or 0.5 points, whichever is larger."""
    return max(1.0 / max(int(m), 1), 0.005)


class Outcome(StrEnum):
    """How one comparison ends within its check (module docstring)."""

    HOLDS = "holds"
    VIOLATED = "violated"
    NOT_SIGNIFICANT = "not significant"
    NO_POWER = "no power"


@dataclass(frozen=True)
class Comparison:
    """S (should be at least as strong) against W on their ``m`` common images.

    ``attackable``: how many of the m images could be discordant at all (at most the clean-correct ones).
    ``family`` and ``p_holm``: the number of comparisons of the check this one belongs to and its Holm-adjusted p
    (a comparison on its own is a family of one).
    """

    strong: str
    weak: str
    m: int
    b: int  # S leaves robust, W breaks
    c: int  # S breaks, W leaves robust
    p: float
    attackable: int
    family: int = 1
    p_holm: float = math.nan

    @property
    def excess(self) -> float:
        return (self.b - self.c) / self.m if self.m else 0.0

    @property
    def beyond_tolerance(self) -> bool:
        return self.m > 0 and self.excess > tolerance(self.m)

    @property
    def adjusted_p(self) -> float:
        return self.p if math.isnan(self.p_holm) else self.p_holm

    @property
    def powered(self) -> bool:
        """Could this comparison have failed? Had all ``attackable`` images gone the wrong way (module docstring)."""
        worst = self.attackable
        if self.m == 0 or worst / self.m <= tolerance(self.m):
            return False
        return self.family * mcnemar_exact_p(worst, 0) < ALPHA

    @property
    def outcome(self) -> Outcome:
        if self.beyond_tolerance:
            return Outcome.VIOLATED if self.adjusted_p < ALPHA else Outcome.NOT_SIGNIFICANT
        return Outcome.HOLDS if self.powered else Outcome.NO_POWER

    @property
    def violated(self) -> bool:
        return self.outcome is Outcome.VIOLATED

    def text(self) -> str:
        holm = f", Holm p={format_p(self.p_holm)} over {self.family}" if self.family > 1 else ""
        return (
            f"{self.strong} leaves {self.b - self.c:+d} more of {self.m} images robust than {self.weak} "
            f"(b={self.b}, c={self.c}, McNemar p={format_p(self.p)}{holm})"
        )

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(outcome=str(self.outcome), violated=self.violated)
        return out


def compare(
    strong: np.ndarray, weak: np.ndarray, strong_label: str, weak_label: str, attackable: int | None = None
) -> Comparison:
    """Compare two per-image robustness vectors on their common first images (``attackable`` defaults to all)."""
    m = min(strong.size, weak.size)
    s, w = strong[:m], weak[:m]
    b, c = int(np.count_nonzero(s & ~w)), int(np.count_nonzero(~s & w))
    can = m if attackable is None else max(min(int(attackable), m), b + c)
    return Comparison(strong_label, weak_label, m, b, c, mcnemar_exact_p(b, c), can)


def judge(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons of one check with their Holm adjustment over the check (the family-wise error at ALPHA)."""
    adjusted = holm_adjust([c.p for c in comparisons])
    return [
        dataclasses.replace(c, family=len(comparisons), p_holm=p) for c, p in zip(comparisons, adjusted, strict=True)
    ]


# --- the cells a check sees ----------------------------------------------------------------------------------------


def attack_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Attack rows with helper columns: ``_eps`` (rounded), ``_budget``, ``_alpha`` (eval alpha or -1), ``_label``
    (the cell record's one label), ``_setting`` (the typed record), ``_kind`` (the method's kind), ``_chained``,
    ``_cascade`` (a radius cascade), ``_gradient`` and ``_attackable``
    (clean-correct images, the only ones an attack can break). Everything comes from the typed record of each row
    (:meth:`~robustbench_jpeg.runfolder.cell.Setting.from_row`), never from the method registry."""
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
    out["below"] = out["below"].fillna("").astype(str) if "below" in out else ""
    settings = [Setting.from_row(r) for r in out.itertuples(index=False)]
    out["_setting"] = settings
    out["_cascade"] = [s.cascade for s in settings]
    out["_kind"] = [s.method_kind for s in settings]
    out["_gradient"] = out["_kind"] != MethodKind.GRADIENT_FREE
    clean_correct = out["n_clean_correct"] if "n_clean_correct" in out else out["n"]
    out["_attackable"] = clean_correct.fillna(out["n"]).astype(int)
    out["_label"] = [describe(s, arm, int(n)) for s, arm, n in zip(settings, out["arm"], out["n"], strict=True)]
    return out


def compare_cells(strong: Mapping[str, Any], weak: Mapping[str, Any], samples: Mapping[str, np.ndarray]) -> Comparison:
    """Two rows of :func:`attack_cells` compared on their common images."""
    attackable = min(int(strong["_attackable"]), int(weak["_attackable"]))
    return compare(samples[strong["cell_id"]], samples[weak["cell_id"]], strong["_label"], weak["_label"], attackable)


def paired_comparisons(group: pd.DataFrame, samples: Mapping[str, np.ndarray], strong_of) -> list[Comparison]:
    out = []
    for (_, a), (_, b) in combinations(group.iterrows(), 2):
        for s, w in ((a, b), (b, a)):
            if strong_of(s, w):
                out.append(compare_cells(s, w, samples))
    return out
