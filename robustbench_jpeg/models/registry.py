"""A small timm-style model registry: ``@register_model`` factories, ``create_model`` and ``list_models``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..jpeg import JpegConfig, JpegLayer
from .wrappers import CIFAR100_MEAN, CIFAR100_STD, RobustNet

__all__ = [
    "register_model",
    "create_model",
    "list_models",
    "is_model",
    "UnknownModelError",
    "default_lr",
    "ModelRecipe",
    "recipe_defaults",
]


@dataclass(frozen=True)
class ModelRecipe:
    """What the paper's recipe says about one architecture.

    Attributes:
        lr: the SGD learning rate (0.05; 0.01 for MobileNetV2 and the ShuffleNets, as RepDistiller).
        paper_table: the authors' sensitivity-derived initial JPEG table used for ``q_init="paper"``.
        borrowed: True when the authors published no table for this architecture and the closest relative's is
            used (recorded in the card through ``JpegConfig.paper_table``).
    """

    lr: float = 0.05
    paper_table: str = "resnet56"
    borrowed: bool = True


_BACKBONES: dict[str, Callable[..., nn.Module]] = {}
_RECIPES: dict[str, ModelRecipe] = {}


class UnknownModelError(KeyError, ValueError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register_model(
    name: str | None = None, lr: float = 0.05, paper_table: str | None = None, borrow: str = "resnet56"
) -> Callable:
    """Register a backbone factory ``fn(num_classes) -> nn.Module`` under ``name`` (default: function name).

    ``lr`` is the paper's SGD learning rate for this architecture; ``paper_table`` the authors' initial JPEG table
    for it, or None when none was published and the closest relative's table ``borrow`` is used.
    """

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _BACKBONES:
            raise ValueError(f"model {key!r} is already registered")
        _BACKBONES[key] = fn
        _RECIPES[key] = ModelRecipe(lr=lr, paper_table=paper_table or borrow, borrowed=paper_table is None)
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


def recipe_defaults(name: str) -> ModelRecipe:
    """The paper recipe's per-architecture data (learning rate, initial JPEG table)."""
    _check_name(name)
    return _RECIPES[name]


def default_lr(name: str) -> float:
    return recipe_defaults(name).lr


def _check_name(name: str) -> None:
    _ensure_loaded()
    if name not in _BACKBONES:
        raise UnknownModelError(f"unknown model {name!r}; available models: {', '.join(sorted(_BACKBONES))}")


def create_model(name: str, num_classes: int = 100, jpeg: JpegConfig | None = None) -> RobustNet:
    """Build a model that takes RGB in [0, 1] and returns logits.

    ``jpeg=None`` gives the baseline arm; a :class:`JpegConfig` gives the JPEG-DL arm, which is the same backbone
    with a :class:`JpegLayer` composed in front, so the two arms differ by exactly one module. For
    ``q_init="paper"`` without an explicit ``paper_table``, the table of this architecture (or its closest
    relative, see :func:`recipe_defaults`) is used.
    """
    _check_name(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    backbone = _BACKBONES[name](num_classes=num_classes)
    layer = None
    if jpeg is not None:
        if jpeg.q_init == "paper" and jpeg.paper_table is None:
            jpeg = dataclasses.replace(jpeg, paper_table=_RECIPES[name].paper_table)
        layer = JpegLayer(jpeg)
    return RobustNet(backbone, jpeg=layer, mean=CIFAR100_MEAN, std=CIFAR100_STD, name=name)
