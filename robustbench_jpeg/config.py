"""Typed configuration of a paired training run.

``TrainConfig`` is the *recipe*: everything that determines what is trained. Two runs with equal TrainConfigs
are the same experiment, and ``--resume`` refuses a changed one. ``RunOptions`` is *how* it runs (device,
precision, progress output, time limit); it may change between sittings of one run (e.g. resuming on a GPU).
Per-architecture defaults (the learning rate, the initial JPEG table) live in the model registry and are filled
in by :func:`robustbench_jpeg.train.resolve_config`. Every number is checked: a NaN, an infinity or a value out of
range is a :class:`ConfigError` naming the option.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .jpeg import JpegConfig
from .runfolder import ARMS, DEFAULT_ARMS

__all__ = [
    "TrainConfig",
    "RunOptions",
    "ConfigError",
    "PAPER_EPOCHS",
    "PAPER_MILESTONES",
    "ARM_NAMES",
    "COMPILE_MODES",
    "default_of",
    "RECIPES",
    "SCHEDULES",
    "recipe_config",
]

PAPER_EPOCHS = 240
PAPER_MILESTONES = (150, 180, 210)
ARM_NAMES = DEFAULT_ARMS
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SCHEDULES = ("step", "cosine")

# Named recipes: the TrainConfig fields each sets (anything given explicitly wins). ``paper`` is the paper's
# CIFAR-100 recipe (the defaults). ``cpu`` gets a small CNN to a usable accuracy in CPU time: 30 epochs at batch
# 128, SGD 0.1 with Nesterov momentum, 2 epochs of linear warm-up then cosine decay, label smoothing 0.1. Both arms
# use it identically; the JPEG tables keep the paper's optimiser (Adam 0.003, constant) and softness.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        "epochs": 30,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": True,
        "schedule": "cosine",
        "warmup_epochs": 2,
        "label_smoothing": 0.1,
    },
}


class ConfigError(ValueError):
    """An invalid or inconsistent configuration; the message names the option."""


def default_of(cls: type, name: str) -> Any:
    """The default of a dataclass field (the one place defaults live; the CLI shows and uses these)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _number(
    name: str,
    value: Any,
    minimum: float | None = None,
    positive: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe of a paired run. Defaults are the paper's CIFAR-100 recipe (docs/method.md).

    Attributes:
        model: registry name (``list_models()``).
        dataset: ``cifar100`` or ``cifar100-mini``.
        epochs: 240 in the paper.
        batch_size: 64 in the paper.
        lr: SGD learning rate; None = the architecture's paper value (0.05, or 0.01 for MobileNetV2/ShuffleNets).
        momentum, weight_decay: SGD momentum 0.9 and weight decay 5e-4 (all backbone parameters).
        milestones: epochs after which lr is multiplied by ``gamma``; None = the paper's 150/180/210 scaled by
            epochs / 240 (exactly 150/180/210 at 240 epochs).
        gamma: lr decay factor, 0.1.
        jpeg_lr: Adam learning rate of the 128 step sizes, 0.003, no weight decay.
        jpeg_lr_schedule: ``constant`` (the paper's most likely setting) or ``step`` (same milestones as the CNN).
        jpeg: the JPEG layer of the ``jpegdl`` arm.
        seed: seeds weights, data order and augmentation; every arm shares it.
        arms: which arms to train (``runfolder.ARMS``).
        jpeg_standard_quality: IJG quality of the ``jpeg-standard`` control arm's fixed tables.
        recipe: the name of the recipe the other fields came from (``RECIPES``; ``paper`` by default), recorded in
            the model card.
        schedule: ``step`` (``milestones``, ``gamma``: the paper's) or ``cosine`` (linear warm-up over
            ``warmup_epochs``, then cosine decay to zero over the remaining epochs), applied at each epoch's start.
        warmup_epochs: epochs of linear warm-up of the ``cosine`` schedule.
        label_smoothing: of the training cross-entropy (0 = none, the paper's).
        nesterov: Nesterov momentum for SGD.
    """

    model: str = "resnet56"
    dataset: str = "cifar100"
    epochs: int = PAPER_EPOCHS
    batch_size: int = 64
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.1
    jpeg_lr: float = 0.003
    jpeg_lr_schedule: str = "constant"
    jpeg: JpegConfig = field(default_factory=JpegConfig)
    seed: int = 0
    arms: tuple[str, ...] = ARM_NAMES
    jpeg_standard_quality: int = 75
    recipe: str = "paper"
    schedule: str = "step"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _number("epochs", self.epochs, minimum=1, integer=True)
        _number("batch_size", self.batch_size, minimum=1, integer=True)
        _number("lr", self.lr, positive=True, optional=True)
        _number("momentum", self.momentum, minimum=0)
        _number("weight_decay", self.weight_decay, minimum=0)
        _number("gamma", self.gamma, positive=True)
        _number("jpeg_lr", self.jpeg_lr, minimum=0)
        _number("seed", self.seed, minimum=0, integer=True)
        _number("jpeg_standard_quality", self.jpeg_standard_quality, minimum=1, integer=True)
        if self.jpeg_standard_quality > 100:
            raise ConfigError(f"jpeg_standard_quality must be in 1..100, got {self.jpeg_standard_quality}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        _number("warmup_epochs", self.warmup_epochs, minimum=0, integer=True)
        if self.warmup_epochs >= self.epochs and self.schedule == "cosine":
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        _number("label_smoothing", self.label_smoothing, minimum=0)
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing must be below 1, got {self.label_smoothing!r}")
        if not isinstance(self.nesterov, bool):
            raise ConfigError(f"nesterov must be true or false, got {self.nesterov!r}")
        if self.nesterov and not self.momentum > 0:
            raise ConfigError("nesterov needs a positive momentum")
        if self.jpeg_lr_schedule not in ("constant", "step"):
            raise ConfigError(f"jpeg_lr_schedule must be 'constant' or 'step', got {self.jpeg_lr_schedule!r}")
        if not self.arms or any(arm not in ARMS for arm in self.arms) or len(set(self.arms)) != len(self.arms):
            raise ConfigError(
                f"arms must be a non-empty list of distinct arms from {', '.join(ARMS)}, got {list(self.arms)}"
            )
        if self.milestones is not None:
            for m in self.milestones:
                _number("milestones", m, minimum=1, integer=True)
        if not isinstance(self.jpeg, JpegConfig):
            raise ConfigError(f"jpeg must be a JpegConfig, got {type(self.jpeg).__name__}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["jpeg"] = self.jpeg.to_dict()
        data["arms"] = list(self.arms)
        data["milestones"] = list(self.milestones) if self.milestones is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields: {sorted(unknown)}")
        data = dict(data)
        if "jpeg" in data and isinstance(data["jpeg"], dict):
            try:
                data["jpeg"] = JpegConfig.from_dict(data["jpeg"])
            except ValueError as exc:
                raise ConfigError(f"jpeg: {exc}") from None
        for key in ("arms", "milestones"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def recipe_config(recipe: str = "paper", **fields: Any) -> TrainConfig:
    """The :class:`TrainConfig` of the named recipe (``RECIPES``), with ``fields`` given explicitly overriding it;
    an unknown name is refused by :class:`TrainConfig` itself."""
    return TrainConfig(**{**RECIPES.get(recipe, {}), **fields, "recipe": recipe})


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; may differ between sittings of one run.

    Attributes:
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        data_dir: folder of the torchvision CIFAR-100 files (``cifar100`` only).
        download: allow torchvision to download CIFAR-100 when it is absent.
        amp: ``auto`` (bf16 autocast for the backbone on CUDA and on CPUs with bf16 matrix units, AMX-BF16 or
            AVX512-BF16; off on other CPUs), ``bf16`` or ``off``. The JPEG layer always runs in float32, and test
            accuracy is always measured in float32.
        channels_last: None = where ``amp`` ``auto`` turns bf16 on (CUDA, bf16-capable CPUs), off elsewhere.
        compile: wrap the model in ``torch.compile`` (static shapes: ``dynamic=False``).
        compile_mode: ``torch.compile``'s mode (``default``, ``reduce-overhead`` (CUDA graphs), ``max-autotune``).
        cuda_graph: capture the whole training step (forward, backward, both optimisers, the table projection,
            the metrics) as one CUDA graph and replay it (``train/graph.py``, docs/gpu.md). Where capture is
            impossible (CPU, several processes, ``compile``) training runs eagerly with a one-line warning.
        eval_batch_size: batch size of test-set evaluation.
        time_limit_s: stop cleanly (checkpoint written) once this many seconds have passed; resume later.
        checkpoint_every_s: also checkpoint inside an epoch at this interval (seconds); 0 = at epoch ends only.
        progress: show progress bars (on a terminal; otherwise one line per epoch).
        train_subset: train on the first K training images only (smoke runs and tests; the card's
            ``data.train_images`` and config.json's ``train_subset`` record it). None = the whole training split.
    """

    device: str = "auto"
    data_dir: str | None = None
    download: bool = False
    amp: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    compile_mode: str = "default"
    cuda_graph: bool = False
    eval_batch_size: int = 1000
    time_limit_s: float | None = None
    checkpoint_every_s: float = 300.0
    progress: bool = True
    train_subset: int | None = None

    def __post_init__(self) -> None:
        device = str(self.device)
        if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.amp not in ("auto", "bf16", "off"):
            raise ConfigError(f"amp must be auto, bf16 or off, got {self.amp!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        _number("eval_batch_size", self.eval_batch_size, minimum=1, integer=True)
        _number("time_limit", self.time_limit_s, positive=True, optional=True)
        _number("checkpoint_every", self.checkpoint_every_s, minimum=0)
        _number("train_subset", self.train_subset, minimum=1, integer=True, optional=True)
