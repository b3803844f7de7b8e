"""How an attack gets its gradient through a JPEG front end (the ``grad`` of a spec and of a results row).

The evaluated model always runs as deployed (the JPEG-DL arm with its soft quantizer). Crafting may differ:

* ``soft``: plain autograd through the deployed quantizer (white-box; what the paper's protocol does).
* ``bpda``: the textbook BPDA of Athalye, Carlini, Wagner (ICML 2018, arXiv 1802.00420): the deployed forward,
  the identity as the quantizer's backward.
* ``bpda-hard``: hard rounding in the forward, identity backward (the rounding defence's BPDA; until row format 2
  this toolkit called it ``bpda``).
* ``surrogate``: the deployed forward with the backward of a softer quantizer (softness ``surrogate_alpha``), a
  smooth surrogate adapted to this defence (Tramer, Carlini, Brendel, Madry, NeurIPS 2020, arXiv 2002.08347).
* ``none``: models without a JPEG layer, and gradient-free attacks (which query the deployed model).

An arm deployed with hard rounding (a fixed standard-JPEG front end) is crafted through its deployed *hard* forward
in every mode, and each request is recorded as what it crafts with: ``soft`` becomes ``hard`` (white-box, the
gradient of hard rounding), ``bpda`` becomes ``bpda-hard`` (hard forward, identity backward) and ``surrogate``
becomes ``surrogate-hard`` (hard forward, the soft quantizer's backward at ``surrogate_alpha``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = [
    "GRAD_MODES",
    "QUANTIZER_GRADS",
    "SURROGATE_GRADS",
    "has_jpeg",
    "deployed_mode",
    "crafting_mode",
    "forward_of",
    "jpeg_mode",
]

GRAD_MODES = ("soft", "bpda", "bpda-hard", "surrogate")  # what a spec may ask for
# what a crafting mode runs forward: the soft quantizer or hard rounding (every grad a row can hold besides "none")
_FORWARD = {"soft": "soft", "bpda": "soft", "surrogate": "soft", "hard": "hard", "bpda-hard": "hard"}
_FORWARD["surrogate-hard"] = "hard"
QUANTIZER_GRADS = tuple(_FORWARD)
SURROGATE_GRADS = ("surrogate", "surrogate-hard")  # the modes that need a surrogate_alpha
_ON_HARD = {"soft": "hard", "bpda": "bpda-hard", "surrogate": "surrogate-hard"}


def has_jpeg(model: nn.Module) -> bool:
    return bool(getattr(model, "has_jpeg", False))


def deployed_mode(model: nn.Module) -> str:
    """The quantizer mode the model is evaluated with (``soft``, or ``hard`` for a fixed standard-JPEG front end)."""
    return getattr(model.jpeg, "deployed_mode", "soft") if has_jpeg(model) else "none"


def crafting_mode(deployed: str, grad: str) -> str:
    """The layer mode an attack crafts with: on a hard-deployed arm, every request keeps the deployed hard forward
    (``soft`` -> ``hard``, ``bpda`` -> ``bpda-hard``, ``surrogate`` -> ``surrogate-hard``)."""
    return _ON_HARD.get(grad, grad) if deployed == "hard" else grad


def forward_of(grad: str) -> str:
    """The quantizer a crafting mode runs forward (``soft`` or ``hard``); ``none`` for ``none``."""
    return _FORWARD.get(grad, "none")


@contextlib.contextmanager
def jpeg_mode(model: nn.Module, grad: str, surrogate_alpha: float | None = None) -> Iterator[None]:
    """Craft with the JPEG layer in mode ``grad``; the deployed mode is restored afterwards.

    ``grad="none"`` leaves a model without a JPEG layer untouched. Asking for a quantizer mode on a model without
    a JPEG layer, or ``none`` on one with it, is an error: it would silently attack something other than recorded.
    """
    if grad == "none":
        if has_jpeg(model):
            raise ValueError("grad 'none' given for a model with a JPEG layer; use soft, bpda, bpda-hard or surrogate")
        yield
        return
    if not has_jpeg(model):
        raise ValueError(f"grad {grad!r} needs a model with a JPEG layer (model.has_jpeg is False)")
    if grad not in QUANTIZER_GRADS:
        raise ValueError(f"unknown grad mode {grad!r}; choose from {', '.join(GRAD_MODES)}")
    if grad in SURROGATE_GRADS and surrogate_alpha is None:
        raise ValueError("grad 'surrogate' needs a surrogate_alpha (the softness of the backward quantizer)")
    layer = model.jpeg
    deployed = deployed_mode(model)
    saved_alpha = getattr(layer, "surrogate_alpha", None)
    layer.surrogate_alpha = surrogate_alpha if grad in SURROGATE_GRADS else saved_alpha
    layer.mode = grad
    try:
        yield
    finally:
        layer.mode = deployed
        layer.surrogate_alpha = saved_alpha
