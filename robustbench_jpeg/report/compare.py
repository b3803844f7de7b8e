"""Which arms are compared, the paired differences on the same images, and the Holm families.

Pairs: every arm other than the baseline against the baseline, and JPEG-DL against every other arm with a JPEG front
end (the control arms: frozen tables, standard JPEG). A difference is always ``arm - partner`` in accuracy on the
same first-n images, with Newcombe's interval and the exact McNemar p-value (:mod:`robustbench_jpeg.stats`).

A *family* is the set of p-values of one report table: the Holm adjustment is computed over every p-value of that
table (all eps, all seeds, every difference column) and nothing else. Family names:

* ``headline``: JPEG-DL - baseline, worst case over every attack (the report's first table);
* ``control <arm>``: JPEG-DL - <arm> and <arm> - baseline, worst case over every attack;
* ``attack <setting>``: every difference under one attack setting (``FGSM``, ``PGD-20``, ...);
* ``worst-case tiers``: the worst cases over the attacks run on at least N images;
* ``eval alpha <A> ...``: the same, for cells scored with an evaluation-time alpha (their own section).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..runfolder import ARMS, BASELINE, JPEGDL, arm_display, arm_order
from ..stats import holm_adjust, paired_from_samples
from .cells import WORST
from .load import Run

PAIR_COLUMNS = [
    "run", "model", "train_seed", "norm", "eps_key", "arm", "partner", "label", "partner_label", "kind", "eval_alpha",
    "family", "acc_arm", "acc_partner", "n", "b", "c", "diff", "ci_low", "ci_high", "p_mcnemar", "p_holm",
]  # fmt: skip


def quantizer_arms(runs: list[Run]) -> set[str]:
    """Arms with a JPEG front end: from the registry, or from a card's ``jpeg`` field for arms it does not know."""
    arms = {str(a) for run in runs for a in run.results["arm"].unique()}
    out = {a for a in arms if a in ARMS and ARMS[a].has_jpeg}
    out |= {arm for run in runs for arm, card in run.cards.items() if arm not in ARMS and card.jpeg}
    return out


def arm_pairs(arms, quantizers: set[str]) -> list[tuple[str, str]]:
    """(arm, partner) pairs: every arm against the baseline, then JPEG-DL against every other JPEG arm."""
    arms = sorted(set(arms), key=arm_order)
    pairs = [(a, BASELINE) for a in arms if a != BASELINE and BASELINE in arms]
    if JPEGDL in arms:
        pairs += [(JPEGDL, a) for a in arms if a not in (BASELINE, JPEGDL) and a in quantizers]
    return pairs


def controls(arms) -> list[str]:
    """The control arms present: every arm other than the baseline and JPEG-DL, in registry order."""
    return [a for a in sorted(set(arms), key=arm_order) if a not in (BASELINE, JPEGDL)]


def diff_name(arm: str, partner: str) -> str:
    """``JPEG-DL − baseline`` (a real minus sign)."""
    return f"{arm_display(arm)} \u2212 {arm_display(partner)}"


def family_of(arm: str, partner: str, cell) -> str:
    """The Holm family (the report table) a difference of ``cell`` (a cells row) is shown in; see the module
    docstring."""
    prefix = f"eval alpha {float(cell.eval_alpha):g} " if pd.notna(cell.eval_alpha) else ""
    if cell.kind == "worst" and cell.pair_base == WORST:
        if prefix:
            return prefix + "worst case"
        return "headline" if (arm, partner) == (JPEGDL, BASELINE) else f"control {partner if arm == JPEGDL else arm}"
    if cell.kind == "worst":
        return prefix + "worst-case tiers"
    return prefix + f"attack {cell.pair_base}"


def paired_differences(
    cells: pd.DataFrame, vectors: list[np.ndarray], pairs: list[tuple[str, str]], quantizers: set[str]
) -> pd.DataFrame:
    """``arm - partner`` per run, norm, eps and label of ``arm``, on the first images common to both cells.

    The partner cell has the same attack setting (``pair``) and eps. When only one of the two arms has a JPEG front
    end, the partner's one white-box cell is the partner of every gradient mode of the other arm (the baseline has
    no quantizer, so its PGD is the partner of both soft and BPDA PGD on JPEG-DL); when both have one, the gradient
    modes must match. A cell scored with an evaluation-time alpha is paired with a partner scored with the same
    alpha, or, for an arm without a JPEG layer (which has no alpha), with its ordinary cell of the same setting;
    worst cases are paired only with worst cases of the same alpha. Transfer cells are not paired (the two arms face
    different examples). p-values get their Holm adjustment within their family (:func:`family_of`).
    """
    out = []
    whitebox = cells[~cells["transfer"].astype(bool)] if not cells.empty else cells
    for arm, partner in pairs:
        mine, theirs = whitebox[whitebox["arm"] == arm], whitebox[whitebox["arm"] == partner]
        if mine.empty or theirs.empty:
            continue
        both_quantized = arm in quantizers and partner in quantizers
        index = {}
        for r in theirs.itertuples():
            key = (r.run, r.norm, r.pair_base, _alpha(r.eval_alpha), r.eps_key, r.grad if both_quantized else "")
            index.setdefault(key, r)
        for r in mine.itertuples():
            grad = r.grad if both_quantized else ""
            other = index.get((r.run, r.norm, r.pair_base, _alpha(r.eval_alpha), r.eps_key, grad))
            if other is None and partner not in quantizers and r.kind != "worst":  # the partner has no alpha
                other = index.get((r.run, r.norm, r.pair_base, None, r.eps_key, grad))
            if other is None:
                continue
            m = min(r.n, other.n)
            mine_vec, their_vec = vectors[r.sid][:m], vectors[other.sid][:m]
            stat = paired_from_samples(mine_vec, their_vec)
            out.append(
                {
                    "run": r.run,
                    "model": r.model,
                    "train_seed": r.train_seed,
                    "norm": r.norm,
                    "eps_key": r.eps_key,
                    "arm": arm,
                    "partner": partner,
                    "label": r.label,
                    "partner_label": other.label,
                    "kind": r.kind,
                    "eval_alpha": r.eval_alpha,
                    "family": family_of(arm, partner, r),
                    "variant": r.variant,
                    "label_rank": r.label_rank,
                    "acc_arm": float(mine_vec.mean()),
                    "acc_partner": float(their_vec.mean()),
                    "delta": mine_vec.astype(np.int8) - their_vec.astype(np.int8),  # per image, for pooling seeds
                    **stat.as_dict(),
                }
            )
    frame = pd.DataFrame(out, columns=[*(c for c in PAIR_COLUMNS if c != "p_holm"), "variant", "label_rank", "delta"])
    return add_holm(frame)


def _alpha(value) -> float | None:
    return None if pd.isna(value) else float(value)


def add_holm(frame: pd.DataFrame, p: str = "p_mcnemar", adjusted: str = "p_holm") -> pd.DataFrame:
    """``adjusted``: the Holm-adjusted ``p`` within each (model, norm, family); NaN p-values stay NaN and do not
    count in a family."""
    frame = frame.copy()
    frame[adjusted] = np.nan
    for _, grp in frame.groupby(["model", "norm", "family"], sort=False):
        frame.loc[grp.index, adjusted] = holm_adjust(grp[p].tolist())
    return frame


def family_sizes(diffs: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    """Number of p-values in each (model, norm, family): the m of Holm's adjustment."""
    if diffs.empty:
        return {}
    return {key: len(grp) for key, grp in diffs.groupby(["model", "norm", "family"], sort=False)}
