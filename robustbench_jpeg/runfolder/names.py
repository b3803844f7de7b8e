"""The run folder's vocabulary in one place: file names, arm names, results columns, the model card, safe names.

Train, attack, report and the CLI import their names from here; docs/run-format.md describes every file. This
module depends on the standard library only, so every layer can use it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_NAME",
    "COMMANDS_NAME",
    "CARD_NAME",
    "CHECKPOINT_NAME",
    "HISTORY_NAME",
    "RESULTS_NAME",
    "SAMPLES_NAME",
    "LEGACY_SAMPLES_DIR",
    "STATE_NAME",
    "CHECKS_NAME",
    "DIAGNOSTICS_NAME",
    "ATTACK_LOCK",
    "TRAIN_LOCK",
    "MANIFEST_NAME",
    "ROW_FORMAT",
    "ENGINE_NOT_USED",
    "Arm",
    "ARMS",
    "BASELINE",
    "JPEGDL",
    "JPEG_FROZEN",
    "JPEG_STANDARD",
    "DEFAULT_ARMS",
    "arm_display",
    "check_arm",
    "arm_order",
    "RunFormatError",
    "CardError",
    "ModelCard",
    "safe_name",
    "dumps_json",
]

# --- file names -------------------------------------------------------------------------------------------------

CONFIG_NAME = "config.json"  # RUN/config.json: the resolved training recipe
COMMANDS_NAME = "commands.txt"  # RUN/commands.txt: every command run on the folder
CARD_NAME = "card.json"  # RUN/<arm>/card.json: the model card
CHECKPOINT_NAME = "checkpoint.pt"  # RUN/<arm>/checkpoint.pt: resumable training state (weights_only loadable)
HISTORY_NAME = "history.csv"  # RUN/<arm>/history.csv: one row per epoch
RESULTS_NAME = "results.csv"  # RUN/results.csv: one row per attack cell (appended)
SAMPLES_NAME = "samples.bin"  # RUN/samples.bin: per-sample correctness of every cell (appended records)
LEGACY_SAMPLES_DIR = "samples"  # RUN/samples/<cell_id>.npy: the per-cell layout of row format 1 (read only)
STATE_NAME = "sweep_state.json"  # RUN/sweep_state.json: each spec's hash and cells
CHECKS_NAME = "checks.json"  # RUN/checks.json: sanity-check verdicts over every current row
DIAGNOSTICS_NAME = "diagnostics.json"  # RUN/diagnostics.json: per-arm gradient and quantizer statistics
ATTACK_LOCK = ".attack.lock"
TRAIN_LOCK = ".train.lock"
MANIFEST_NAME = "manifest.json"  # REPORT/data/manifest.json

# --- results.csv ------------------------------------------------------------------------------------------------

ENGINE_NOT_USED = "not used"  # the results' torchattacks column of a cell the default engine computed

ROW_FORMAT = 2
"""Format of the rows this version writes. 1: until 0.1 (PGD scored at its final iterate; ``bpda`` = hard-rounding
forward). 2: a sample counts as robust only if no iterate of the attack fooled the evaluated model; ``bpda`` is the
textbook BPDA (deployed forward, identity backward) and ``bpda-hard`` the hard-rounding one."""

# RESULT_COLUMNS and TEXT_COLUMNS derive from the cell record (runfolder/cell.py); see ``__getattr__`` below.


# --- arms -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One arm of a paired run: the same backbone, recipe and seed, a different front end.

    Attributes:
        name: the folder name and the value of the ``arm`` column.
        display: how reports name it.
        front_end: ``none`` (no JPEG layer) or ``jpeg`` (a JpegLayer in front of the backbone).
        learns_tables: whether training updates the quantization tables.
        deployed_quantizer: the quantizer mode the arm is evaluated with (``soft`` or ``hard``); None without JPEG.
        description: one line for help texts and reports.
    """

    name: str
    display: str
    front_end: str
    learns_tables: bool
    deployed_quantizer: str | None
    description: str

    @property
    def has_jpeg(self) -> bool:
        return self.front_end == "jpeg"


