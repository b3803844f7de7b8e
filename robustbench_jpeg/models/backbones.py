"""Imports every backbone module so that their ``@register_model`` decorators run.

``registry._ensure_loaded()`` imports this module; adding an architecture means adding its module here.
"""

from __future__ import annotations

from . import mobilenetv2, resnet, shufflenet, tiny, vgg, wrn  # noqa: F401  (registration side effects)

__all__: list[str] = []
