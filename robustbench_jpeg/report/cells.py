"""From loaded runs to labelled cells with per-sample vectors, worst-case cells, paired differences and seed means.

A *cell* is one (run, arm, attack setting, eps) evaluation with its per-sample correctness vector. Labels:

* ``FGSM``, ``PGD-10``, ``PGD-10, 5 restarts``, ``APGD-T-100``, ``Square-5000`` (+ ``, L2`` for L2 attacks) name
  the attack (:func:`robustbench_jpeg.runfolder.cell.attack_name`); a chained cell (AutoAttack) is named by its chain,
  ``APGD-CE-100 → APGD-T-100``, since its accuracy is cumulative; ``, cascade`` ends the name of a radius cascade
  (robust under the attack at every radius of its sweep up to eps);
* a step rule / random start qualifier is added only when several occur for the same family;
* ``(soft)``, ``(bpda)``, ``(bpda-hard)``, ``(surrogate)`` is added when several gradient modes were run through
  the JPEG-DL quantizer; ``transfer from baseline`` marks examples crafted on the other arm;
* ``[eval alpha 1]`` marks cells scored with an evaluation-time alpha (the official script's protocol).

Eps 0 is the clean accuracy (the arm's ``clean`` cell, on the same first-n images as the attack column). The
worst case comes from :func:`robustbench_jpeg.evaluation.worst_cases`: every attack at eps' <= eps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation import ADAPTIVE_GRADS, worst_cases
from ..runfolder import arm_display
from ..runfolder.cell import CASCADE_SUFFIX, Setting, attack_name, eps_key, eps_text
from ..stats import mean_std
from .load import Run

WORST = "worst case (all attacks)"
CLEAN = "clean"


def arm_name(arm: str) -> str:
    return arm_display(arm)


def worst_label(primary: bool, tier: int, eval_alpha: float | None = None) -> str:
    label = WORST if primary else f"worst case (attacks on >= {tier} images)"
    return label + (f" [eval alpha {eval_alpha:g}]" if eval_alpha is not None else "")


def _family(row, names: dict[str, str]) -> str:
    own = attack_name(Setting.from_row(row))
    after = str(row.after) if isinstance(row.after, str) else ""
    if not (after and after in names):
        return own
    before = names[after].removesuffix(CASCADE_SUFFIX) if own.endswith(CASCADE_SUFFIX) else names[after]
    return f"{before} → {own.replace(', L2', '', 1)}"


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


def _pair_bases(rows: pd.DataFrame) -> list[str]:
    """The setting both arms share, as text (the family, with a step rule / random start qualifier where several
    occur for the same family)."""
    attacks = rows[rows["attack"] != CLEAN]
    rule_varies = attacks.groupby(["model", "family"])["step_rule"].nunique() > 1
    start_varies = attacks.groupby(["model", "family"])["random_start"].nunique() > 1
    bases = []
    for r in rows.itertuples():
        base = r.family
        if r.attack != CLEAN and rule_varies.get((r.model, r.family), False):
            base += f", step {r.step_rule}"
        if r.attack != CLEAN and start_varies.get((r.model, r.family), False) and not _truthy(r.random_start):
            base += ", no random start"
        bases.append(base)
    return bases


def _variant(grad_shown: str, transfer: bool, source_arm: str, eval_alpha) -> str:
    """What distinguishes a column inside one setting: ``bpda-hard``, ``transfer from baseline``, ``alpha 1``."""
    parts = [grad_shown] if grad_shown else []
    if transfer:
        parts.append(f"transfer from {arm_name(source_arm)}")
    text = " ".join(parts)
    if pd.notna(eval_alpha):
        text = (text + ", " if text else "") + f"scored at alpha {float(eval_alpha):g}"
    return text


def label_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Add typed columns (``transfer``, ``grad`` normalised, ``family``, ``pair_base`` the setting both arms share,
    ``grad_shown``, ``variant``, ``followed`` and ``chain_spec`` for chains) and the text made from them: ``pair``
    (the setting with its eval alpha), ``label``
    and ``eps_key``."""
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
    rows["pair_base"] = _pair_bases(rows)
    rows["pair"] = [b + _alpha_suffix(a) for b, a in zip(rows["pair_base"], rows["eval_alpha"], strict=True)]
    rows["label_grad"] = _chain_grads(rows)
    crafted_on_quantizer = is_attack & (rows["label_grad"] != "none")
    n_grads = rows[crafted_on_quantizer].groupby(["model", "pair"])["label_grad"].nunique()
    rows["grad_shown"] = [
        r.label_grad if on_q and (n_grads.get((r.model, r.pair), 0) > 1 or r.label_grad != "soft") else ""
        for r, on_q in zip(rows.itertuples(), crafted_on_quantizer, strict=True)
    ]
    rows["label"] = [
        r.pair_base
        + (f" ({r.grad_shown})" if r.grad_shown else "")
        + _alpha_suffix(r.eval_alpha)
        + (f" transfer from {arm_name(r.source_arm)}" if r.transfer else "")
        for r in rows.itertuples()
    ]
    rows["variant"] = [_variant(r.grad_shown, r.transfer, r.source_arm, r.eval_alpha) for r in rows.itertuples()]
    rows["eps_key"] = [0.0 if r.attack == CLEAN else eps_key(r.norm, r.eps) for r in rows.itertuples()]
    # chains: a cell another cell follows is a cumulative step of its chain; a chained cell carries its spec's name
    rows["followed"] = rows["cell_id"].astype(str).isin(set(rows["after"]) - {""})
    spec = rows["spec"].fillna("").astype(str) if "spec" in rows else ""
    rows["chain_spec"] = np.where((rows["after"] != "") | rows["followed"], spec, "")
    return rows


