"""From loaded runs to labelled cells with per-sample vectors, worst-case cells, paired differences and seed means.

A *cell* is one (run, arm, attack setting, eps) evaluation with its per-sample correctness vector. Labels:

* ``FGSM``, ``PGD-10``, ``PGD-10, 5 restarts``, ``APGD-T-100``, ``Square-5000`` (+ ``, L2`` for L2 attacks) name
  the attack (:func:`robustbench_jpeg.runfolder.cell.attack_name`); a chained cell (AutoAttack) is named by its chain,
  ``APGD-CE-100 → APGD-T-100``, since its accuracy is cumulative;
* a step rule / random start qualifier is added only when several occur for the same family;
* ``(soft)``, ``(bpda)``, ``(bpda-hard)``, ``(surrogate)`` is added when several gradient modes were run through
  the JPEG-DL quantizer; ``transfer from baseline`` marks examples crafted on the other arm;
* ``[eval alpha 1]`` marks cells scored with an evaluation-time alpha (the official script's protocol).

Eps 0 is the clean accuracy (the arm's ``clean`` cell, on the same first-n images as the attack column). The
worst case comes from :func:`robustbench_jpeg.attack.worst_case.worst_cases`: every attack at eps' <= eps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..attack.checks import ADAPTIVE_GRADS
from ..attack.worst_case import worst_cases
from ..run_format import arm_display
from ..runfolder.cell import Setting, attack_name
from ..stats import mean_std
from .load import Run

WORST = "worst case (all attacks)"
WORST_PREFIX = "worst case"
CLEAN = "clean"


def arm_name(arm: str) -> str:
    return arm_display(arm)


def worst_label(primary: bool, tier: int, eval_alpha: float | None = None) -> str:
    label = WORST if primary else f"worst case (attacks on >= {tier} images)"
    return label + (f" [eval alpha {eval_alpha:g}]" if eval_alpha is not None else "")


def is_worst(label: str) -> bool:
    return str(label).startswith(WORST_PREFIX)


def eps_key(norm: str, eps: float) -> float:
    """The table's eps: in 1/255 units for L-inf, raw [0, 1]-scale radius for L2 (rounded to merge float noise)."""
    return round(eps * 255.0, 4) if norm == "linf" else round(eps, 6)


def _family(row, names: dict[str, str]) -> str:
    own = attack_name(Setting.from_row(row))
    after = str(row.after) if isinstance(row.after, str) else ""
    return f"{names[after]} → {own.removesuffix(', L2')}" if after and after in names else own


def _chain_grads(rows: pd.DataFrame) -> list[str]:
    """The gradient mode a cell is labelled with: its own, or for a gradient-free cell ending a chain (AutoAttack's
    Square) the mode of the chain before it, so the soft and the BPDA chains stay apart."""
    grads: dict[str, str] = {}
    out = []
    for r in rows.itertuples():
        grad = r.grad if r.grad != "none" or not r.after else grads.get(str(r.after), "none")
        grads[str(r.cell_id)] = grad
        out.append(grad)
    return out


def _alpha_suffix(value) -> str:
    return f" [eval alpha {float(value):g}]" if pd.notna(value) else ""


