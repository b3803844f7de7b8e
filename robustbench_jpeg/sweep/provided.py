"""Models and test images handed over in memory (``robustbench_jpeg.evaluate``) instead of loaded from a checkpoint
and a data set: the sweep's evaluator asks here first, by arm folder."""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["ProvidedArm", "provide_arm", "provided_arm"]


@dataclass(frozen=True)
class ProvidedArm:
    """An arm's model (eval mode, [0, 1] RGB -> logits) and its test images (NCHW, on the 0..255 scale) and labels."""

    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor


_PROVIDED: contextvars.ContextVar[dict[Path, ProvidedArm] | None] = contextvars.ContextVar(
    "provided_arms", default=None
)


@contextlib.contextmanager
def provide_arm(arm_dir: str | os.PathLike, arm: ProvidedArm) -> Iterator[None]:
    """Inside the block, the sweep takes ``arm_dir``'s model and test data from ``arm``."""
    current = dict(_PROVIDED.get() or {})
    current[Path(arm_dir).resolve()] = arm
    token = _PROVIDED.set(current)
    try:
        yield
    finally:
        _PROVIDED.reset(token)


def provided_arm(arm_dir: str | os.PathLike) -> ProvidedArm | None:
    return (_PROVIDED.get() or {}).get(Path(arm_dir).resolve())