def _component(r) -> str:
    """A cell's name in a worst case's list of components: ``PGD-20 (bpda) at 2/255``."""
    return f"{r.label} at {eps_text(float(r.eps), str(r.norm))}"


def display_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The cells shown as columns: one per setting and attack seed (the largest n of a setting run at two sizes;
    every size still enters the worst case). Settings run with several attack seeds are labelled by seed."""
    key = ["run", "arm", "norm", "label", "eps_key"]
    rows = rows.sort_values("n", ascending=False, kind="stable")
    rows = rows[~rows.duplicated([*key, "attack_seed"], keep="first")].sort_index()
    dup = rows.duplicated(key, keep=False)
    if dup.any():  # same setting run twice with different attack seeds: keep both, labelled
        suffix = pd.Series([f" [attack seed {s}]" for s in rows["attack_seed"]], index=rows.index)
        for column in ("label", "pair", "pair_base"):
            rows.loc[dup, column] += suffix[dup]
        rows.loc[dup, "variant"] = [
            (v + " " if v else "") + f"attack seed {s}"
            for v, s in rows.loc[dup, ["variant", "attack_seed"]].itertuples(index=False)
        ]
        still = rows.duplicated(key, keep=False)
        rows.loc[still, "label"] += [f" #{i + 1}" for i in rows[still].groupby(key).cumcount()]
    return rows


def _truthy(value) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "off", "")


META = ["run", "model", "dataset", "train_seed", "arm"]
_DESCRIBE = ["label", "pair", "pair_base", "variant", "family", "grad", "label_grad", "grad_shown", "transfer"]
_DESCRIBE += ["eval_alpha"]
_DESCRIBE += ["steps", "step_rule", "after", "followed", "chain_spec"]
_NOT_AN_ATTACK = dict(
    grad="none",
    label_grad="none",
    grad_shown="",
    transfer=False,
    steps=np.nan,
    step_rule="",
    after="",
    followed=False,
    chain_spec="",
)


class _CellTable:
    """The cells collected so far: one record (typed columns, the label text beside them) and one vector each."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.vectors: list[np.ndarray] = []

    def add(self, base: dict, vec: np.ndarray, **kw) -> None:
        self.vectors.append(vec)
        n, correct = int(vec.size), int(vec.sum())
        acc = float(vec.mean()) if n else float("nan")
        self.records.append({**base, **kw, "n": n, "n_correct": correct, "acc": acc, "sid": len(self.vectors) - 1})

    def has(self, **equal) -> bool:
        return any(all(rec.get(k) == v for k, v in equal.items()) for rec in self.records)


