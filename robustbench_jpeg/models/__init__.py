"""Model zoo: the paper's CIFAR-100 architectures behind a timm-style registry."""

from .registry import UnknownModelError, create_model, default_lr, is_model, list_models, register_model
from .wrappers import Normalize, RobustNet

__all__ = [
    "create_model",
    "list_models",
    "is_model",
    "register_model",
    "default_lr",
    "UnknownModelError",
    "RobustNet",
    "Normalize",
]
