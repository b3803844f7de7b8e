"""Planning a sweep: which cells a spec asks for on the arms of a run (pure: no files, no models).

A *cell* is one attack configuration at one radius on one evaluated arm and the first ``n`` test images. Its id
is a stable hash of its key (docs/run-format.md), so a rerun finds what is done. Clean cells (one per arm, n and
evaluation alpha) come first; chained attacks (AutoAttack) point at the cell whose survivors they attack.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..evaluation import CellTerms
from ..runfolder import ROW_FORMAT, arm_display
from .gradients import crafting_mode
from .methods import METHODS, get_method
from .spec import DEFAULT_BATCH_SIZE, AttackSpec, AttackSpecError, SpecFile, resolve_step_size

__all__ = ["ArmInfo", "Cell", "clean_cell", "plan_cells", "plan_spec", "attack_name", "radius_text", "resolve_n"]


@dataclass(frozen=True)
class ArmInfo:
    """What planning needs to know about one trained arm (from its model card)."""

    arm: str
    model: str
    dataset: str
    train_seed: int | None
    has_jpeg: bool
    deployed: str = "soft"  # the deployed quantizer of a JPEG arm (soft, or hard for a fixed standard JPEG)

    @property
    def soft_quantizer(self) -> bool:
        """A JPEG arm deployed with the soft quantizer: the only kind an evaluation-time alpha changes."""
        return self.has_jpeg and self.deployed == "soft"


@dataclass(frozen=True)
class Cell:
    """One attack configuration at one radius on one evaluated arm. ``KEY_FIELDS`` define ``cell_id``."""

    model: str
    arm: str
    dataset: str
    train_seed: int | None
    attack: str  # clean, or a method name (fgsm, pgd, apgd-ce, ...)
    norm: str  # none (clean) | linf | l2
    eps: float
    steps: int
    step_size: float
    restarts: int
    random_start: bool
    grad: str  # none | soft | hard | bpda | bpda-hard | surrogate
    source_arm: str
    attack_seed: int
    n: int
    params: tuple[tuple[str, float], ...] = ()
    surrogate_alpha: float | None = None
    eval_alpha: float | None = None
    after: str = ""  # id of the cell whose survivors this one attacks (chains), "" otherwise
    step_rule: str = "none"  # not part of the key (step_size is)
    batch_size: int = DEFAULT_BATCH_SIZE  # not part of the key
    chain_grad: str = ""  # not part of the key: the gradient mode of the chain a gradient-free cell ends

    KEY_FIELDS = (
        "model",
        "arm",
        "dataset",
        "train_seed",
        "attack",
        "norm",
        "eps",
        "steps",
        "step_size",
        "restarts",
        "random_start",
        "grad",
        "source_arm",
        "attack_seed",
        "n",
        "params",
        "surrogate_alpha",
        "eval_alpha",
        "after",
    )

    def key(self) -> dict[str, Any]:
        key: dict[str, Any] = {"format": ROW_FORMAT, **{f: getattr(self, f) for f in self.KEY_FIELDS}}
        key["eps"] = f"{self.eps:.12g}"
        key["step_size"] = f"{self.step_size:.12g}"
        key["params"] = dict(self.params)
        for name in ("surrogate_alpha", "eval_alpha"):
            key[name] = None if key[name] is None else f"{key[name]:.12g}"
        return key

    @property
    def cell_id(self) -> str:
        return hashlib.sha1(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def is_clean(self) -> bool:
        return self.attack == "clean"

    def label(self) -> str:
        if self.is_clean:
            alpha = f" (eval alpha {self.eval_alpha:g})" if self.eval_alpha is not None else ""
            return f"{arm_display(self.arm)} clean{alpha}"
        name = attack_name(self.attack, self.norm, self.steps, self.restarts)
        grad = f" ({self.grad})" if self.grad != "none" else ""
        src = f" from {arm_display(self.source_arm)}" if self.source_arm != self.arm else ""
        alpha = f", eval alpha {self.eval_alpha:g}" if self.eval_alpha is not None else ""
        chained = (
            (f" (chained after the {self.chain_grad} attacks)" if self.chain_grad not in ("", "none") else " (chained)")
            if self.after
            else ""
        )
        return f"{arm_display(self.arm)} {name}{grad}{src}{chained} eps {radius_text(self.eps, self.norm)}{alpha}"


def attack_name(attack: str, norm: str, steps: int, restarts: int) -> str:
    """The one name of an attack setting used by tables, checks and the CLI: ``FGSM``, ``PGD-20``,
    ``PGD-100, 5 restarts``, ``APGD-T-100``, ``Square-5000`` (queries), with ``, L2`` for L2 attacks."""
    method = METHODS.get(attack)
    label = method.label if method is not None else attack.upper()
    name = label if attack == "fgsm" else f"{label}-{int(steps)}"
    if int(restarts) > 1:
        name += f", {int(restarts)} restarts"
    return name + (", L2" if norm == "l2" else "")


def radius_text(eps: float, norm: str) -> str:
    return f"{eps * 255:.4g}/255" if norm == "linf" else f"{eps:.4g} (L2)"


def row_label(r: Any) -> str:
    """A results row's name in the sanity checks' texts: ``PGD-20 (bpda) from baseline at 4/255 (n=500)``."""
    name = attack_name(r.attack, r.norm, int(r.steps), int(r.restarts))
    grad = f" ({r.grad})" if r.grad not in ("none", "") else ""
    src = f" from {r.source_arm}" if r.source_arm != r.arm else ""
    chained = " (chained)" if r.after else ""
    alpha = f" [eval alpha {r.eval_alpha:g}]" if pd.notna(r.eval_alpha) else ""
    return f"{name}{grad}{src}{chained} at {radius_text(float(r.eps), r.norm)}{alpha} (n={int(r.n)})"


def cell_terms() -> CellTerms:
    """What the judgement (:mod:`robustbench_jpeg.evaluation`) needs to know about the attack methods."""
    return CellTerms(row_label, frozenset(m.name for m in METHODS.values() if not m.uses_gradient))


def resolve_n(n_examples: int | None, test_size: int) -> int:
    """The number of images a spec attacks on a test set of ``test_size`` (all when None; at most all, with a
    warning)."""
    if n_examples is not None and n_examples > test_size:
        warnings.warn(
            f"n_examples={n_examples} exceeds the test set ({test_size} images); using all {test_size}", stacklevel=3
        )
        return test_size
    return test_size if n_examples is None else int(n_examples)


def clean_cell(info: ArmInfo, n: int, batch_size: int = DEFAULT_BATCH_SIZE, eval_alpha: float | None = None) -> Cell:
    return Cell(
        model=info.model,
        arm=info.arm,
        dataset=info.dataset,
        train_seed=info.train_seed,
        attack="clean",
        norm="none",
        eps=0.0,
        steps=0,
        step_size=0.0,
        restarts=0,
        random_start=False,
        grad="none",
        source_arm=info.arm,
        attack_seed=0,
        n=n,
        eval_alpha=eval_alpha,
        batch_size=batch_size,
    )


def _eval_arms(spec: AttackSpec, arms: Mapping[str, ArmInfo]) -> list[str]:
    if spec.transfer_from is None:
        return list(arms)
    if spec.transfer_from not in arms:
        raise AttackSpecError(
            f"transfer_from={spec.transfer_from!r} but the run has no {spec.transfer_from!r} arm "
            f"(arms: {', '.join(arms)})"
        )
    targets = [a for a in arms if a != spec.transfer_from]
    if not targets:
        raise AttackSpecError(f"transfer_from={spec.transfer_from!r} needs another arm to evaluate on")
    return targets


def plan_cells(
    spec: AttackSpec, arms: Mapping[str, ArmInfo], test_size: int, chain_heads: dict[tuple, str] | None = None
) -> list[Cell]:
    """The cells of one attack on a run's arms: clean cells of the evaluated arms first, then (arm, grad, eps).

    ``chain_heads`` (used by :func:`plan_spec`) maps (chain, arm, grad, eps) to the last cell of that chain line;
    chained cells point at it and replace it.
    """
    method = get_method(spec.method)
    n = resolve_n(spec.n_examples, test_size)
    targets = _eval_arms(spec, arms)
    cells = [clean_cell(arms[a], n, spec.batch_size, spec.eval_alpha) for a in targets]
    for arm in targets:
        info, source = arms[arm], arms[spec.transfer_from or arm]
        if not method.uses_gradient:
            lines = sorted({k[2] for k in (chain_heads or {}) if k[0] == spec.chain and k[1] == arm}) or ["none"]
            grads = [("none", line) for line in lines] if spec.chain else [("none", "none")]
        elif source.has_jpeg:
            grads = [(crafting_mode(source.deployed, g), g) for g in spec.grad]
        else:
            grads = [("none", "none")]
        for grad, line in grads:
            for eps in spec.eps:
                step, rule = (
                    (eps, "eps")
                    if spec.method == "fgsm"
                    else (
                        resolve_step_size(spec.step_size, eps, spec.steps, spec.norm)
                        if method.takes_step_size
                        else (0.0, "auto")
                    )
                )
                head_key = (spec.chain, arm, line, round(eps, 12))
                after = chain_heads.get(head_key, "") if spec.chain and chain_heads is not None else ""
                cell = Cell(
                    model=info.model,
                    arm=arm,
                    dataset=info.dataset,
                    train_seed=info.train_seed,
                    attack=spec.method,
                    norm=spec.norm,
                    eps=float(eps),
                    steps=int(spec.steps),
                    step_size=float(step),
                    restarts=int(spec.restarts),
                    random_start=bool(spec.random_start),
                    grad=grad,
                    source_arm=source.arm,
                    attack_seed=int(spec.seed),
                    n=n,
                    params=spec.params,
                    surrogate_alpha=spec.surrogate_alpha if grad == "surrogate" else None,
                    eval_alpha=spec.eval_alpha,
                    after=after,
                    step_rule=rule,
                    batch_size=spec.batch_size,
                    chain_grad=line if spec.chain else "",
                )
                if spec.chain and chain_heads is not None:
                    chain_heads[head_key] = cell.cell_id
                cells.append(cell)
    return cells


def plan_spec(spec: SpecFile, arms: Mapping[str, ArmInfo], test_size: int) -> list[Cell]:
    """Every distinct cell of a spec file, in plan order, chains linked in the order of the file."""
    heads: dict[tuple, str] = {}
    seen: set[str] = set()
    cells: list[Cell] = []
    for attack in spec.attacks:
        for cell in plan_cells(attack, arms, test_size, heads):
            if cell.cell_id not in seen:
                seen.add(cell.cell_id)
                cells.append(cell)
    return cells


def arm_infos_from_cards(cards: Mapping[str, Any], deployed: Mapping[str, str] | None = None) -> dict[str, ArmInfo]:
    """:class:`ArmInfo` per arm from model cards (``ModelCard`` objects)."""
    return {
        arm: ArmInfo(
            arm=arm,
            model=c.model,
            dataset=c.dataset,
            train_seed=c.seed,
            has_jpeg=bool(c.jpeg),
            deployed=(deployed or {}).get(arm, "soft"),
        )
        for arm, c in cards.items()
    }


def cells_by_id(cells: Sequence[Cell]) -> dict[str, Cell]:
    return {c.cell_id: c for c in cells}