class _Clean:
    """The clean cells of every (run, arm), at the trained alpha and at each evaluation alpha (smallest n first)."""

    def __init__(self, rows: pd.DataFrame, by_run: dict[str, Run]) -> None:
        clean_rows = rows[rows["attack"] == CLEAN].sort_values("n")
        trained = clean_rows[clean_rows["eval_alpha"].isna()]
        self.vectors = {(r.run, r.arm): by_run[r.run].samples[r.cell_id] for r in trained.itertuples()}
        self.meta = {(r.run, r.arm): {k: getattr(r, k) for k in META} for r in trained.itertuples()}
        self.alpha = {
            (r.run, r.arm, float(r.eval_alpha)): by_run[r.run].samples[r.cell_id]
            for r in clean_rows[clean_rows["eval_alpha"].notna()].itertuples()
        }

    def of(self, run: str, arm: str, alpha) -> np.ndarray | None:
        return self.vectors.get((run, arm)) if pd.isna(alpha) else self.alpha.get((run, arm, float(alpha)))


def build_cells(runs: list[Run]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """All cells (attack, synthesised eps-0 clean, worst case) with an index ``sid`` into the returned vectors, and
    the columns' typed order (``label_rank``, ``pair_rank``)."""
    labelled = label_rows(pd.concat([run.results.assign(run=run.name) for run in runs], ignore_index=True))
    rows = display_rows(labelled)
    by_run = {run.name: run for run in runs}
    table, clean = _CellTable(), _Clean(rows, by_run)
    for r in rows[rows["attack"] != CLEAN].itertuples(index=False):
        describe = {k: getattr(r, k) for k in _DESCRIBE} | {"transfer": bool(r.transfer)}
        sample = by_run[r.run].samples[r.cell_id]
        table.add(
            {k: getattr(r, k) for k in META},
            sample,
            norm=r.norm,
            eps_key=r.eps_key,
            eps=r.eps,
            kind="attack",
            **describe,
        )
    attack_cells = pd.DataFrame(table.records)
    _add_clean_points(table, attack_cells, clean)
    _add_clean_columns(table, attack_cells, clean)
    for run in runs:  # the worst case uses every attack row, every n
        _add_worst_cases(table, run, labelled[(labelled["run"] == run.name) & (labelled["attack"] != CLEAN)], clean)
    return _with_ranks(pd.DataFrame(table.records)), table.vectors


def _add_clean_points(table: _CellTable, attack_cells: pd.DataFrame, clean: _Clean) -> None:
    """Eps 0 of every attack column: the clean cell on the same first-n images."""
    if attack_cells.empty:
        return
    for (run, arm, norm, _), grp in attack_cells.groupby(["run", "arm", "norm", "label"], sort=False):
        first = grp.iloc[0]
        vec = clean.of(run, arm, first["eval_alpha"])
        if vec is not None and not (grp["eps_key"] == 0).any():
            describe = {k: first[k] for k in _DESCRIBE} | {"transfer": bool(first["transfer"])}
            table.add(
                clean.meta[(run, arm)],
                vec[: int(grp["n"].max())],
                norm=norm,
                eps_key=0.0,
                eps=0.0,
                kind="clean",
                **describe,
            )


def _add_clean_columns(table: _CellTable, attack_cells: pd.DataFrame, clean: _Clean) -> None:
    """A "clean" column only for an arm against which no attack was run."""
    norms = sorted(set(attack_cells["norm"])) if not attack_cells.empty else ["linf"]
    describe = dict(label=CLEAN, pair=CLEAN, pair_base=CLEAN, variant="", family=CLEAN, **_NOT_AN_ATTACK)
    for (run, arm), vec in clean.vectors.items():
        if attack_cells.empty or attack_cells[(attack_cells["run"] == run) & (attack_cells["arm"] == arm)].empty:
            for norm in norms:
                table.add(
                    clean.meta[(run, arm)],
                    vec,
                    norm=norm,
                    eps_key=0.0,
                    eps=0.0,
                    eval_alpha=np.nan,
                    kind="clean",
                    **describe,
                )


def _add_worst_cases(table: _CellTable, run: Run, attacks: pd.DataFrame, clean: _Clean) -> None:
    """The worst-case points of one run (with their eps-0 clean point): every attack row, every n."""
    meta_of = {r.arm: {k: getattr(r, k) for k in META} for r in attacks.itertuples()}
    for w in worst_cases(attacks, run.samples, label=_component):
        label = worst_label(w.primary, w.tier, w.eval_alpha)
        base_label = worst_label(w.primary, w.tier)
        common = dict(
            norm=w.norm,
            label=label,
            pair=label,
            pair_base=base_label,
            variant=_variant("", False, w.arm, w.eval_alpha),
            family=label,
            eval_alpha=np.nan if w.eval_alpha is None else w.eval_alpha,
            **_NOT_AN_ATTACK,
            kind="worst",
            tier=w.tier,
            primary=w.primary,
        )
        base = clean.of(run.name, w.arm, w.eval_alpha)
        eps0_point = table.has(label=label, run=run.name, arm=w.arm, norm=w.norm, eps_key=0)
        if base is not None and w.eps > 0 and not eps0_point:  # an attack at eps 0 is its own eps-0 point
            table.add(meta_of[w.arm], base[: w.tier], eps_key=0.0, eps=0.0, components=CLEAN, **common)
        components = "; ".join(w.components)
        table.add(meta_of[w.arm], w.vector, eps_key=eps_key(w.norm, w.eps), eps=w.eps, components=components, **common)


def _rank(frame: pd.DataFrame, text: str) -> dict[str, int]:
    """The position of each distinct ``text`` value (label or setting) in the report's column order, from typed
    columns: attacks before worst cases (tiers, then all attacks), white-box before transfer, clean first, then the
    attacks that take a step size by step count (FGSM, PGD-5, PGD-20, ...), the others after; BPDA after soft."""
    keys = {}
    for r in frame.itertuples():
        worst = r.kind == "worst"
        ordered_by_steps = r.kind != "worst" and r.family != CLEAN and _steps_ordered(r)
        budget = 0 if r.family == CLEAN else (1 + int(r.steps) if ordered_by_steps else 10**6)
        transfer = bool(r.transfer) and text == "label"
        bpda = str(r.grad_shown).startswith("bpda") and text == "label"
        keys.setdefault(getattr(r, text), (worst, worst and bool(r.primary), transfer, budget, bpda, getattr(r, text)))
    return {value: i for i, value in enumerate(sorted(keys, key=keys.get))}


def _steps_ordered(r) -> bool:
    """An attack ordered by its step count: one that takes a step size (its step rule is not ``auto``), unchained."""
    return not r.after and str(r.step_rule) not in ("auto", "nan", "") and pd.notna(r.steps)


def _with_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame.assign(label_rank=pd.Series(dtype=int), pair_rank=pd.Series(dtype=int))
    return frame.assign(
        label_rank=frame["label"].map(_rank(frame, "label")),
        pair_rank=frame["pair_base"].map(_rank(frame, "pair_base")),
    )


def aggregate_seeds(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and number of seeds of ``value`` over runs, per ``keys``; ``n_correct`` is the sum
    over runs (with one seed: the correct images behind the accuracy, for its Wilson interval). The number of seeds
    is the number of distinct training seeds; a group holds one value per seed (two are an internal error)."""
    rows = []
    for key, grp in frame.groupby(keys, sort=False, dropna=False):
        if grp["train_seed"].duplicated().any():
            raise RuntimeError(f"internal error: two cells of one training seed in the group {key} of {value}")
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
