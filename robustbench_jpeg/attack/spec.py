"""Typed attack specifications and the YAML spec files (packaged in ``robustbench_jpeg/attack/specs/``).

An :class:`AttackSpec` is one attack configuration (method, norm, eps grid, steps, step size, restarts, ...).
A :class:`SpecFile` is a named, versioned list of them (one ``attacks/<name>.yaml`` file, or one CLI call).

Units: in files and on the command line, L-inf radii are written in 1/255 units (``eps: [1, 2, 4, 8]``) and L2
radii are absolute on the [0, 1] pixel scale (``eps: [0.25, 0.5]``). An :class:`AttackSpec` always *stores* radii
on the [0, 1] scale as floats. A numeric step size is in the same units as eps; the rule strings
(``2.5*eps/steps``, ``eps/2``, ``eps``, ``0.5*eps``) are resolved per radius and recorded as written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "METHODS",
    "NORMS",
    "GRAD_MODES",
    "DEFAULT_STEP_RULE",
    "DEFAULT_BATCH_SIZE",
    "AttackSpecError",
    "AttackSpec",
    "SpecFile",
    "parse_step_size",
    "resolve_step_size",
    "attacks_dir",
    "list_specs",
    "load_spec",
    "packaged_specs_dir",
]

METHODS = ("fgsm", "pgd")
NORMS = ("linf", "l2")
GRAD_MODES = ("soft", "bpda")
ARMS = ("baseline", "jpegdl")
DEFAULT_STEP_RULE = "2.5*eps/steps"
DEFAULT_BATCH_SIZE = 500
DEFAULT_PGD_STEPS = 20
L2_MAX = math.sqrt(3 * 32 * 32)  # the diameter of [0, 1]^(3x32x32): no L2 radius beyond it means anything
SPEC_FORMAT_KEYS = ("version", "description", "attacks", "n_examples", "batch_size", "seed")

_RULE_RE = re.compile(
    r"^\s*(?:(?P<k>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?eps"
    r"(?:\s*/\s*(?P<d>steps|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?\s*$"
)


class AttackSpecError(ValueError):
    """An invalid attack specification or spec file; the message says what and how to fix it."""


def parse_step_size(value: float | int | str) -> float | str:
    """A step size as given: a positive number (in eps units) or a rule string such as ``2.5*eps/steps``.

    Returns the number as float, or the rule with whitespace removed. Raises :class:`AttackSpecError`.
    """
    if isinstance(value, bool):
        raise AttackSpecError(f"step size must be a number or a rule like {DEFAULT_STEP_RULE!r}, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise AttackSpecError(f"step size must be a positive finite number, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_step_size(float(text))
        except ValueError:
            pass
        match = _RULE_RE.match(text)
        if not match:
            raise AttackSpecError(
                f"cannot read step size {value!r}: give a positive number (same units as eps) or a rule of the form "
                "'K*eps/steps', 'eps/K', 'K*eps' or 'eps' (default '2.5*eps/steps')"
            )
        k = float(match.group("k")) if match.group("k") else 1.0
        d = match.group("d")
        if k <= 0 or (d not in (None, "steps") and float(d) <= 0):
            raise AttackSpecError(f"step size rule {value!r} must give a positive step")
        return re.sub(r"\s+", "", text)
    raise AttackSpecError(f"step size must be a number or a rule string, got {type(value).__name__}")


def resolve_step_size(rule: float | str, eps: float, steps: int, norm: str) -> tuple[float, str]:
    """``(absolute step size on the [0, 1] scale, step_rule label)`` for one radius.

    A numeric ``rule`` is in eps units (1/255 for linf) and is labelled ``absolute``.
    """
    if isinstance(rule, float):
        return (rule / 255.0 if norm == "linf" else rule), "absolute"
    match = _RULE_RE.match(rule)
    if not match:  # parse_step_size validated it already
        raise AttackSpecError(f"bad step size rule {rule!r}")
    k = float(match.group("k")) if match.group("k") else 1.0
    d = match.group("d")
    denom = float(steps) if d == "steps" else (float(d) if d else 1.0)
    return k * eps / denom, rule


def _eps_values(raw: Any, norm: str, where: str) -> tuple[float, ...]:
    """Radii as written (1/255 units for linf, absolute for l2) -> floats on the [0, 1] scale."""
    if isinstance(raw, Mapping):
        if set(raw) != {"linspace"}:
            raise AttackSpecError(f"{where}: eps must be a list or {{linspace: [start, stop, num]}}, got {raw!r}")
        spec = raw["linspace"]
        if not (isinstance(spec, Sequence) and len(spec) == 3 and isinstance(spec[2], int) and spec[2] >= 1):
            raise AttackSpecError(
                f"{where}: linspace must be [start, stop, num] with an integer num >= 1, got {spec!r}"
            )
        start, stop, num = float(spec[0]), float(spec[1]), int(spec[2])
        values = [start + (stop - start) * i / (num - 1) for i in range(num)] if num > 1 else [start]
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        values = [raw]
    elif isinstance(raw, str):
        try:
            values = [float(v) for v in raw.split(",") if v.strip()]
        except ValueError as exc:
            raise AttackSpecError(f"{where}: eps must be numbers, got {raw!r}") from exc
    elif isinstance(raw, Sequence):
        values = list(raw)
    else:
        raise AttackSpecError(f"{where}: eps must be a list of numbers, got {raw!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise AttackSpecError(f"{where}: eps values must be numbers, got {v!r}")
        out.append(float(v) / 255.0 if norm == "linf" else float(v))
    return tuple(out)


@dataclass(frozen=True)
class AttackSpec:
    """One attack configuration, applied to every radius in ``eps`` and every arm of a run.

    Attributes:
        method: ``fgsm`` or ``pgd`` (L-inf PGD, or PGD-L2 when ``norm="l2"``); engine: torchattacks.
        norm: ``linf`` or ``l2``.
        eps: radii on the [0, 1] pixel scale (floats). Use :meth:`from_dict` to give linf radii in 1/255 units.
        steps: iterations (1 for FGSM; default 20 for PGD).
        step_size: a positive number in eps units (1/255 for linf) or a rule string (default ``2.5*eps/steps``).
        restarts: independent runs with different random starts; a sample is robust only if it survives all.
        random_start: uniform start in the eps-ball (PGD only).
        grad: crafting modes of the JPEG layer: ``soft`` (gradients through the soft quantizer, as trained and
            deployed) and/or ``bpda`` (hard rounding forward, identity backward). Baselines always get ``none``.
        transfer_from: ``None`` (white-box), or the arm whose model crafts the examples; they are evaluated on
            every other arm of the run.
        n_examples: attack the first n test images in test-set order (None: the whole test set).
        batch_size: images per batch (does not change which cell is computed; see docs/attacks.md).
        seed: attack seed (random starts).
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

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        if self.method not in METHODS:
            raise AttackSpecError(f"unknown attack method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.norm not in NORMS:
            raise AttackSpecError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        eps = self.eps
        if isinstance(eps, (int, float)):
            eps = (eps,)
        eps = tuple(eps)
        if not eps:
            raise AttackSpecError("eps must hold at least one radius")
        for e in eps:
            if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
                raise AttackSpecError(f"eps values must be finite numbers, got {e!r}")
            if e < 0:
                raise AttackSpecError(f"eps must be >= 0, got {self._show(e)}")
            if self.norm == "linf" and e > 1.0 + 1e-12:
                raise AttackSpecError(
                    f"linf eps {self._show(e)} is outside [0, 255]/255: linf radii are on the [0, 1] pixel scale "
                    "(write them in 1/255 units in spec files and on the command line, e.g. --eps 8)"
                )
            if self.norm == "l2" and e > L2_MAX:
                raise AttackSpecError(
                    f"l2 eps {e:g} exceeds {L2_MAX:.4g}, the diameter of the [0, 1] image cube of CIFAR (3x32x32): "
                    "l2 radii are absolute on the [0, 1] scale (e.g. 0.5), not in 1/255 units"
                )
        if len({round(e, 12) for e in eps}) != len(eps):
            raise AttackSpecError(f"eps holds duplicate radii: {[self._show(e) for e in eps]}")
        set_(self, "eps", tuple(float(e) for e in eps))

        if self.method == "fgsm":
            if self.norm != "linf":
                raise AttackSpecError("fgsm is an L-inf attack; for L2 use method pgd with norm l2 (and steps 1)")
            if self.steps not in (None, 1):
                raise AttackSpecError(f"fgsm takes exactly one step, got steps={self.steps}; use method pgd")
            if self.random_start:
                raise AttackSpecError("fgsm has no random start; use method pgd with steps 1 for R+FGSM-like attacks")
            if self.restarts != 1:
                raise AttackSpecError("fgsm is deterministic; restarts must be 1 (use method pgd for restarts)")
            if self.step_size not in (DEFAULT_STEP_RULE, "eps"):
                raise AttackSpecError("fgsm always steps by eps; do not give a step size")
            set_(self, "steps", 1)
            set_(self, "step_size", "eps")
            set_(self, "random_start", False)
        else:
            steps = DEFAULT_PGD_STEPS if self.steps is None else self.steps
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise AttackSpecError(f"pgd needs an integer steps >= 1, got {self.steps!r}")
            set_(self, "steps", steps)
            set_(self, "step_size", parse_step_size(self.step_size))
            set_(self, "random_start", True if self.random_start is None else bool(self.random_start))
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise AttackSpecError(f"restarts must be an integer >= 1, got {self.restarts!r}")
        if self.restarts > 1 and not self.random_start:
            raise AttackSpecError("restarts > 1 without random_start would repeat the same deterministic attack")

        grad = (self.grad,) if isinstance(self.grad, str) else tuple(self.grad)
        if not grad:
            raise AttackSpecError(f"grad must name at least one of {', '.join(GRAD_MODES)}")
        for g in grad:
            if g not in GRAD_MODES:
                raise AttackSpecError(f"unknown grad mode {g!r}; choose from {', '.join(GRAD_MODES)}")
        if len(set(grad)) != len(grad):
            raise AttackSpecError(f"grad lists a mode twice: {grad}")
        set_(self, "grad", grad)

        if self.transfer_from is not None and self.transfer_from not in ARMS:
            raise AttackSpecError(f"unknown transfer_from arm {self.transfer_from!r}; choose one of {', '.join(ARMS)}")
        if self.n_examples is not None and (
            isinstance(self.n_examples, bool) or not isinstance(self.n_examples, int) or self.n_examples < 1
        ):
            raise AttackSpecError(f"n_examples must be a positive integer or null (all), got {self.n_examples!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise AttackSpecError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise AttackSpecError(f"seed must be a non-negative integer, got {self.seed!r}")

    def _show(self, e: float) -> str:
        return f"{e * 255:g}/255" if self.norm == "linf" else f"{e:g}"

    # --- conversions ------------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "attack") -> AttackSpec:
        """Build from a spec-file mapping; eps in 1/255 units for linf (list, or ``{linspace: [a, b, n]}``)."""
        if not isinstance(data, Mapping):
            raise AttackSpecError(f"{where}: each attack must be a mapping of fields, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AttackSpecError(f"{where}: unknown field(s) {unknown}; valid fields: {', '.join(sorted(known))}")
        if "method" not in data or "eps" not in data:
            raise AttackSpecError(f"{where}: every attack needs 'method' and 'eps'")
        fields = dict(data)
        norm = fields.get("norm", "linf")
        if norm not in NORMS:
            raise AttackSpecError(f"{where}: unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
        fields["eps"] = _eps_values(fields["eps"], norm, where)
        if "grad" in fields and isinstance(fields["grad"], str):
            fields["grad"] = tuple(g.strip() for g in fields["grad"].split(",") if g.strip())
        try:
            return cls(**fields)
        except AttackSpecError as exc:
            raise AttackSpecError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise AttackSpecError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (eps on the [0, 1] scale)."""
        out = dataclasses.asdict(self)
        out["eps"] = list(self.eps)
        out["grad"] = list(self.grad)
        return out

    def identity(self) -> dict[str, Any]:
        """The fields that define which cells are computed (everything but ``batch_size``); eps rounded."""
        out = self.to_dict()
        out.pop("batch_size")
        out["eps"] = [float(f"{e:.12g}") for e in self.eps]
        return out

    def describe(self) -> str:
        """A short human label, e.g. ``PGD-20 linf x5 restarts, eps 1..8/255, grad soft,bpda``."""
        name = "FGSM" if self.method == "fgsm" else f"PGD{'-L2' if self.norm == 'l2' else ''}-{self.steps}"
        eps = ", ".join(self._show(e) for e in self.eps)
        extra = f" x{self.restarts} restarts" if self.restarts > 1 else ""
        src = f", transfer from {self.transfer_from}" if self.transfer_from else ""
        grad = "" if self.transfer_from == "baseline" else f" grad {','.join(self.grad)}"
        return f"{name}{extra} eps [{eps}]{grad}{src}"


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
        if not re.fullmatch(r"[A-Za-z0-9_.+=@-]+", self.name or ""):
            raise AttackSpecError(f"spec name {self.name!r} must be letters, digits and _ . + = @ - only")

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
        unknown = sorted(set(data) - set(SPEC_FORMAT_KEYS))
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
        defaults = {k: data[k] for k in ("n_examples", "batch_size", "seed") if k in data}
        parsed = tuple(
            AttackSpec.from_dict(
                {**defaults, **a} if isinstance(a, Mapping) else a, where=f"spec {where}, attack {i + 1}"
            )
            for i, a in enumerate(attacks)
        )
        return cls(name=name, attacks=parsed, version=version, description=str(data.get("description", "")), path=path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "hash": self.hash,
            "attacks": [a.to_dict() for a in self.attacks],
        }


# --- spec files -------------------------------------------------------------------------------------------------


def packaged_specs_dir() -> Path:
    """The spec files shipped inside the package (``robustbench_jpeg/attack/specs``; ``attacks/`` in the repo is a
    symlink to it)."""
    return Path(__file__).resolve().parent / "specs"


def attacks_dir() -> Path:
    """The first folder searched for spec files: ``$RBJ_ATTACKS_DIR`` when set, else the packaged specs."""
    env = os.environ.get("RBJ_ATTACKS_DIR")
    return Path(env).expanduser() if env else packaged_specs_dir()


def _spec_dirs(directory: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched in order: ``directory`` (else ``$RBJ_ATTACKS_DIR``), if any, then the packaged specs."""
    first = Path(directory).expanduser() if directory is not None else attacks_dir()
    packaged = packaged_specs_dir()
    return [first] if first.resolve() == packaged else [first, packaged]


def list_specs(directory: str | os.PathLike | None = None) -> list[str]:
    """Names of the spec files in ``directory`` (else ``$RBJ_ATTACKS_DIR``) and in the packaged specs, sorted."""
    names: set[str] = set()
    for folder in _spec_dirs(directory):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
            names.update(p.stem for p in folder.glob("*.yml"))
    return sorted(names)


def load_spec(name_or_path: str | os.PathLike, directory: str | os.PathLike | None = None) -> SpecFile:
    """Load a spec by name or by file path.

    A name resolves to ``<name>.yaml`` (or ``.yml``) in ``directory`` (else ``$RBJ_ATTACKS_DIR``) first, then in the
    packaged specs (``paper-pgd``, ``quick``, ...; see :func:`packaged_specs_dir`).

    Raises:
        AttackSpecError: unknown name (the message lists the available specs), unreadable or invalid file.
    """
    import yaml

    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text
    if not looks_like_path:
        folders = _spec_dirs(directory)
        candidates = [folder / f"{text}{ext}" for folder in folders for ext in (".yaml", ".yml")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            looked = ", ".join(str(f) if f.is_dir() else f"{f} (does not exist)" for f in folders)
            raise AttackSpecError(
                f"unknown attack spec {text!r}; available specs: {', '.join(list_specs(directory)) or '(none)'} "
                f"(looked in {looked}; set RBJ_ATTACKS_DIR to a folder of your own specs or pass a path to a .yaml "
                "file)"
            )
        path = found
    if not path.is_file():
        raise AttackSpecError(f"attack spec file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AttackSpecError(f"attack spec {path} is not valid YAML: {exc}") from exc
    return SpecFile.from_mapping(data, name=path.stem, path=str(path))
