"""From loaded runs to labelled cells with per-sample vectors, worst-case cells, paired differences and seed means.

A *cell* is one (run, arm, attack setting, eps) evaluation with its per-sample correctness vector. Labels:

* ``FGSM``, ``PGD-10``, ``PGD-10, 5 restarts`` (+ ``, L2`` for L2 attacks) name the attack family;
* a step rule / random start qualifier is added only when several occur for the same family;
* ``(soft)``/``(bpda)`` is added when both gradient modes were run through the JPEG-DL quantizer;
* ``transfer from baseline`` / ``transfer from JPEG-DL`` marks examples crafted on the other arm.

Eps 0 is the clean accuracy (the arm's ``clean`` cell, on the same first-n images as the attack column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .load import Run
from .stats import mean_std, paired_from_samples

ARM_DISPLAY = {"baseline": "baseline", "jpegdl": "JPEG-DL"}
WORST = "worst case (all attacks)"
CLEAN = "clean"


def arm_name(arm: str) -> str:
    return ARM_DISPLAY.get(arm, arm)


def eps_key(norm: str, eps: float) -> float:
    """The table's eps: in 1/255 units for L-inf, raw [0, 1]-scale radius for L2 (rounded to merge float noise)."""
    return round(eps * 255.0, 4) if norm == "linf" else round(eps, 6)


def _family(row) -> str:
    name = {"fgsm": "FGSM", "pgd": f"PGD-{row.steps}"}.get(row.attack, f"{row.attack.upper()}-{row.steps}")
    if row.restarts > 1:
        name += f", {row.restarts} restarts"
    return name + (", L2" if row.norm == "l2" else "")


