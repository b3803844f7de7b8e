"""The attack methods: an open registry, one file per attack (torchattacks is the engine).

A :class:`Method` says what a spec may set for it (norms, steps, step size, random start, its own parameters) and
how to build the torchattacks attack. Adding an attack is one file with one ``register(Method(...))`` call; the
spec validation, the sweep, the results table and the report pick it up from the registry.

torchattacks is imported inside the builders only, so everything else (training, reports) works without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...runfolder.cell import MethodKind

__all__ = [
    "Param",
    "Method",
    "METHODS",
    "register",
    "get_method",
    "method_names",
    "engine",
    "EngineMissingError",
    "ENGINE_MISSING",
]


ENGINE_MISSING = (
    "attacks need torchattacks, which is not installed (training and reports do not need it): "
    'pip install "torchattacks>=3.5,<3.6" && pip install "requests>=2.32.4"'
)


class EngineMissingError(ModuleNotFoundError):
    """torchattacks is not installed (it is needed to run attacks, not to train or to build reports)."""


def engine():
    """The torchattacks module, imported on first use, or a clear error saying how to install it."""
    try:
        import torchattacks
    except ImportError:
        raise EngineMissingError(ENGINE_MISSING, name="torchattacks") from None
    return torchattacks


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
            returning a callable ``(x, y) -> x_adv`` (a torchattacks attack).
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
        params: its own parameters with defaults.
        paper: the reference, for docs and reports.
    """

    name: str
    label: str
    norms: tuple[str, ...]
    build: Callable[..., Any]
    default_steps: int
    steps_word: str = "steps"
    takes_step_size: bool = False
    single_step: bool = False
    random_start: str = "always"
    uses_gradient: bool = True
    targeted: bool = False
    per_sample_random: bool = False
    scores_iterates: bool = False
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


from . import apgd, fab, fgsm, pgd, square  # noqa: E402,F401  (each registers its method)
