"""Model zoo: the paper's CIFAR-100 architectures behind a timm-style registry."""

from .registry import (
    ModelRecipe,
    UnknownModelError,
    create_model,
    default_lr,
    is_model,
    list_models,
    recipe_defaults,
    register_model,
)
from .wrappers import Normalize, RobustNet

__all__ = [
    "create_model",
    "list_models",
    "is_model",
    "register_model",
    "default_lr",
    "recipe_defaults",
    "ModelRecipe",
    "UnknownModelError",
    "RobustNet",
    "Normalize",
]
