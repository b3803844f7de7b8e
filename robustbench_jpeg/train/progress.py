"""Where an arm's training stands (:class:`Progress`), the learning-rate schedule, and ``history.csv``."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..provenance import atomic_write_text

if TYPE_CHECKING:
    from ..config import TrainConfig

__all__ = ["Progress", "lr_at", "scheduled_lr", "write_history", "HISTORY_FIELDS"]

HISTORY_FIELDS = ["epoch", "loss", "train_acc", "test_acc", "lr", "jpeg_lr", "seconds"]


def lr_at(base: float, epoch: int, milestones: tuple[int, ...], gamma: float) -> float:
    """Step schedule applied at epoch start (0-indexed epoch): decayed once per milestone already passed."""
    return base * gamma ** sum(epoch >= m for m in milestones)


def scheduled_lr(base: float, epoch: int, config: TrainConfig) -> float:
    """The learning rate of (0-indexed) ``epoch`` under ``config``'s schedule: ``step`` (:func:`lr_at`) or
    ``cosine`` (linear warm-up to ``base`` over ``warmup_epochs``, then ``base * (1 + cos(pi * t)) / 2`` with
    ``t = (k + 1) / (n + 1)`` for the k-th of the n epochs after the warm-up, so every epoch after the warm-up decays
    and the last trains at a small, positive rate)."""
    if config.schedule == "step":
        return lr_at(base, epoch, config.milestones, config.gamma)
    warmup = config.warmup_epochs
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    t = (epoch - warmup + 1) / (config.epochs - warmup + 1)
    return base * 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass
class Progress:
    """Epoch and step reached, the sums of the unfinished epoch, the per-epoch history and the best epoch.

    Saved inside the checkpoint (keys ``epoch``, ``step``, ``partial``, ``history``, ``best``, ``wall_seconds``,
    ``finished``, as the checkpoints of earlier versions), so a resumed run continues mid-epoch.
    """

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_acc: float = -1.0
    best_epoch: int = -1
    wall_seconds: float = 0.0
    finished: bool = False

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "partial": {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen, "seconds": self.seconds},
            "history": list(self.history),
            "best": {"acc": self.best_acc, "epoch": self.best_epoch},
            "wall_seconds": self.wall_seconds,
            "finished": self.finished,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        partial, best = dict(state["partial"]), dict(state["best"])
        return cls(
            epoch=int(state["epoch"]),
            step=int(state["step"]),
            loss_sum=float(partial["loss_sum"]),
            correct=int(partial["correct"]),
            seen=int(partial["seen"]),
            seconds=float(partial["seconds"]),
            history=list(state["history"]),
            best_acc=float(best["acc"]),
            best_epoch=int(best["epoch"]),
            wall_seconds=float(state["wall_seconds"]),
            finished=bool(state["finished"]),
        )

    def fold(self, loss_sum: float, correct: int, seen: int, seconds: float) -> None:
        """Add a stretch of steps of the current epoch."""
        self.loss_sum += loss_sum
        self.correct += correct
        self.seen = seen
        self.seconds += seconds
        self.wall_seconds += seconds

    def end_epoch(
        self, lr: float, jpeg_lr: float | None, test_acc: float, eval_seconds: float, epochs: int
    ) -> dict[str, Any]:
        """Close the epoch: its history row, the best epoch, and a fresh partial epoch."""
        row = {
            "epoch": self.epoch + 1,
            "loss": self.loss_sum / max(self.seen, 1),
            "train_acc": self.correct / max(self.seen, 1),
            "test_acc": test_acc,
            "lr": lr,
            "jpeg_lr": jpeg_lr,
            "seconds": round(self.seconds + eval_seconds, 3),
        }
        self.history.append(row)
        self.wall_seconds += eval_seconds
        if test_acc > self.best_acc:
            self.best_acc, self.best_epoch = test_acc, self.epoch
        self.epoch += 1
        self.step = 0
        self.loss_sum, self.correct, self.seen, self.seconds = 0.0, 0, 0, 0.0
        self.finished = self.epoch >= epochs
        return row

    @property
    def last_acc(self) -> float | None:
        return self.history[-1]["test_acc"] if self.history else None


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
