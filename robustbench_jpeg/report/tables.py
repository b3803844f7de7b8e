"""Seed means of the cells and of the paired differences, and ``table.csv`` (raw fractions, one row per eps)."""

from __future__ import annotations

import math

import pandas as pd

from ..runfolder import arm_display, arm_order
from ..stats import pooled_interval, pooled_sign_flip_p, wilson_interval
from .cells import aggregate_seeds
from .compare import add_holm

# the typed columns (pair_base, variant, ranks) are functions of the label: grouping by them changes no group
ACC_KEYS = ["model", "norm", "eps_key", "arm", "label", "pair", "transfer", "kind", "eval_alpha"]
ACC_KEYS += ["pair_base", "variant", "grad_shown", "label_rank", "pair_rank", "followed", "chain_spec"]
DIFF_KEYS = ["model", "norm", "eps_key", "arm", "partner", "label", "family", "eval_alpha", "kind", "variant"]
DIFF_KEYS += ["label_rank"]


def rank_of(frame: pd.DataFrame, column: str = "label") -> dict[str, int]:
    """Each ``label`` (or ``pair_base``) of ``frame`` with its position in the report's column order (the typed
    ``label_rank`` / ``pair_rank`` columns of :func:`.cells.build_cells`): sort with ``key=rank_of(frame).get``."""
    rank = "label_rank" if column == "label" else "pair_rank"
    return dict(zip(frame[column], frame[rank].astype(int), strict=True)) if not frame.empty else {}


def csv_diff_name(arm: str, partner: str) -> str:
    """The difference's name in table.csv (ASCII): ``JPEG-DL - baseline``."""
    return f"{arm_display(arm)} - {arm_display(partner)}"


def aggregate(cells: pd.DataFrame, diffs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed means of accuracy (per model, norm, eps, arm, label) and of the paired differences.

    ``acc`` gains ``wilson_low``/``wilson_high`` (95% Wilson interval of the accuracy; one seed only) and
    ``column``/``order``; ``dif`` gains the single-seed interval and p-values (NaN with several seeds), the lists
    of every seed's interval (``lo_all``/``hi_all``) and p-values (``p_all``, ``holm_all``), the test pooled over
    the seeds (``p_pooled``, Holm-adjusted within the table's family as ``holm_pooled``, and its interval
    ``ci_pooled_low``/``_high``; NaN with one seed), every seed's difference (``diff_all``), and
    both arms' accuracy on the images the difference was computed on (``acc_arm_mean``/``_std``,
    ``acc_partner_mean``/``_std``).
    """
    cells = cells.assign(eval_alpha=cells["eval_alpha"].astype(float))
    acc = aggregate_seeds(cells, ACC_KEYS, "acc")
    single = acc["seeds"] == 1
    bounds = [
        wilson_interval(int(c), int(n)) if one and n > 0 else (math.nan, math.nan)
        for c, n, one in zip(acc["n_correct"], acc["n_min"], single, strict=True)
    ]
    acc["wilson_low"], acc["wilson_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    acc["column"] = [f"{arm_display(a)}: {lab}" for a, lab in zip(acc["arm"], acc["label"], strict=True)]
    acc["order"] = [(arm_order(a), int(k)) for a, k in zip(acc["arm"], acc["label_rank"], strict=True)]
    if diffs.empty:
        return acc, pd.DataFrame(columns=[*DIFF_KEYS, "mean", "std", "seeds", "column", "order"])
    diffs = diffs.assign(eval_alpha=diffs["eval_alpha"].astype(float))
    dif = aggregate_seeds(diffs, DIFF_KEYS, "diff")
    lists = (
        diffs.groupby(DIFF_KEYS, sort=False, dropna=False)
        .agg(
            ci_low=("ci_low", "first"),
            ci_high=("ci_high", "first"),
            p_mcnemar=("p_mcnemar", "first"),
            p_holm=("p_holm", "first"),
            p_all=("p_mcnemar", list),
            holm_all=("p_holm", list),
            lo_all=("ci_low", list),
            hi_all=("ci_high", list),
            n=("n", "first"),
            p_pooled=("delta", _pooled_p),
            ci_pooled=("delta", _pooled_ci),
            diff_all=("diff", list),
        )
        .reset_index()
    )
    dif = dif.merge(lists, on=DIFF_KEYS, how="left")
    dif["ci_pooled_low"] = [ci[0] for ci in dif["ci_pooled"]]
    dif["ci_pooled_high"] = [ci[1] for ci in dif["ci_pooled"]]
    dif = add_holm(dif.drop(columns="ci_pooled"), p="p_pooled", adjusted="holm_pooled")  # NaN with one seed
    for side in ("acc_arm", "acc_partner"):  # both accuracies on the images the difference was computed on
        part = aggregate_seeds(diffs, DIFF_KEYS, side)[[*DIFF_KEYS, "mean", "std"]]
        dif = dif.merge(part.rename(columns={"mean": f"{side}_mean", "std": f"{side}_std"}), on=DIFF_KEYS, how="left")
    for col in ("ci_low", "ci_high", "p_mcnemar", "p_holm"):
        dif.loc[dif["seeds"] > 1, col] = math.nan
    dif["column"] = [
        f"{csv_diff_name(a, b)}: {lab}" for a, b, lab in zip(dif["arm"], dif["partner"], dif["label"], strict=True)
    ]
    dif["order"] = [
        (99, arm_order(a), arm_order(b), int(k))
        for a, b, k in zip(dif["arm"], dif["partner"], dif["label_rank"], strict=True)
    ]
    return acc, dif


def _pooled_p(deltas: pd.Series) -> float:
    """The pooled test over the seeds of one difference (stats.pooled_sign_flip_p); NaN with one seed."""
    return pooled_sign_flip_p(list(deltas)) if len(deltas) > 1 else math.nan


def _pooled_ci(deltas: pd.Series) -> tuple[float, float]:
    """The pooled interval over the seeds of one difference (stats.pooled_interval); NaN with one seed."""
    return pooled_interval(list(deltas))[1:] if len(deltas) > 1 else (math.nan, math.nan)


def _columns(frame: pd.DataFrame) -> list[str]:
    """The frame's distinct ``column`` names in ``order``."""
    first = frame.drop_duplicates("column")
    return [c for _, c in sorted(zip(first["order"], first["column"], strict=True))]


