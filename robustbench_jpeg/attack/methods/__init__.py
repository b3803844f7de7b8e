"""The attack methods: an open registry, one file per attack.

A :class:`Method` says what a spec may set for it (norms, steps, step size, random start, its own parameters) and
how to build the attack. Adding an attack is one file with one ``register(Method(...))`` call; the spec validation,
the sweep, the results table and the report pick it up from the registry.

Engines (:data:`ENGINES`): ``autoattack`` (the default) runs APGD-CE/DLR/T, FAB-T and Square on the reference code
of AutoAttack (Croce and Hein's ``pyautoattack`` package, the one RobustBench requires) and FGSM/PGD as the
toolkit's own short loops; ``torchattacks`` (the optional extra ``robustbench-jpeg[torchattacks]``) runs every
method on torchattacks' port instead, as an independent second implementation. The engine is chosen per process
with :func:`use_engine`; the engines are imported inside the builders only, so training and reports need neither.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...runfolder.cell import MethodKind
from ...runfolder.names import ENGINE_NOT_USED

__all__ = [
    "Param",
    "Method",
    "METHODS",
    "ENGINES",
    "DEFAULT_ENGINE",
    "ENGINE_NOT_USED",
    "register",
    "get_method",
    "method_names",
    "engine",
    "use_engine",
    "current_engine",
    "build_attack",
    "EngineMissingError",
    "ENGINE_MISSING",
]

ENGINES = ("autoattack", "torchattacks")
DEFAULT_ENGINE = "autoattack"
_ENGINE_MODULES = {"autoattack": "pyautoattack", "torchattacks": "torchattacks"}
ENGINE_MISSING = {
    "autoattack": "attacks need pyautoattack (AutoAttack's reference code), which is not installed: "
    "pip install pyautoattack",
    "torchattacks": "the torchattacks engine is an optional extra, not installed: "
    'pip install "robustbench-jpeg[torchattacks]"',
}
_SELECTED = contextvars.ContextVar("attack_engine", default=DEFAULT_ENGINE)


class EngineMissingError(ModuleNotFoundError):
    """The selected attack engine is not installed (it is needed to run attacks, not to train or to build reports)."""


def current_engine() -> str:
    """The engine attacks are built with in this context (``autoattack`` unless :func:`use_engine` says otherwise)."""
    return _SELECTED.get()


@contextlib.contextmanager
def use_engine(name: str) -> Iterator[None]:
    """Build attacks with engine ``name`` (one of :data:`ENGINES`) inside the block."""
    if name not in ENGINES:
        raise ValueError(f"unknown attack engine {name!r}; choose one of {', '.join(ENGINES)}")
    token = _SELECTED.set(name)
    try:
        yield
    finally:
        _SELECTED.reset(token)


def engine(name: str | None = None):
    """The module of engine ``name`` (default: the current one), imported on first use, or a clear error saying how
    to install it: ``pyautoattack`` for ``autoattack``, ``torchattacks`` for ``torchattacks``."""
    name = current_engine() if name is None else name
    module = _ENGINE_MODULES[name]
    try:
        return __import__(module)
    except ImportError:
        raise EngineMissingError(ENGINE_MISSING[name], name=module) from None


@dataclass(frozen=True)
class Param:
    """A method-specific parameter of a spec entry (e.g. ``target_classes`` of APGD-T)."""

    default: int | float
    kind: type  # int or float
    minimum: float
    help: str
    maximum: float = math.inf  # a larger value is refused (never clamped at build time, so it is stored as used)

    def check(self, name: str, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if self.kind is int and (not isinstance(value, int) and not float(value).is_integer()):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if not math.isfinite(value) or value < self.minimum:
            raise ValueError(f"{name} must be a finite number >= {self.minimum:g}, got {value!r}")
        if value > self.maximum:
            raise ValueError(f"{name} must be at most {self.maximum:g} ({self.help}), got {value!r}")
        return self.kind(value)


@dataclass(frozen=True)
class Method:
    """One attack as the harness knows it.

    Attributes:
        name: the spec's ``method`` and the results' ``attack`` value, e.g. ``apgd-ce``.
        label: how tables name it, e.g. ``APGD-CE``.
        norms: threat models it supports (``linf``, ``l2``).
        build: ``build(model, eps=, norm=, steps=, step_size=, random_start=, seed=, num_classes=, **params)``
            returning a callable ``(x, y) -> x_adv``: the default engine's attack (AutoAttack's reference code, or
            the toolkit's own loop).
        build_torchattacks: the same contract on torchattacks' port (the optional second engine).
        default_steps: iterations (queries for Square) when a spec gives none.
        steps_word: what ``steps`` counts ("steps" or "queries"), for labels and messages.
        takes_step_size: whether the spec's ``step_size`` applies (FGSM/PGD); APGD/FAB/Square choose their own.
        single_step: one step of size eps, always (FGSM): ``steps`` must be 1, no step size, no count in its name.
        random_start: ``never``, ``optional`` (spec's ``random_start``, default on) or ``always``.
        uses_gradient: False for gradient-free attacks, which always run on the deployed model.
        targeted: it attacks target classes (or minimises the perturbation towards them) rather than the loss of
            the true class, so the checks do not hold it to "no weaker than FGSM".
        per_sample_random: its random numbers can be drawn per image (results independent of batching).
        scores_iterates: it calls the model on the whole batch at every iterate, so the harness can count an image
            as broken when *any* iterate fooled the evaluated model (as AutoAttack's APGD does).
        seed_per_cell: its seed is the cell's attack seed for every batch, as AutoAttack seeds each attack with
            its one ``seed`` (so a cell reproduces ``AutoAttack(seed=...)`` image for image on the same batches);
            otherwise each batch gets a seed derived from the cell and its first image.
        params: its own parameters with defaults.
        paper: the reference, for docs and reports.
    """

    name: str
    label: str
    norms: tuple[str, ...]
    build: Callable[..., Any]
    default_steps: int
    build_torchattacks: Callable[..., Any] | None = None
    steps_word: str = "steps"
    takes_step_size: bool = False
    single_step: bool = False
    random_start: str = "always"
    uses_gradient: bool = True
    targeted: bool = False
    per_sample_random: bool = False
    scores_iterates: bool = False
    seed_per_cell: bool = False
    params: Mapping[str, Param] = field(default_factory=dict)
    paper: str = ""

    @property
    def kind(self) -> MethodKind:
        """What the judgement needs to know of this method (stored in each results row)."""
        if not self.uses_gradient:
            return MethodKind.GRADIENT_FREE
        if self.single_step:
            return MethodKind.SINGLE_STEP
        return MethodKind.TARGETED if self.targeted else MethodKind.ITERATIVE

    def display_name(self, steps: int) -> str:
        """The method with its budget as tables name it: ``FGSM``, ``PGD-20``, ``Square-5000``."""
        return self.label if self.single_step else f"{self.label}-{int(steps)}"

    def check_params(self, given: Mapping[str, Any] | None) -> dict[str, int | float]:
        """Validated parameters with defaults filled in; unknown names are an error listing the valid ones."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise ValueError(f"{self.name} has no parameter(s) {unknown}; its parameters: {valid}")
        return {name: p.check(name, given.get(name, p.default)) for name, p in sorted(self.params.items())}


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS or method.name == "clean":
        raise ValueError(f"attack method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown attack method {name!r}; choose one of {', '.join(METHODS)}") from None


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


class ReferenceAttack:
    """One of AutoAttack's attack objects as a callable ``(x, y) -> x_adv``, run as ``AutoAttack`` runs it: its
    ``perturb`` under ``torch.no_grad()`` (the attacks enable gradients where they need them)."""

    def __init__(self, attack: Any) -> None:
        self.attack = attack

    def __call__(self, x: Any, y: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.attack.perturb(x, y)


def reference_logger():
    """The logger AutoAttack gives its attacks (its zero-gradient notices go there, not to warnings)."""
    import logging

    return logging.getLogger("auto-attack")


def reference_norm(norm: str) -> str:
    return "Linf" if norm == "linf" else "L2"


def build_attack(method: Method, model: Any, **settings: Any) -> Callable[[Any, Any], Any]:
    """``method``'s attack on ``model`` built by the current engine (see :class:`Method` for ``settings``)."""
    if current_engine() == "torchattacks":
        if method.build_torchattacks is None:
            raise ValueError(f"{method.name} has no torchattacks implementation; run it with the autoattack engine")
        return method.build_torchattacks(model, **settings)
    return method.build(model, **settings)


from . import apgd, fab, fgsm, pgd, square  # noqa: E402,F401  (each registers its method)
