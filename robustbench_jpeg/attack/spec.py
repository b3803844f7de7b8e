"""Typed attack specifications and the YAML spec files (packaged in ``robustbench_jpeg/attack/specs/``).

An :class:`AttackSpec` is one attack configuration (method, norm, eps grid, steps, step size, restarts, gradient
modes, the method's own parameters, ...). A :class:`SpecFile` is a named, versioned list of them (one
``attacks/<name>.yaml`` file, or the attacks of one CLI call).

Units: in files and on the command line, L-inf radii are in 1/255 units (``eps: [1, 2, 4, 8]``) or written as a
fraction of the [0, 1] pixel scale (``8/255``); a bare L-inf radius below 0.5 is refused, because ``0.031`` (meant
as 8/255 by torchattacks habits) would run as 0.031/255. L2 radii are absolute on the [0, 1] scale (``0.5``). An
:class:`AttackSpec` always *stores* radii on the [0, 1] scale as floats. A numeric step size is in the units of
eps; the rules (``2.5*eps/steps``, ``eps/2``, ``eps``, ``0.5*eps``) are resolved per radius and recorded as
written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..runfolder import ARMS
from ..runfolder.cell import eps_text
from .gradients import GRAD_MODES
from .methods import METHODS, get_method
from .spec_values import (
    DEFAULT_STEP_RULE,
    MAX_ALPHA,
    MIN_LINF_255,
    AttackSpecError,
    checked_radii,
    flag,
    integer,
    parse_radii,
    parse_radius,
    parse_step_size,
    positive,
    resolve_step_size,
)

__all__ = [
    "NORMS",
    "GRAD_MODES",
    "DEFAULT_STEP_RULE",
    "DEFAULT_BATCH_SIZE",
    "MIN_LINF_255",
    "AttackSpecError",
    "AttackSpec",
    "SpecFile",
    "parse_step_size",
    "resolve_step_size",
    "parse_radius",
    "parse_radii",
]

NORMS = ("linf", "l2")
DEFAULT_BATCH_SIZE = 500
SPEC_FORMAT_KEYS = ("version", "description", "attacks", "n_examples", "batch_size", "seed")
_HARD = " (beyond it the soft quantizer is hard rounding in float32)"
MAX_DESCRIPTION = 2000  # characters of a spec's description (stored in sweep_state.json as given)
_OPTIONAL_FIELDS = {"params": (), "surrogate_alpha": None, "eval_alpha": None, "chain": None, "cascade": False}


# --- one attack -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackSpec:
    """One attack configuration, applied to every radius in ``eps`` and every arm of a run.

    Attributes:
        method: a registered method (``fgsm``, ``pgd``, ``apgd-ce``, ``apgd-dlr``, ``apgd-t``, ``fab-t``, ``square``;
            see ``robustbench_jpeg.attack.methods``, which also says which engine runs it).
        eps: radii on the [0, 1] pixel scale (floats). :meth:`from_dict` reads the written units.
        norm: ``linf`` or ``l2`` (the method must support it).
        steps: iterations (queries for ``square``); None = the method's default (FGSM 1, PGD 20, APGD/FAB 100,
            Square 5000).
        step_size: FGSM/PGD only: a positive number in eps units or a rule (default ``2.5*eps/steps``).
        restarts: independent runs; each attacks the images that survived the previous ones.
        random_start: PGD only (default on); FGSM has none, APGD/FAB/Square always start randomly.
        grad: crafting modes on arms with a JPEG layer: ``soft``, ``bpda``, ``bpda-hard``, ``surrogate`` (see
            :mod:`robustbench_jpeg.attack.gradients`). Arms without one get ``none``; gradient-free methods ignore it.
        transfer_from: None (white-box), or the arm whose model crafts the examples; they are evaluated on every
            other arm of the run.
        n_examples: the first n test images in test-set order (None: the whole test set).
        batch_size: images per batch (does not change which cells are computed).
        seed: attack seed.
        params: the method's own parameters (e.g. ``target_classes`` of APGD-T, ``p_init`` of Square).
        surrogate_alpha: softness of the backward quantizer of the ``surrogate`` gradient mode.
        eval_alpha: score and attack the soft-quantizer arms with this alpha instead of the trained one (the
            official robustness script's default of 1.0). Every arm's cells of such an attack carry it (it changes
            only the soft quantizers), so they form a section of their own, never mixed into the corrected protocol
            or its worst case.
        chain: AutoAttack-style ensemble: entries with the same chain name run in order, each on the images that
            survived the previous entries (same arm, gradient mode and eps).
        cascade: radius cascade: at each eps the attack runs only on the images still standing after the same attack
            at every smaller eps of the list (an example found at a smaller radius is a valid example at a larger
            one), so a cell reads "robust under this attack at every radius up to eps", the per-image worst case
            is unchanged and an expensive attack skips the images it already broke. Recorded in each cell (the
            cell it builds on, ``below``); the entries of a chain must agree. Default off; on in the AutoAttack
            specs.
    """

    method: str
    eps: tuple[float, ...]
    norm: str = "linf"
    steps: int | None = None
    step_size: float | str = DEFAULT_STEP_RULE
    restarts: int = 1
    random_start: bool | None = None
    grad: tuple[str, ...] = ("soft",)
    transfer_from: str | None = None
    n_examples: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0
    params: tuple[tuple[str, float], ...] = ()
    surrogate_alpha: float | None = None
    eval_alpha: float | None = None
    chain: str | None = None
    cascade: bool = False

    def __post_init__(self) -> None:
        for name, value in _normalised(self).items():  # frozen: the normalised values are set once, here
            object.__setattr__(self, name, value)

    @property
    def spec_method(self):
        return get_method(self.method)

    @property
    def budget(self) -> int:
        """Iterations times restarts: the ordering used by the checks (an attack of smaller budget must not win)."""
        return int(self.steps) * int(self.restarts)

    # --- conversions ------------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "attack") -> AttackSpec:
        """Build from a spec-file mapping; radii in the written units (see :func:`parse_radius`)."""
        if not isinstance(data, Mapping):
            raise AttackSpecError(f"{where}: each attack must be a mapping of fields, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(map(str, data)) - known)
        if unknown:
            raise AttackSpecError(f"{where}: unknown field(s) {unknown}; valid fields: {', '.join(sorted(known))}")
        if "method" not in data or "eps" not in data:
            raise AttackSpecError(f"{where}: every attack needs 'method' and 'eps'")
        fields = dict(data)
        norm = fields.get("norm", "linf")
        if norm not in NORMS:
            raise AttackSpecError(f"{where}: unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
        try:
            fields["eps"] = parse_radii(fields["eps"], norm, "eps")
            if isinstance(fields.get("grad"), str):
                fields["grad"] = tuple(g.strip() for g in fields["grad"].split(",") if g.strip())
            if "params" in fields:
                if not isinstance(fields["params"], Mapping):
                    raise AttackSpecError(
                        f"params must be a mapping such as {{target_classes: 9}}, got {fields['params']!r}"
                    )
                fields["params"] = tuple(sorted(fields["params"].items()))
            return cls(**fields)
        except (AttackSpecError, TypeError) as exc:
            raise AttackSpecError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (eps on the [0, 1] scale)."""
        out = dataclasses.asdict(self)
        out.update(eps=list(self.eps), grad=list(self.grad), params=dict(self.params))
        return out

    def identity(self) -> dict[str, Any]:
        """The fields that define which cells are computed (not ``batch_size``); eps rounded; optional fields only
        when set, so specs written before they existed keep their hash."""
        out = self.to_dict()
        out.pop("batch_size")
        out["eps"] = [float(f"{e:.12g}") for e in self.eps]
        for name, default in _OPTIONAL_FIELDS.items():
            if getattr(self, name) == default:
                out.pop(name)
        return out

    def describe(self) -> str:
        """A short human label, e.g. ``PGD-20 linf x5 restarts, eps [1/255, 8/255] grad soft,bpda``."""
        m = self.spec_method
        name = m.label if m.single_step else f"{m.label}{'-L2' if self.norm == 'l2' else ''}-{self.steps}"
        eps = ", ".join(eps_text(e, self.norm) for e in self.eps)
        extra = f" x{self.restarts} restarts" if self.restarts > 1 else ""
        src = f", transfer from {self.transfer_from}" if self.transfer_from else ""
        grad = "" if (self.transfer_from or not m.uses_gradient) else f" grad {','.join(self.grad)}"
        alpha = f", eval alpha {self.eval_alpha:g}" if self.eval_alpha is not None else ""
        cascade = ", radius cascade" if self.cascade else ""
        return f"{name}{extra} eps [{eps}]{grad}{src}{alpha}{cascade}"


def _normalised(spec: AttackSpec) -> dict[str, Any]:
    """Every field of ``spec`` validated, with the method's defaults filled in (raises AttackSpecError)."""
    if spec.method not in METHODS:
        raise AttackSpecError(f"unknown attack method {spec.method!r}; choose one of {', '.join(METHODS)}")
    method = METHODS[spec.method]
    if spec.norm not in NORMS:
        raise AttackSpecError(f"unknown norm {spec.norm!r}; choose one of {', '.join(NORMS)}")
    if spec.norm not in method.norms:
        raise AttackSpecError(f"{spec.method} supports norm {' and '.join(method.norms)} only, not {spec.norm}")
    out: dict[str, Any] = {"eps": checked_radii(spec.eps, spec.norm)}
    out["steps"] = integer("steps", method.default_steps if spec.steps is None else spec.steps, 1)
    if method.single_step and out["steps"] != 1:
        raise AttackSpecError(f"{spec.method} takes exactly one step, got steps={spec.steps}; use an iterative method")
    if method.takes_step_size:
        out["step_size"] = "eps" if method.single_step else parse_step_size(spec.step_size)
        if method.single_step and spec.step_size not in (DEFAULT_STEP_RULE, "eps"):
            raise AttackSpecError(f"{spec.method} always steps by eps; do not give a step size")
    elif spec.step_size not in (DEFAULT_STEP_RULE, "auto"):
        raise AttackSpecError(f"{spec.method} chooses its own step size; drop step_size")
    else:
        out["step_size"] = "auto"
    out["random_start"] = _random_start(spec, method.random_start)
    out["restarts"] = integer("restarts", spec.restarts, 1)
    if out["restarts"] > 1 and not out["random_start"]:
        raise AttackSpecError("restarts > 1 without a random start would repeat the same deterministic attack")
    out["grad"] = _grads(spec.grad)
    if "surrogate" in out["grad"]:
        if spec.surrogate_alpha is None:
            raise AttackSpecError(
                "grad 'surrogate' needs surrogate_alpha (the softness of the backward quantizer, "
                "smaller than the trained alpha, e.g. 1.0)"
            )
        out["surrogate_alpha"] = positive("surrogate_alpha", spec.surrogate_alpha, MAX_ALPHA, _HARD)
    elif spec.surrogate_alpha is not None:
        raise AttackSpecError("surrogate_alpha is only used with grad 'surrogate'")
    if spec.eval_alpha is not None:
        out["eval_alpha"] = positive("eval_alpha", spec.eval_alpha, MAX_ALPHA, _HARD)
    if spec.transfer_from is not None:
        if spec.transfer_from not in ARMS:
            raise AttackSpecError(f"unknown transfer_from arm {spec.transfer_from!r}; choose one of {', '.join(ARMS)}")
        if not method.uses_gradient:
            raise AttackSpecError(f"{spec.method} needs no gradient; a transfer version of it means nothing")
    if spec.n_examples is not None:
        out["n_examples"] = integer("n_examples", spec.n_examples, 1)
    out["batch_size"] = integer("batch_size", spec.batch_size, 1)
    out["seed"] = integer("seed", spec.seed, 0)
    try:
        out["params"] = tuple(sorted(method.check_params(dict(spec.params)).items()))
    except (TypeError, ValueError) as exc:
        raise AttackSpecError(f"params: {exc}") from None
    if spec.chain is not None and not (isinstance(spec.chain, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", spec.chain)):
        raise AttackSpecError(f"chain must be a short name (letters, digits, _ . -), got {spec.chain!r}")
    if not isinstance(spec.cascade, bool):
        raise AttackSpecError(f"cascade must be true or false, got {spec.cascade!r}")
    return out


def _random_start(spec: AttackSpec, rule: str) -> bool:
    given = spec.random_start
    if given is not None:
        flag("random_start", given)
    if rule == "never":
        if given:
            raise AttackSpecError(
                f"{spec.method} has no random start; use method pgd with steps 1 for R+FGSM-like attacks"
            )
        return False
    if rule == "always":
        if given is False:
            raise AttackSpecError(f"{spec.method} always starts from a random point; drop random_start")
        return True
    return True if given is None else given


def _grads(grad: Any) -> tuple[str, ...]:
    grads = (grad,) if isinstance(grad, str) else tuple(grad) if isinstance(grad, (list, tuple)) else None
    if not grads or any(not isinstance(g, str) for g in grads):
        raise AttackSpecError(f"grad must name one or more of {', '.join(GRAD_MODES)}, got {grad!r}")
    for g in grads:
        if g not in GRAD_MODES:
            raise AttackSpecError(f"unknown grad mode {g!r}; choose from {', '.join(GRAD_MODES)}")
    if len(set(grads)) != len(grads):
        raise AttackSpecError(f"grad lists a mode twice: {grads}")
    return grads


# --- a named list of attacks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecFile:
    """A named, versioned list of attacks (one ``attacks/<name>.yaml``, or the attacks of one CLI call).

    ``hash`` covers ``version`` and every attack's :meth:`AttackSpec.identity` (not the description, not the
    batch size), so re-formatting a file or changing the batch size does not count as a change.
    """

    name: str
    attacks: tuple[AttackSpec, ...]
    version: int = 1
    description: str = ""
    path: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attacks", tuple(self.attacks))
        if not self.attacks:
            raise AttackSpecError(f"spec {self.name!r} holds no attacks")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+=@-]*", self.name or "") or ".." in self.name:
            raise AttackSpecError(f"spec name {self.name!r} must be letters, digits and _ . + = @ - only")
        _check_chains(self.name, self.attacks)

    @property
    def hash(self) -> str:
        payload = {"version": self.version, "attacks": [a.identity() for a in self.attacks]}
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def with_overrides(
        self, n_examples: int | None = None, seed: int | None = None, batch_size: int | None = None
    ) -> SpecFile:
        """The same spec with n_examples / seed / batch_size replaced in every attack.

        Changing n_examples or seed changes the cells, so the name gets a suffix (``paper-pgd+n500+seed1``) and the
        result is a spec of its own in ``sweep_state.json``; batch_size leaves the name unchanged.
        """
        changes: dict[str, Any] = {}
        suffix = ""
        if n_examples is not None:
            changes["n_examples"] = n_examples
            suffix += f"+n{n_examples}"
        if seed is not None:
            changes["seed"] = seed
            suffix += f"+seed{seed}"
        if batch_size is not None:
            changes["batch_size"] = batch_size
        if not changes:
            return self
        attacks = tuple(dataclasses.replace(a, **changes) for a in self.attacks)
        # only rename if the overrides actually changed the cells
        renamed = any(a.identity() != b.identity() for a, b in zip(attacks, self.attacks, strict=True))
        name = self.name + suffix if renamed else self.name
        return dataclasses.replace(self, attacks=attacks, name=name)

    @classmethod
    def from_mapping(cls, data: Any, name: str, path: str | None = None) -> SpecFile:
        where = path or name
        if not isinstance(data, Mapping):
            raise AttackSpecError(f"spec {where}: the file must be a YAML mapping with 'version' and 'attacks'")
        unknown = sorted(set(map(str, data)) - set(SPEC_FORMAT_KEYS))
        if unknown:
            raise AttackSpecError(
                f"spec {where}: unknown top-level key(s) {unknown}; valid: {', '.join(SPEC_FORMAT_KEYS)}"
            )
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise AttackSpecError(f"spec {where}: needs an integer 'version' >= 1, got {version!r}")
        attacks = data.get("attacks")
        if isinstance(attacks, Mapping):
            attacks = [attacks]
        if not isinstance(attacks, list) or not attacks:
            raise AttackSpecError(f"spec {where}: 'attacks' must be a non-empty list of attacks")
        description = data.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise AttackSpecError(
                f"spec {where}: 'description' must be text of at most {MAX_DESCRIPTION} characters, "
                f"got {_preview(description)}"
            )
        defaults = {k: data[k] for k in ("n_examples", "batch_size", "seed") if k in data}
        parsed = tuple(
            AttackSpec.from_dict(
                {**defaults, **a} if isinstance(a, Mapping) else a, where=f"spec {where}, attack {i + 1}"
            )
            for i, a in enumerate(attacks)
        )
        try:
            return cls(name=name, attacks=parsed, version=version, description=description, path=path)
        except AttackSpecError as exc:
            raise AttackSpecError(f"spec {where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "hash": self.hash,
            "attacks": [a.to_dict() for a in self.attacks],
        }


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}... ({type(value).__name__} of {len(text)} characters)"


def _check_chains(name: str, attacks: tuple[AttackSpec, ...]) -> None:
    """Entries of one chain must share what defines a chain's cells: norm, eps, images, seed, grads, alpha."""
    chains: dict[str, AttackSpec] = {}
    for a in attacks:
        if a.chain is None:
            continue
        if a.transfer_from is not None:
            raise AttackSpecError(f"chain {a.chain!r}: transfer attacks cannot be chained")
        first = chains.setdefault(a.chain, a)
        for f in ("norm", "eps", "n_examples", "seed", "eval_alpha", "cascade"):
            if getattr(a, f) != getattr(first, f):
                raise AttackSpecError(f"chain {a.chain!r}: every entry needs the same {f} ({a.method} differs)")
        if a.spec_method.uses_gradient and first.spec_method.uses_gradient and a.grad != first.grad:
            raise AttackSpecError(f"chain {a.chain!r}: every gradient-based entry needs the same grad list")