def label_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Add ``transfer``, ``grad`` (normalised), ``family``, ``pair`` (the setting both arms share), ``label``, eps."""
    rows = rows.copy()
    src = rows["source_arm"].astype(str)
    rows["source_arm"] = src.where(~src.isin(["", "nan", "None"]), rows["arm"].astype(str))
    rows["transfer"] = rows["source_arm"] != rows["arm"]
    rows["after"] = rows["after"].fillna("").astype(str) if "after" in rows else ""
    rows["eval_alpha"] = rows["eval_alpha"].astype(float) if "eval_alpha" in rows else np.nan
    # gradients through a quantizer exist only when the examples were crafted on an arm with one
    rows["grad"] = rows["grad"].astype(str).where(~rows["grad"].isin(["", "nan"]), "none")
    is_attack = rows["attack"] != CLEAN
    names: dict[str, str] = {}
    families = []
    for r in rows.itertuples():  # chain members follow their predecessor in results.csv order
        fam = _family(r, names) if r.attack != CLEAN else CLEAN
        names[str(r.cell_id)] = fam
        families.append(fam)
    rows["family"] = families
    attacks = rows[is_attack]
    rule_varies = attacks.groupby(["model", "family"])["step_rule"].nunique() > 1
    start_varies = attacks.groupby(["model", "family"])["random_start"].nunique() > 1
    pairs = []
    for r in rows.itertuples():
        pair = r.family
        if r.attack != CLEAN and rule_varies.get((r.model, r.family), False):
            pair += f", step {r.step_rule}"
        if r.attack != CLEAN and start_varies.get((r.model, r.family), False) and not _truthy(r.random_start):
            pair += ", no random start"
        pairs.append(pair + _alpha_suffix(r.eval_alpha))
    rows["pair"] = pairs
    rows["label_grad"] = _chain_grads(rows)
    crafted_on_quantizer = is_attack & (rows["label_grad"] != "none")
    n_grads = rows[crafted_on_quantizer].groupby(["model", "pair"])["label_grad"].nunique()
    labels = []
    for r, on_q in zip(rows.itertuples(), crafted_on_quantizer, strict=True):
        label = r.pair
        if on_q and (n_grads.get((r.model, r.pair), 0) > 1 or r.label_grad != "soft"):
            label = label.replace(_alpha_suffix(r.eval_alpha), "") + f" ({r.label_grad})" + _alpha_suffix(r.eval_alpha)
        if r.transfer:
            label += f" transfer from {arm_name(r.source_arm)}"
        labels.append(label)
    rows["label"] = labels
    rows["eps_key"] = [0.0 if r.attack == CLEAN else eps_key(r.norm, r.eps) for r in rows.itertuples()]
    return rows


def _component(r) -> str:
    """A cell's name in a worst case's list of components: ``PGD-20 (bpda) at 2/255``."""
    return f"{r.label} at {r.eps_key:g}" + ("/255" if r.norm == "linf" else f" ({str(r.norm).upper()})")


def display_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The cells shown as columns: one per setting and attack seed (the largest n of a setting run at two sizes;
    every size still enters the worst case). Settings run with several attack seeds are labelled by seed."""
    key = ["run", "arm", "norm", "label", "eps_key"]
    rows = rows.sort_values("n", ascending=False, kind="stable")
    rows = rows[~rows.duplicated([*key, "attack_seed"], keep="first")].sort_index()
    dup = rows.duplicated(key, keep=False)
    if dup.any():  # same setting run twice with different attack seeds: keep both, labelled
        suffix = pd.Series([f" [attack seed {s}]" for s in rows["attack_seed"]], index=rows.index)
        rows.loc[dup, "label"] += suffix[dup]
        rows.loc[dup, "pair"] += suffix[dup]
        still = rows.duplicated(key, keep=False)
        rows.loc[still, "label"] += [f" #{i + 1}" for i in rows[still].groupby(key).cumcount()]
    return rows


def _truthy(value) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "off", "")