_STATISTICS = ("ci_low", "ci_high", "p_mcnemar", "p_holm", "n", "std", "seeds")
_STATISTICS += ("ci_pooled_low", "ci_pooled_high", "p_pooled", "holm_pooled")


def wide_csv(acc: pd.DataFrame, dif: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, norm, eps); accuracy and difference columns as raw fractions (see docs/report.md)."""
    index = ["model", "norm", "eps_key"]
    multi = bool((acc["seeds"] > 1).any() or (not dif.empty and (dif["seeds"] > 1).any()))
    parts = [acc.pivot_table(index=index, columns="column", values="mean", aggfunc="first")[_columns(acc)]]
    if multi:
        parts.append(_suffixed(acc, index, "std"))
        parts.append(_suffixed(acc, index, "seeds"))
    if not dif.empty:
        parts.append(dif.pivot_table(index=index, columns="column", values="mean", aggfunc="first")[_columns(dif)])
        multi_values = ("std", "seeds", "ci_pooled_low", "ci_pooled_high", "p_pooled", "holm_pooled") if multi else ()
        for value in ("ci_low", "ci_high", "p_mcnemar", "p_holm", "n") + multi_values:
            parts.append(_suffixed(dif, index, value))
    table = pd.concat(parts, axis=1)
    present = pd.concat([f[index] for f in (acc, dif) if not f.empty]).drop_duplicates()
    table = table[table.index.isin(pd.MultiIndex.from_frame(present))]  # not the norm x eps cross product
    ordered = []  # each column, then its statistics (a label may itself end in "[eval alpha 1]": match exactly)
    for col in _columns(acc) + (_columns(dif) if not dif.empty else []):
        ordered += [col] + [f"{col} [{v}]" for v in _STATISTICS if f"{col} [{v}]" in table.columns]
    table = table[ordered].reset_index().rename(columns={"eps_key": "eps"})
    table.insert(3, "eps_unit", ["1/255" if nm == "linf" else "raw" for nm in table["norm"]])
    table.columns.name = None
    return table


def _suffixed(frame: pd.DataFrame, index: list[str], value: str) -> pd.DataFrame:
    wide = frame.pivot_table(index=index, columns="column", values=value, aggfunc="first", dropna=False)
    return wide.rename(columns=lambda c: f"{c} [{value}]")
