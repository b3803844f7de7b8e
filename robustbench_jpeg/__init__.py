"""robustbench-jpeg: does JPEG-DL really make image classifiers more robust to adversarial attacks?

Public API (stable): ``create_model``, ``list_models``, ``load_model``, ``JpegConfig``, ``JpegLayer``,
``load_split``, ``train_pair``, ``TrainConfig``, ``RunOptions``, ``evaluate`` (attack any model, write a run folder).
"""

from __future__ import annotations

__version__ = "0.2.0"

from .checkpoint import load_model
from .config import RunOptions, TrainConfig
from .data import load_split
from .jpeg import JpegConfig, JpegLayer
from .models import create_model, list_models

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "load_model",
    "load_split",
    "JpegConfig",
    "JpegLayer",
    "TrainConfig",
    "RunOptions",
    "train_pair",
    "evaluate",
]


def __getattr__(name: str):
    if name == "train_pair":
        from .train import train_pair

        return train_pair
    if name == "evaluate":
        from .attack.evaluate_any import evaluate

        return evaluate
    raise AttributeError(name)