def label_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Add ``transfer``, ``grad`` (normalised), ``family``, ``pair`` (the setting both arms share), ``label``, eps."""
    rows = rows.copy()
    src = rows["source_arm"].astype(str)
    rows["source_arm"] = src.where(~src.isin(["", "nan", "None"]), rows["arm"].astype(str))
    rows["transfer"] = rows["source_arm"] != rows["arm"]
    # gradients through a quantizer exist only when the examples were crafted on the JPEG-DL arm
    rows["grad"] = np.where(rows["source_arm"] == "jpegdl", rows["grad"].astype(str), "none")
    is_attack = rows["attack"] != CLEAN
    rows["family"] = [_family(r) if a else CLEAN for r, a in zip(rows.itertuples(), is_attack, strict=True)]
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
        pairs.append(pair)
    rows["pair"] = pairs
    crafted_on_jpeg = is_attack & (rows["source_arm"] == "jpegdl")
    n_grads = rows[crafted_on_jpeg].groupby(["model", "pair"])["grad"].nunique()
    labels = []
    for r, on_jpeg in zip(rows.itertuples(), crafted_on_jpeg, strict=True):
        label = r.pair
        if on_jpeg and n_grads.get((r.model, r.pair), 0) > 1:
            label += f" ({r.grad})"
        if r.transfer:
            label += f" transfer from {arm_name(r.source_arm)}"
        labels.append(label)
    rows["label"] = labels
    rows["eps_key"] = [0.0 if r.attack == CLEAN else eps_key(r.norm, r.eps) for r in rows.itertuples()]
    key = ["run", "arm", "norm", "label", "eps_key"]
    # the same setting and seed run on different numbers of images (two specs): keep the largest n only
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
    rows = label_rows(pd.concat(frames, ignore_index=True))
    vectors: list[np.ndarray] = []
    records: list[dict] = []
    by_run = {run.name: run for run in runs}

    def add(base: dict, vec: np.ndarray, **kw) -> None:
        vectors.append(vec)
        records.append({**base, **kw, "n": int(vec.size), "n_correct": int(vec.sum()), "acc": float(vec.mean()),
                        "sid": len(vectors) - 1})

    meta = ["run", "model", "dataset", "train_seed", "arm"]
    for r in rows.itertuples(index=False):
        if r.attack != CLEAN:
            add({k: getattr(r, k) for k in meta}, by_run[r.run].samples[r.cell_id], norm=r.norm, eps_key=r.eps_key,
                eps=r.eps, label=r.label, pair=r.pair, family=r.family, grad=r.grad, transfer=bool(r.transfer),
                kind="attack")
    attack_cells = pd.DataFrame(records)
    clean_rows = rows[rows["attack"] == CLEAN].sort_values("n")
    clean = {(r.run, r.arm): by_run[r.run].samples[r.cell_id] for r in clean_rows.itertuples()}
    clean_meta = {(r.run, r.arm): {k: getattr(r, k) for k in meta} for r in clean_rows.itertuples()}
    # eps 0 of every attack column = the clean cell on the same first-n images
    if not attack_cells.empty:
        for (run, arm, norm, label), grp in attack_cells.groupby(["run", "arm", "norm", "label"], sort=False):
            if (run, arm) in clean and not (grp["eps_key"] == 0).any():
                first = grp.iloc[0]
                vec = clean[(run, arm)][: int(grp["n"].max())]
                add(clean_meta[(run, arm)], vec, norm=norm, eps_key=0.0, eps=0.0, label=label, pair=first["pair"],
                    family=first["family"], grad=first["grad"], transfer=bool(first["transfer"]), kind="clean")
    norms = sorted(set(attack_cells["norm"])) if not attack_cells.empty else ["linf"]
    for (run, arm), vec in clean.items():  # a "clean" column only when no attack was run for that arm
        if attack_cells.empty or attack_cells[(attack_cells["run"] == run) & (attack_cells["arm"] == arm)].empty:
            for norm in norms:
                add(clean_meta[(run, arm)], vec, norm=norm, eps_key=0.0, eps=0.0, label=CLEAN, pair=CLEAN,
                    family=CLEAN, grad="none", transfer=False, kind="clean")
    _add_worst_case(records, vectors, attack_cells, clean, clean_meta, add)
    cells = pd.DataFrame(records)
    return cells, vectors


def _add_worst_case(records, vectors, attack_cells, clean, clean_meta, add) -> None:
    """Per (run, arm, norm, eps): correct only if correct under every attack at that eps, on the common first-n."""
    if attack_cells.empty:
        return
    for (run, arm, norm), grp in attack_cells.groupby(["run", "arm", "norm"], sort=False):
        base = {k: grp.iloc[0][k] for k in ("run", "model", "dataset", "train_seed", "arm")}
        common = dict(norm=norm, label=WORST, pair=WORST, family=WORST, grad="none", transfer=False)
        if (run, arm) in clean:
            add(clean_meta[(run, arm)], clean[(run, arm)][: int(grp["n"].max())], eps_key=0.0, eps=0.0,
                kind="worst", components=CLEAN, **common)
        for key, at_eps in grp.groupby("eps_key"):
            m = int(at_eps["n"].min())
            vec = np.logical_and.reduce([vectors[s][:m] for s in at_eps["sid"]])
            add(base, vec, eps_key=key, eps=float(at_eps["eps"].iloc[0]), kind="worst",
                components="; ".join(sorted(at_eps["label"])), **common)


def paired_differences(cells: pd.DataFrame, vectors: list[np.ndarray]) -> pd.DataFrame:
    """JPEG-DL minus baseline per run, norm, eps and JPEG-DL white-box label, on the common first-n images.

    The baseline partner is the baseline's white-box cell of the same setting (``pair``): the baseline has no
    quantizer, so its one white-box number is the partner of both the soft and the BPDA JPEG-DL attack.
    Transfer cells are not paired (the two arms face different examples).
    """
    out = []
    whitebox = cells[~cells["transfer"]]
    jp, bl = whitebox[whitebox["arm"] == "jpegdl"], whitebox[whitebox["arm"] == "baseline"]
    partners = {(r.run, r.norm, r.pair, r.eps_key): r for r in bl.itertuples()}
    for r in jp.itertuples():
        partner = partners.get((r.run, r.norm, r.pair, r.eps_key))
        if partner is None:
            continue
        m = min(r.n, partner.n)
        jpeg, base = vectors[r.sid][:m], vectors[partner.sid][:m]
        stat = paired_from_samples(jpeg, base)
        out.append({"run": r.run, "model": r.model, "train_seed": r.train_seed, "norm": r.norm, "eps_key": r.eps_key,
                    "label": r.label, "baseline_label": partner.label, "kind": r.kind,
                    "acc_jpegdl": float(jpeg.mean()), "acc_baseline": float(base.mean()), **stat.as_dict()})
    return pd.DataFrame(out)


def aggregate_seeds(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and number of seeds of ``value`` over runs, per ``keys``."""
    rows = []
    for key, grp in frame.groupby(keys, sort=False, dropna=False):
        mean, std, k = mean_std(grp[value])
        rows.append({**dict(zip(keys, key, strict=True)), "mean": mean, "std": std, "seeds": k,
                     "n_min": int(grp["n"].min()), "n_max": int(grp["n"].max())})
    return pd.DataFrame(rows)