BASELINE = "baseline"
JPEGDL = "jpegdl"
JPEG_FROZEN = "jpeg-frozen"
JPEG_STANDARD = "jpeg-standard"
ARMS: dict[str, Arm] = {
    BASELINE: Arm(BASELINE, "baseline", "none", False, None, "the backbone alone"),
    JPEGDL: Arm(
        JPEGDL,
        "JPEG-DL",
        "jpeg",
        True,
        "soft",
        "JPEG-DL: learnable tables, soft quantizer, trained jointly with the backbone",
    ),
    JPEG_FROZEN: Arm(
        JPEG_FROZEN,
        "JPEG-DL (frozen tables)",
        "jpeg",
        False,
        "soft",
        "control: the JPEG-DL layer with its tables fixed at their initial values",
    ),
    JPEG_STANDARD: Arm(
        JPEG_STANDARD,
        "standard JPEG",
        "jpeg",
        False,
        "hard",
        "control: a fixed standard JPEG front end (IJG tables, hard rounding)",
    ),
}
DEFAULT_ARMS = (BASELINE, JPEGDL)


def check_arm(name: str) -> Arm:
    """The :class:`Arm` called ``name``; a ValueError that lists the known arms otherwise."""
    try:
        return ARMS[name]
    except KeyError:
        raise RunFormatError(f"unknown arm {name!r}; known arms: {', '.join(ARMS)}") from None


def arm_display(name: str) -> str:
    """The report name of an arm (the name itself for an unknown arm)."""
    arm = ARMS.get(name)
    return arm.display if arm is not None else name


def arm_order(name: str) -> tuple[int, str]:
    """Sort key: the registry order first (baseline, JPEG-DL, controls), unknown names after, alphabetically."""
    order = list(ARMS)
    return (order.index(name), name) if name in ARMS else (len(order), name)


# --- errors and names -------------------------------------------------------------------------------------------


class RunFormatError(ValueError):
    """A file or name of a run folder that does not follow docs/run-format.md; the message names it and the fix."""


class CardError(RunFormatError):
    """A model card (card.json) that is missing a field or holds a value of the wrong type."""


_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=@-]{0,127}")


def safe_name(name: Any, what: str) -> str:
    """``name`` when it can be used as one path component: letters, digits and ``_ . + = @ -``, not starting with a
    dot or dash, no separators, no ``..``, at most 128 characters. Otherwise a :class:`RunFormatError`."""
    if not isinstance(name, str) or not _SAFE.fullmatch(name) or ".." in name:
        raise RunFormatError(
            f"{what} {name!r} is not a safe file name (letters, digits and _ . + = @ - only, no path separators, "
            "no '..', at most 128 characters)"
        )
    return name


def dumps_json(obj: Any) -> str:
    """JSON text for the run folder: indented, and refusing NaN/inf (bare ``NaN`` is not JSON)."""
    try:
        return json.dumps(obj, indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise RunFormatError(f"refusing to write a non-finite number into a JSON file ({exc})") from None


# --- the model card ---------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_CARD_TYPES: dict[str, tuple[str, Any]] = {
    # field: (description of the expected type, predicate)
    "model": ("a model name (string)", lambda v: isinstance(v, str) and bool(v)),
    "arm": ("an arm name (string)", lambda v: isinstance(v, str) and bool(v)),
    "dataset": ("a data set name (string)", lambda v: isinstance(v, str) and bool(v)),
    "num_classes": ("a positive integer", lambda v: _is_int(v) and v > 0),
    "jpeg": ("a JpegConfig object or null", lambda v: v is None or isinstance(v, dict)),
    "seed": ("an integer or null", lambda v: v is None or _is_int(v)),
    "epochs": ("a positive integer or null", lambda v: v is None or (_is_int(v) and v > 0)),
    "epochs_done": ("a non-negative integer or null", lambda v: v is None or (_is_int(v) and v >= 0)),
    "finished": ("true, false or null", lambda v: v is None or isinstance(v, bool)),
    "clean_top1": ("a number in [0, 1] or null", lambda v: v is None or (_is_number(v) and 0 <= v <= 1)),
    "best_top1": ("a number in [0, 1] or null", lambda v: v is None or (_is_number(v) and 0 <= v <= 1)),
    "best_epoch": ("a positive integer or null", lambda v: v is None or (_is_int(v) and v > 0)),
    "fingerprint": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "recipe": ("an object or null", lambda v: v is None or isinstance(v, dict)),
    "qtables": ("an object or null", lambda v: v is None or isinstance(v, dict)),
    "qtables_init": ("an object or null", lambda v: v is None or isinstance(v, dict)),
}
_CARD_REQUIRED = ("model", "arm", "dataset", "num_classes")


