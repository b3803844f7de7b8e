"""One attack cell as a typed record: the :class:`Setting` that defines an attack, the :class:`Cell` that applies it
to one arm and the first ``n`` test images, and the :class:`CellResult` a computation adds.

Everything about a cell derives from these records: the results.csv columns (:data:`RESULT_COLUMNS`, in the
order of :data:`COLUMNS`), a row (:meth:`Cell.row`), the cell id (a stable hash of :meth:`Cell.key`,
docs/run-format.md), the eps key (:func:`eps_key`), the radius as text (:func:`eps_text`) and the label
(:func:`attack_name`, :meth:`Cell.label`). Text is made only when rendering; readers rebuild the record from a row
(:meth:`Setting.from_row`) instead of parsing labels.

Standard library only: the sweep, the judgement and the report all import it without torch or the attack engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .names import ROW_FORMAT, arm_display

__all__ = [
    "CLEAN",
    "CASCADE_SUFFIX",
    "MethodKind",
    "Setting",
    "Cell",
    "CellResult",
    "Column",
    "COLUMNS",
    "RESULT_COLUMNS",
    "TEXT_COLUMNS",
    "eps_key",
    "eps_text",
    "attack_name",
    "describe",
    "params_text",
    "parse_params",
]

CLEAN = "clean"
CASCADE_SUFFIX = ", cascade"  # in an attack's name: a radius cascade (Setting.cascade)
_NOT_A_COLUMN = {"column": False}
_NEVER_GROUPED = ("attack_seed", "attack_label", "method_kind", "after", "below", "chain_grad")  # Setting.same_except


class MethodKind(StrEnum):
    """What kind of attack a method is, as the judgement needs to know it (stored in each row, so the checks never
    need the method registry): the checks compare iterative attacks with single-step ones, and gradient-free
    attacks with gradient attacks."""

    CLEAN = "clean"
    SINGLE_STEP = "single-step"  # one gradient step of size eps (FGSM)
    ITERATIVE = "iterative"  # untargeted iterative gradient attacks (PGD, APGD-CE, APGD-DLR)
    TARGETED = "targeted"  # targeted or minimum-norm gradient attacks (APGD-T, FAB-T)
    GRADIENT_FREE = "gradient-free"  # queries only (Square)


@dataclass(frozen=True)
class Setting:
    """Every field that defines one attack at one radius (or the clean evaluation), independent of the arm.

    Attributes:
        attack: ``clean`` or a registered method name (``fgsm``, ``pgd``, ``apgd-ce``, ...).
        attack_label: how tables name the method with its budget (``FGSM``, ``PGD-20``, ``Square-5000``), given by
            the method; stored so that readers never need the method registry.
        method_kind: the method's :class:`MethodKind`, given by the method; stored for the same reason.
        engine: the attack engine when it is not the default (AutoAttack's reference code): ``torchattacks``. Part of
            the cell id only then, so the default engine keeps 0.2's ids and two engines never share a cell.
        norm: ``none`` (clean), ``linf`` or ``l2``; eps on the [0, 1] pixel scale.
        steps, step_size, step_rule: iterations (queries for gradient-free methods), the step size used and the
            rule it came from (``none``, ``auto``, ``eps``, ``2.5*eps/steps``, ...).
        restarts, random_start: restarts (each attacks the survivors of the previous ones) and the random start.
        grad: the crafting mode through a JPEG front end (``none``, ``soft``, ``hard``, ``bpda``, ``bpda-hard``,
            ``surrogate``, ``surrogate-hard``), as recorded.
        surrogate_alpha: the surrogate quantizer's softness (surrogate modes only).
        eval_alpha: an evaluation-time alpha of the soft quantizer (None: as trained).
        source_arm: the arm the examples are crafted on; ``""`` means the evaluated arm itself.
        attack_seed: the seed of the attack's randomness.
        after: id of the cell whose survivors this one attacks (chains such as AutoAttack), ``""`` otherwise.
        cascade: a radius cascade (``AttackSpec.cascade``): the cell reads "robust under this attack at every radius
            of its sweep up to eps". Part of the id (and the label) only when set.
        below: in a cascade, id of the same attack's cell at the next smaller radius, whose survivors this one
            attacks (``""`` at the smallest radius and outside cascades).
        params: the method's own parameters, sorted ``(name, value)`` pairs.
        chain_grad: not a column: the gradient mode of the chain a gradient-free cell ends (for its label).
    """

    attack: str
    attack_label: str
    norm: str
    eps: float
    steps: int = 0
    step_size: float = 0.0
    step_rule: str = "none"
    restarts: int = 1
    random_start: bool = False
    grad: str = "none"
    surrogate_alpha: float | None = None
    eval_alpha: float | None = None
    source_arm: str = ""
    attack_seed: int = 0
    after: str = ""
    params: tuple[tuple[str, float], ...] = ()
    method_kind: str = MethodKind.CLEAN
    engine: str = ""
    cascade: bool = False
    below: str = ""
    chain_grad: str = field(default="", metadata=_NOT_A_COLUMN)

    @classmethod
    def clean(cls, eval_alpha: float | None = None) -> Setting:
        """The clean evaluation (optionally at an evaluation-time alpha)."""
        return cls(CLEAN, CLEAN, "none", 0.0, restarts=0, eval_alpha=eval_alpha)

    @property
    def is_clean(self) -> bool:
        return self.attack == CLEAN

    @property
    def eps_255(self) -> float:
        return self.eps * 255

    @property
    def eps_key(self) -> float:
        return 0.0 if self.is_clean else eps_key(self.norm, self.eps)

    def same_except(self, *varying: str) -> tuple[tuple[str, Any], ...]:
        """What two settings must share to differ only in the named fields: the checks group cells by it (e.g.
        ``same_except("eps")`` for the monotonicity in eps). Never part of it: the attack seed, what other fields
        give (label, kind, a step size from its rule), and the links between cells (``after``, ``below``), of which
        only whether the cell is chained counts."""
        unknown = sorted(set(varying) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"not fields of a Setting: {', '.join(unknown)}")
        left_out = {*varying, *_NEVER_GROUPED}
        if self.step_rule != "absolute":
            left_out.add("step_size")  # given by the rule, eps and steps
        key = tuple(
            (f.name, _rounded(getattr(self, f.name))) for f in dataclasses.fields(self) if f.name not in left_out
        )
        return (*key, ("chained", self.after != ""))

    @classmethod
    def from_row(cls, row: Any) -> Setting:
        """The setting of a results row (a mapping, a pandas Series or an ``itertuples`` record)."""
        get = row.get if isinstance(row, Mapping) or hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
        attack = str(get("attack"))
        steps = _int(get("steps"), 0)
        label = _text(get("attack_label")) or _legacy_attack_label(attack, steps)
        kind = _text(get("method_kind")) or _legacy_method_kind(attack)
        engine = _text(get("engine"))
        return cls(
            attack=attack,
            attack_label=label,
            method_kind=kind,
            engine=engine,
            norm=str(get("norm")),
            eps=float(get("eps")),
            steps=steps,
            step_size=_float(get("step_size")) or 0.0,
            step_rule=_text(get("step_rule")) or "none",
            restarts=_int(get("restarts"), 1),
            random_start=_truthy(get("random_start")),
            grad=_text(get("grad")) or "none",
            surrogate_alpha=_float(get("surrogate_alpha")),
            eval_alpha=_float(get("eval_alpha")),
            source_arm=_text(get("source_arm")),
            attack_seed=_int(get("attack_seed"), 0),
            after=_text(get("after")),
            params=parse_params(_text(get("params"))),
            cascade=_truthy(get("cascade")),
            below=_text(get("below")),
        )


@dataclass(frozen=True)
class Cell:
    """One setting on one evaluated arm (model, data set, training seed) and the first ``n`` test images.

    ``batch_size`` and the fingerprints are not part of the key: the fingerprints of the evaluated and the source
    arm's weights are filled in when the cell is computed.
    """

    model: str
    arm: str
    dataset: str
    train_seed: int | None
    setting: Setting
    n: int
    batch_size: int = 500
    fingerprint: str = ""
    source_fingerprint: str = ""

    @property
    def source_arm(self) -> str:
        return self.setting.source_arm or self.arm

    @property
    def is_clean(self) -> bool:
        return self.setting.is_clean

    @property
    def is_transfer(self) -> bool:
        return self.source_arm != self.arm

    def key(self) -> dict[str, Any]:
        """What defines the cell (its id); the numbers as 12-digit text so float noise cannot change it."""
        s = self.setting
        return {
            "format": ROW_FORMAT,
            "model": self.model,
            "arm": self.arm,
            "dataset": self.dataset,
            "train_seed": self.train_seed,
            "attack": s.attack,
            "norm": s.norm,
            "eps": f"{s.eps:.12g}",
            "steps": s.steps,
            "step_size": f"{s.step_size:.12g}",
            "restarts": s.restarts,
            "random_start": s.random_start,
            "grad": s.grad,
            "source_arm": self.source_arm,
            "attack_seed": s.attack_seed,
            "n": self.n,
            "params": dict(s.params),
            "surrogate_alpha": None if s.surrogate_alpha is None else f"{s.surrogate_alpha:.12g}",
            "eval_alpha": None if s.eval_alpha is None else f"{s.eval_alpha:.12g}",
            "after": s.after,
            **({"engine": s.engine} if s.engine else {}),
            **({"cascade": True, "below": s.below} if s.cascade else {}),
        }

    @property
    def cell_id(self) -> str:
        return hashlib.sha1(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()[:16]

    def label(self) -> str:
        """One line for logs and progress: ``JPEG-DL PGD-20 (bpda) at 2/255 (n=500)``, ``baseline clean``."""
        s, arm = self.setting, arm_display(self.arm)
        if s.is_clean:
            return f"{arm} clean" + (f" [eval alpha {s.eval_alpha:g}]" if s.eval_alpha is not None else "")
        return f"{arm} {describe(s, self.arm, self.n)}"

    def row(self, result: CellResult) -> dict[str, Any]:
        """The results.csv row of this cell as computed (every column of :data:`COLUMNS`, in order)."""
        return {column.name: column.value(self, result) for column in COLUMNS}


@dataclass(frozen=True)
class CellResult:
    """What computing a cell measured, and with what: the rest of its results row."""

    spec: str
    clean_acc: float
    robust_acc: float
    n_correct: int
    n_clean_correct: int
    world_size: int
    wall_s: float
    git_sha: str
    torch: str
    torchattacks: str
    device: str
    timestamp: str
    row_format: int = ROW_FORMAT
    spec_hash: str = ""  # the spec file's hash and path: which version of a spec made the cell
    spec_path: str = ""


@dataclass(frozen=True)
class Column:
    """One results.csv column: its name, which record holds its value, and whether readers keep it as text."""

    name: str
    record: str  # cell | setting | result | derived
    text: bool = False

    def value(self, cell: Cell, result: CellResult) -> Any:
        if self.record == "setting":
            return getattr(cell.setting, self.name)
        if self.record == "result":
            return getattr(result, self.name)
        if self.name == "params":
            return params_text(cell.setting.params)
        return getattr(cell, self.name)  # cell fields and properties (source_arm, cell_id)


def _columns() -> tuple[Column, ...]:
    setting = [f.name for f in dataclasses.fields(Setting) if f.metadata.get("column", True)]
    text = {f.name for f in dataclasses.fields(Setting) if f.type in ("str", str)} | {"params"}
    head = [Column(n, "cell", n in ("model", "arm", "dataset")) for n in ("model", "arm", "dataset", "train_seed")]
    middle = []
    for name in setting:
        record = "cell" if name in ("source_arm", "params") else "setting"
        middle.append(Column(name, record, name in text))
        if name == "eps":
            middle.append(Column("eps_255", "setting"))
    tail = [Column("spec", "result", True), Column("spec_hash", "result", True), Column("spec_path", "result", True)]
    tail += [Column("n", "cell")]
    tail += [Column(n, "result") for n in ("clean_acc", "robust_acc", "n_correct", "n_clean_correct")]
    tail += [Column("batch_size", "cell"), Column("world_size", "result"), Column("wall_s", "result")]
    tail += [Column(n, "cell", True) for n in ("cell_id", "fingerprint", "source_fingerprint")]
    tail += [Column("row_format", "result")]
    tail += [Column(n, "result", True) for n in ("git_sha", "torch", "torchattacks", "device", "timestamp")]
    return (*head, *middle, *tail)


COLUMNS: tuple[Column, ...] = _columns()
RESULT_COLUMNS: list[str] = [c.name for c in COLUMNS]
TEXT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.text)


# --- text, made only when rendering --------------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    """A float rounded to merge float noise (radii written as 8/255 in one spec and 0.0313725 in another)."""
    return round(value, 10) if isinstance(value, float) else value


def eps_key(norm: str, eps: float) -> float:
    """The eps tables group by: in 1/255 units for L-inf, the raw [0, 1]-scale radius for L2 (rounded to merge float
    noise)."""
    return round(eps * 255.0, 4) if norm == "linf" else round(eps, 6)


def eps_text(eps: float, norm: str) -> str:
    """A radius as text: ``2/255`` (L-inf), ``0.5 (L2)``."""
    if norm == "linf":
        return f"{eps * 255:.4g}/255"
    return f"{eps:.4g} ({norm.upper()})" if norm not in ("none", "") else f"{eps:.4g}"


def attack_name(setting: Setting) -> str:
    """The one name of an attack setting used by tables, checks and logs: ``FGSM``, ``PGD-20``,
    ``PGD-100, 5 restarts``, ``APGD-T-100``, ``Square-5000`` (queries), with ``, L2`` for L2 attacks and
    ``, cascade`` for a radius cascade."""
    name = setting.attack_label
    if int(setting.restarts) > 1:
        name += f", {int(setting.restarts)} restarts"
    name += ", L2" if setting.norm == "l2" else ""
    name += CASCADE_SUFFIX if setting.cascade else ""
    return name + (f" [{setting.engine}]" if setting.engine else "")


def describe(setting: Setting, arm: str, n: int | None = None) -> str:
    """The one label of an attack cell (logs, checks): ``PGD-20 (bpda) from baseline at 2/255 [eval alpha 1]
    (n=500)``; a chained cell says ``(chained)``, or ``(chained after the soft attacks)`` when its chain's gradient
    mode is known."""
    s = setting
    grad = f" ({s.grad})" if s.grad not in ("none", "") else ""
    src = f" from {s.source_arm}" if s.source_arm not in ("", arm) else ""
    chained = ""
    if s.after:
        chained = f" (chained after the {s.chain_grad} attacks)" if s.chain_grad not in ("", "none") else " (chained)"
    alpha = f" [eval alpha {s.eval_alpha:g}]" if s.eval_alpha is not None else ""
    size = f" (n={int(n)})" if n is not None else ""
    return f"{attack_name(s)}{grad}{src}{chained} at {eps_text(s.eps, s.norm)}{alpha}{size}"


def params_text(params: tuple[tuple[str, float], ...]) -> str:
    return ";".join(f"{k}={v:g}" for k, v in params)


def parse_params(text: str) -> tuple[tuple[str, float], ...]:
    """The ``params`` column (``name=value;...``) back as sorted pairs."""
    pairs = []
    for item in filter(None, (text or "").split(";")):
        name, _, value = item.partition("=")
        number = float(value)
        pairs.append((name, int(number) if number.is_integer() else number))
    return tuple(sorted(pairs))


# The method names and kinds of rows written before results.csv had ``attack_label`` and ``method_kind`` columns
# (row formats 1 and 2), as version 0.2 printed them: (label, whether the label shows the step count, kind).
_LEGACY_LABELS = {
    "fgsm": ("FGSM", False, MethodKind.SINGLE_STEP),
    "pgd": ("PGD", True, MethodKind.ITERATIVE),
    "apgd-ce": ("APGD-CE", True, MethodKind.ITERATIVE),
    "apgd-dlr": ("APGD-DLR", True, MethodKind.ITERATIVE),
    "apgd-t": ("APGD-T", True, MethodKind.TARGETED),
    "fab-t": ("FAB-T", True, MethodKind.TARGETED),
    "square": ("Square", True, MethodKind.GRADIENT_FREE),
}


def _legacy_attack_label(attack: str, steps: int) -> str:
    if attack == CLEAN:
        return CLEAN
    label, shows_steps, _ = _LEGACY_LABELS.get(attack, (attack.upper(), True, MethodKind.ITERATIVE))
    return f"{label}-{steps}" if shows_steps else label


def _legacy_method_kind(attack: str) -> str:
    if attack == CLEAN:
        return MethodKind.CLEAN
    return _LEGACY_LABELS.get(attack, ("", True, MethodKind.ITERATIVE))[2]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    return "" if _missing(value) or str(value) in ("nan", "None") else str(value)


def _float(value: Any) -> float | None:
    return None if _missing(value) or value == "" else float(value)


def _int(value: Any, default: int) -> int:
    return default if _missing(value) or value == "" else int(value)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "off", "", "nan", "none")
