"""Planning a sweep: which cells a spec asks for on the arms of a run (pure: no files, no models).

A *cell* is one attack configuration at one radius on one evaluated arm and the first ``n`` test images. Its id
is a stable hash of its key (docs/run-format.md), so a rerun finds what is done. Clean cells (one per arm, n and
evaluation alpha) come first; chained attacks (AutoAttack) point at the cell whose survivors they attack.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..attack.gradients import crafting_mode
from ..attack.methods import DEFAULT_ENGINE, Method, current_engine, get_method
from ..attack.spec import DEFAULT_BATCH_SIZE, AttackSpec, AttackSpecError, SpecFile, resolve_step_size
from ..runfolder.cell import Cell, Setting

__all__ = ["ArmInfo", "Cell", "clean_cell", "plan_cells", "plan_spec", "resolve_n"]


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

    def cell(self, setting: Setting, n: int, batch_size: int = DEFAULT_BATCH_SIZE) -> Cell:
        """``setting`` on this arm and the first ``n`` test images."""
        return Cell(self.model, self.arm, self.dataset, self.train_seed, setting, n, batch_size)


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
    return info.cell(Setting.clean(eval_alpha), n, batch_size)


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


def _grad_lines(spec: AttackSpec, method: Method, arm: str, source: ArmInfo, heads: Mapping[tuple, str]) -> list:
    """(recorded grad, chain line) pairs of one arm: the crafting modes on a JPEG source (each kept on the deployed
    forward); a gradient-free cell of a chain runs once per gradient line of that chain."""
    if not method.uses_gradient:
        lines = sorted({k[2] for k in heads if k[0] == spec.chain and k[1] == arm}) or ["none"]
        return [("none", line) for line in lines] if spec.chain else [("none", "none")]
    if source.has_jpeg:
        return [(crafting_mode(source.deployed, g), g) for g in spec.grad]
    return [("none", "none")]


def _step(spec: AttackSpec, method: Method, eps: float) -> tuple[float, str]:
    """The step size of one radius and the rule it came from."""
    if method.single_step:
        return eps, "eps"
    if method.takes_step_size:
        return resolve_step_size(spec.step_size, eps, spec.steps, spec.norm)
    return 0.0, "auto"


def _setting(
    spec: AttackSpec, method: Method, eps: float, grad: str, source: str, after: str, line: str, below: str = ""
) -> Setting:
    step, rule = _step(spec, method, eps)
    return Setting(
        attack=spec.method,
        method_kind=method.kind,
        attack_label=method.display_name(spec.steps),
        norm=spec.norm,
        eps=float(eps),
        steps=int(spec.steps),
        step_size=float(step),
        step_rule=rule,
        restarts=int(spec.restarts),
        random_start=bool(spec.random_start),
        grad=grad,
        surrogate_alpha=spec.surrogate_alpha if grad.startswith("surrogate") else None,
        eval_alpha=spec.eval_alpha,
        source_arm=source,
        attack_seed=int(spec.seed),
        engine="" if current_engine() == DEFAULT_ENGINE else current_engine(),
        after=after,
        cascade=spec.cascade,
        below=below,
        params=spec.params,
        chain_grad=line if spec.chain else "",
    )


def plan_cells(
    spec: AttackSpec, arms: Mapping[str, ArmInfo], test_size: int, chain_heads: dict[tuple, str] | None = None
) -> list[Cell]:
    """The cells of one attack on a run's arms: clean cells of the evaluated arms first, then (arm, grad, eps).

    ``chain_heads`` (used by :func:`plan_spec`) maps (chain, arm, grad, eps) to the last cell of that chain line;
    chained cells point at it and replace it. In a radius cascade (``spec.cascade``) the radii are planned from the
    smallest up and each cell points (``below``) at the same line's cell at the next smaller radius.
    """
    method = get_method(spec.method)
    n = resolve_n(spec.n_examples, test_size)
    targets = _eval_arms(spec, arms)
    heads = chain_heads if chain_heads is not None else {}
    cells = [clean_cell(arms[a], n, spec.batch_size, spec.eval_alpha) for a in targets]
    for arm in targets:
        info, source = arms[arm], arms[spec.transfer_from or arm]
        for grad, line in _grad_lines(spec, method, arm, source, heads):
            below = ""
            for eps in sorted(spec.eps) if spec.cascade else spec.eps:
                head_key = (spec.chain, arm, line, round(eps, 12))
                after = heads.get(head_key, "") if spec.chain and chain_heads is not None else ""
                setting = _setting(spec, method, eps, grad, spec.transfer_from or "", after, line, below)
                cell = info.cell(setting, n, spec.batch_size)
                below = cell.cell_id if spec.cascade else ""
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