@dataclass
class ModelCard:
    """What is known about one trained arm (``RUN/<arm>/card.json``; fields in docs/run-format.md).

    Only ``model``, ``arm``, ``dataset`` and ``num_classes`` are required; every other field may be missing in a
    card written by hand or by an older version. Unknown fields are kept in ``extra`` and written back unchanged.
    """

    model: str
    arm: str
    dataset: str
    num_classes: int
    jpeg: dict | None = None
    seed: int | None = None
    epochs: int | None = None
    epochs_done: int | None = None
    finished: bool | None = None
    recipe: dict | None = None
    clean_top1: float | None = None
    clean_top1_note: str | None = None
    best_top1: float | None = None
    best_epoch: int | None = None
    best_top1_note: str | None = None
    qtables: dict | None = None
    qtables_init: dict | None = None
    n_parameters: int | None = None
    n_jpeg_parameters: int | None = None
    data: dict | None = None
    wall_seconds: float | None = None
    world_size: int | None = None
    fingerprint: str | None = None
    git_sha: str | None = None
    versions: dict | None = None
    device: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    source_keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)  # the keys read, in order

    @property
    def is_finished(self) -> bool:
        """Training reached its planned epochs (cards without the fields count as finished)."""
        if self.finished is not None:
            return self.finished
        return self.epochs is None or self.epochs_done is None or self.epochs_done >= self.epochs

    @classmethod
    def from_dict(cls, data: Any, where: str = "card.json") -> ModelCard:
        """Validate and build; a :class:`CardError` names ``where``, the field and what it should hold."""
        if not isinstance(data, dict):
            raise CardError(f"{where}: a model card must be a JSON object, got {type(data).__name__}")
        for key in _CARD_REQUIRED:
            if key not in data:
                raise CardError(f"{where}: lacks the field {key!r} (is this a card written by `jpeg-robust train`?)")
        for key, (expected, ok) in _CARD_TYPES.items():
            if key in data and not ok(data[key]):
                raise CardError(f"{where}: field {key!r} must be {expected}, got {data[key]!r}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "source_keys"}
        return cls(
            **{k: v for k, v in data.items() if k in known},
            extra={k: v for k, v in data.items() if k not in known},
            source_keys=tuple(data),
        )

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise CardError(f"{path}: not UTF-8 text; restore it from a backup or retrain the arm") from None
        except json.JSONDecodeError as exc:
            raise CardError(f"{path}: not valid JSON ({exc}); restore it from a backup or retrain the arm") from None
        return cls.from_dict(data, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON data. A card read from a file gives back the fields it was read with, in their order
        (plus any field set since), so a copy of it is the same file."""
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("extra", "source_keys")
        }
        out.update(self.extra)
        if self.source_keys is None:
            return out
        ordered = {k: out[k] for k in self.source_keys if k in out}
        return ordered | {k: v for k, v in out.items() if k not in ordered and v is not None}


def __getattr__(name: str) -> Any:
    """``RESULT_COLUMNS`` and ``TEXT_COLUMNS``: derived from the typed cell record, imported on first use (the
    record's module imports this one)."""
    if name in ("RESULT_COLUMNS", "TEXT_COLUMNS"):
        from . import cell

        return getattr(cell, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
