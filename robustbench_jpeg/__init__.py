"""robustbench-jpeg: does JPEG-DL really make image classifiers more robust to adversarial attacks?

Public API (stable): ``create_model``, ``list_models``, ``load_model``, ``JpegConfig``, ``JpegLayer``,
``load_split``, ``train_pair``, ``TrainConfig``, ``RunOptions``, ``evaluate`` (attack any model, write a run folder).
"""

from __future__ import annotations

__version__ = "0.3.0"

# name -> the module that defines it; imported on first use, so ``import robustbench_jpeg`` (and the command line's
# ``--help`` / ``--version``) does not import torch
_PUBLIC = {
    "create_model": "models",
    "list_models": "models",
    "load_model": "checkpoint",
    "load_split": "data",
    "JpegConfig": "jpeg",
    "JpegLayer": "jpeg",
    "TrainConfig": "config",
    "RunOptions": "config",
    "train_pair": "train",
    "evaluate": "sweep.evaluate_any",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'robustbench_jpeg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
