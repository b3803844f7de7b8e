"""Typed configuration of a paired training run.

``TrainConfig`` is the *recipe*: everything that determines what is trained. Two runs with equal TrainConfigs
are the same experiment, and ``--resume`` refuses a changed one. ``RunOptions`` is *how* it runs (device,
precision, progress output, time limit); it may change between sittings of one run (e.g. resuming on a GPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .jpeg import JpegConfig

__all__ = ["TrainConfig", "RunOptions", "ConfigError", "PAPER_EPOCHS", "PAPER_MILESTONES", "ARM_NAMES"]

PAPER_EPOCHS = 240
PAPER_MILESTONES = (150, 180, 210)
ARM_NAMES = ("baseline", "jpegdl")


class ConfigError(ValueError):
    """An invalid or inconsistent configuration."""


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe of a baseline / JPEG-DL pair. Defaults are the paper's CIFAR-100 recipe (spec s. 7).

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
        seed: seeds weights, data order and augmentation; both arms share it.
        arms: which arms to train.
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

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not self.jpeg_lr >= 0:
            raise ConfigError(f"jpeg_lr must be non-negative, got {self.jpeg_lr}")
        if self.jpeg_lr_schedule not in ("constant", "step"):
            raise ConfigError(f"jpeg_lr_schedule must be 'constant' or 'step', got {self.jpeg_lr_schedule!r}")
        if not self.arms or any(arm not in ARM_NAMES for arm in self.arms) or len(set(self.arms)) != len(self.arms):
            raise ConfigError(f"arms must be a non-empty subset of {ARM_NAMES}, got {self.arms}")
        if self.milestones is not None and any(m < 1 for m in self.milestones):
            raise ConfigError(f"milestones must be positive epochs, got {self.milestones}")

    def resolved(self) -> TrainConfig:
        """The same recipe with every ``None`` default filled in (what is saved and compared on resume)."""
        from .models import default_lr

        lr = self.lr if self.lr is not None else default_lr(self.model)
        milestones = self.milestones
        if milestones is None:
            milestones = tuple(max(1, round(m * self.epochs / PAPER_EPOCHS)) for m in PAPER_MILESTONES)
        jpeg = self.jpeg
        if jpeg.q_init == "paper" and jpeg.paper_table is None:
            from .jpeg.tables import PAPER_TABLE_FOR_MODEL

            jpeg = dataclasses.replace(jpeg, paper_table=PAPER_TABLE_FOR_MODEL.get(self.model, "resnet56"))
        return dataclasses.replace(self, lr=lr, milestones=tuple(int(m) for m in milestones), jpeg=jpeg)

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
            data["jpeg"] = JpegConfig.from_dict(data["jpeg"])
        for key in ("arms", "milestones"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; may differ between sittings of one run.

    Attributes:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        data_dir: folder of the torchvision CIFAR-100 files (``cifar100`` only).
        download: allow torchvision to download CIFAR-100 when it is absent.
        amp: ``auto`` (bf16 autocast for the backbone on CUDA, off on CPU), ``bf16`` or ``off``. The JPEG layer
            always runs in float32.
        channels_last: None = on for CUDA, off for CPU.
        compile: wrap the model in ``torch.compile``.
        eval_batch_size: batch size of test-set evaluation.
        time_limit_s: stop cleanly (checkpoint written) once this many seconds have passed; resume later.
        checkpoint_every_s: also checkpoint inside an epoch at this interval (seconds); 0 = at epoch ends only.
        progress: show progress bars.
        train_subset: train on the first K training images only (smoke runs and tests; the card's
            ``data.train_images`` and config.json's ``train_subset`` record it). None = the whole training split.
    """

    device: str = "auto"
    data_dir: str | None = None
    download: bool = False
    amp: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    eval_batch_size: int = 1000
    time_limit_s: float | None = None
    checkpoint_every_s: float = 300.0
    progress: bool = True
    train_subset: int | None = None

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.amp not in ("auto", "bf16", "off"):
            raise ConfigError(f"amp must be auto, bf16 or off, got {self.amp!r}")
        if self.eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be positive, got {self.eval_batch_size}")
        if self.train_subset is not None and self.train_subset < 1:
            raise ConfigError(f"train_subset must be positive, got {self.train_subset}")