def build_cells(runs: list[Run]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """All cells (attack, synthesised eps-0 clean, worst case) with an index ``sid`` into the returned vectors."""
    frames = [run.results.assign(run=run.name) for run in runs]
    labelled = label_rows(pd.concat(frames, ignore_index=True))
    rows = display_rows(labelled)
    vectors: list[np.ndarray] = []
    records: list[dict] = []
    by_run = {run.name: run for run in runs}

    def add(base: dict, vec: np.ndarray, **kw) -> None:
        vectors.append(vec)
        records.append(
            {
                **base,
                **kw,
                "n": int(vec.size),
                "n_correct": int(vec.sum()),
                "acc": float(vec.mean()),
                "sid": len(vectors) - 1,
            }
        )

    meta = ["run", "model", "dataset", "train_seed", "arm"]
    for r in rows.itertuples(index=False):
        if r.attack != CLEAN:
            add(
                {k: getattr(r, k) for k in meta},
                by_run[r.run].samples[r.cell_id],
                norm=r.norm,
                eps_key=r.eps_key,
                eps=r.eps,
                label=r.label,
                pair=r.pair,
                family=r.family,
                grad=r.grad,
                transfer=bool(r.transfer),
                eval_alpha=r.eval_alpha,
                kind="attack",
            )
    attack_cells = pd.DataFrame(records)
    clean_rows = rows[rows["attack"] == CLEAN].sort_values("n")
    clean_rows = clean_rows[clean_rows["eval_alpha"].isna()]
    clean = {(r.run, r.arm): by_run[r.run].samples[r.cell_id] for r in clean_rows.itertuples()}
    clean_meta = {(r.run, r.arm): {k: getattr(r, k) for k in meta} for r in clean_rows.itertuples()}
    alpha_clean = {
        (r.run, r.arm, float(r.eval_alpha)): by_run[r.run].samples[r.cell_id]
        for r in rows[(rows["attack"] == CLEAN) & rows["eval_alpha"].notna()].sort_values("n").itertuples()
    }

    def clean_of(run: str, arm: str, alpha) -> np.ndarray | None:
        return clean.get((run, arm)) if pd.isna(alpha) else alpha_clean.get((run, arm, float(alpha)))

    # eps 0 of every attack column = the clean cell on the same first-n images
    if not attack_cells.empty:
        groups = attack_cells.groupby(["run", "arm", "norm", "label"], sort=False)
        for (run, arm, norm, label), grp in groups:
            first = grp.iloc[0]
            vec = clean_of(run, arm, first["eval_alpha"])
            if vec is not None and not (grp["eps_key"] == 0).any():
                add(
                    clean_meta[(run, arm)],
                    vec[: int(grp["n"].max())],
                    norm=norm,
                    eps_key=0.0,
                    eps=0.0,
                    label=label,
                    pair=first["pair"],
                    family=first["family"],
                    grad=first["grad"],
                    transfer=bool(first["transfer"]),
                    eval_alpha=first["eval_alpha"],
                    kind="clean",
                )
    norms = sorted(set(attack_cells["norm"])) if not attack_cells.empty else ["linf"]
    for (run, arm), vec in clean.items():  # a "clean" column only when no attack was run for that arm
        if attack_cells.empty or attack_cells[(attack_cells["run"] == run) & (attack_cells["arm"] == arm)].empty:
            for norm in norms:
                add(
                    clean_meta[(run, arm)],
                    vec,
                    norm=norm,
                    eps_key=0.0,
                    eps=0.0,
                    label=CLEAN,
                    pair=CLEAN,
                    family=CLEAN,
                    grad="none",
                    transfer=False,
                    eval_alpha=np.nan,
                    kind="clean",
                )
    for run in runs:  # the worst case uses every attack row, every n
        mine = labelled[(labelled["run"] == run.name) & (labelled["attack"] != CLEAN)]
        meta_of = {r.arm: {k: getattr(r, k) for k in meta} for r in mine.itertuples()}
        for w in worst_cases(mine, run.samples, label=_component):
            label = worst_label(w.primary, w.tier, w.eval_alpha)
            common = dict(
                norm=w.norm,
                label=label,
                pair=label,
                family=label,
                grad="none",
                transfer=False,
                eval_alpha=np.nan if w.eval_alpha is None else w.eval_alpha,
                kind="worst",
                tier=w.tier,
                primary=w.primary,
            )
            base = clean_of(run.name, w.arm, w.eval_alpha)
            if base is not None and not any(
                rec.get("label") == label
                and rec.get("run") == run.name
                and rec.get("arm") == w.arm
                and rec.get("norm") == w.norm
                and rec["eps_key"] == 0
                for rec in records
            ):
                add(meta_of[w.arm], base[: w.tier], eps_key=0.0, eps=0.0, components=CLEAN, **common)
            add(
                meta_of[w.arm],
                w.vector,
                eps_key=eps_key(w.norm, w.eps),
                eps=w.eps,
                components="; ".join(w.components),
                **common,
            )
    return pd.DataFrame(records), vectors


def aggregate_seeds(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and number of seeds of ``value`` over runs, per ``keys``; ``n_correct`` is the sum
    over runs (with one seed: the correct images behind the accuracy, for its Wilson interval)."""
    rows = []
    for key, grp in frame.groupby(keys, sort=False, dropna=False):
        mean, std, k = mean_std(grp[value])
        correct = int(grp["n_correct"].sum()) if "n_correct" in grp else -1
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "mean": mean,
                "std": std,
                "seeds": k,
                "n_min": int(grp["n"].min()),
                "n_max": int(grp["n"].max()),
                "n_correct": correct,
            }
        )
    return pd.DataFrame(rows)


def select_rows(frame: pd.DataFrame, *, trained_alpha: bool = False, **equal) -> pd.DataFrame:
    """The rows of ``frame`` whose columns equal the given values (``model=..., norm=...``); with ``trained_alpha``,
    only cells scored at the trained alpha (no ``eval_alpha``). An empty frame is returned as it is."""
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    for column, value in equal.items():
        keep &= frame[column] == value
    if trained_alpha:
        keep &= frame["eval_alpha"].isna()
    return frame[keep]


def _attacked(cells: pd.DataFrame, model: str, norm: str, arms) -> pd.DataFrame:
    c = select_rows(cells, model=model, norm=norm, kind="attack", trained_alpha=True)
    return c[c["arm"].isin(list(arms))] if not c.empty else c


def adaptive_radii(cells: pd.DataFrame, model: str, norm: str, arms) -> set[float]:
    """The eps keys at which an adaptive attack (BPDA, surrogate gradient, transfer) was run against any of ``arms``
    (corrected protocol only): elsewhere their worst case holds adaptive attacks only from smaller radii."""
    c = _attacked(cells, model, norm, arms)
    return set(c.loc[c["grad"].isin(ADAPTIVE_GRADS) | c["transfer"].astype(bool), "eps_key"]) if not c.empty else set()


def unchecked_radii(cells: pd.DataFrame, model: str, norm: str, arms) -> set[float]:
    """The attacked radii (eps > 0) of ``arms`` at which no adaptive attack was run against them."""
    c = _attacked(cells, model, norm, arms)
    attacked = set(c.loc[c["eps_key"] > 0, "eps_key"]) if not c.empty else set()
    return attacked - adaptive_radii(cells, model, norm, arms)
