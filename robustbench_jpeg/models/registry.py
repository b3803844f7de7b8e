"""A small timm-style model registry: ``@register_model`` factories, ``create_model`` and ``list_models``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..jpeg import JpegConfig, JpegLayer
from ..jpeg.tables import PAPER_TABLE_FOR_MODEL
from .wrappers import CIFAR100_MEAN, CIFAR100_STD, RobustNet

__all__ = ["register_model", "create_model", "list_models", "is_model", "UnknownModelError", "default_lr"]

_BACKBONES: dict[str, Callable[..., nn.Module]] = {}
_DEFAULT_LR: dict[str, float] = {}


class UnknownModelError(KeyError, ValueError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register_model(name: str | None = None, lr: float = 0.05) -> Callable:
    """Register a backbone factory ``fn(num_classes) -> nn.Module`` under ``name`` (default: function name).

    ``lr`` is the paper's SGD learning rate for this architecture (0.05; 0.01 for MobileNetV2 and ShuffleNets).
    """

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _BACKBONES:
            raise ValueError(f"model {key!r} is already registered")
        _BACKBONES[key] = fn
        _DEFAULT_LR[key] = lr
        return fn

    return decorator


def _ensure_loaded() -> None:
    from . import backbones  # noqa: F401  (registers the zoo on import)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_BACKBONES)


def is_model(name: str) -> bool:
    _ensure_loaded()
    return name in _BACKBONES


def default_lr(name: str) -> float:
    _check_name(name)
    return _DEFAULT_LR[name]


def _check_name(name: str) -> None:
    _ensure_loaded()
    if name not in _BACKBONES:
        raise UnknownModelError(f"unknown model {name!r}; available models: {', '.join(sorted(_BACKBONES))}")


def create_model(name: str, num_classes: int = 100, jpeg: JpegConfig | None = None) -> RobustNet:
    """Build a model that takes RGB in [0, 1] and returns logits.

    ``jpeg=None`` gives the baseline arm; a :class:`JpegConfig` gives the JPEG-DL arm, which is the same backbone
    with a :class:`JpegLayer` composed in front, so the two arms differ by exactly one module. For
    ``q_init="paper"`` without an explicit ``paper_table``, the table of this architecture (or its closest
    relative, see ``PAPER_TABLE_FOR_MODEL``) is used.
    """
    _check_name(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    backbone = _BACKBONES[name](num_classes=num_classes)
    layer = None
    if jpeg is not None:
        if jpeg.q_init == "paper" and jpeg.paper_table is None:
            import dataclasses

            jpeg = dataclasses.replace(jpeg, paper_table=PAPER_TABLE_FOR_MODEL.get(name, "resnet56"))
        layer = JpegLayer(jpeg)
    return RobustNet(backbone, jpeg=layer, mean=CIFAR100_MEAN, std=CIFAR100_STD, name=name)
