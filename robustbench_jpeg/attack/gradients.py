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

An arm deployed with hard rounding (a fixed standard-JPEG front end) gets its white-box gradient through the hard
quantizer: its ``soft`` request is crafted and recorded as ``hard``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["GRAD_MODES", "QUANTIZER_GRADS", "has_jpeg", "deployed_mode", "crafting_mode", "jpeg_mode"]

GRAD_MODES = ("soft", "bpda", "bpda-hard", "surrogate")
QUANTIZER_GRADS = GRAD_MODES + ("hard",)  # every grad a row can hold besides "none"
DEPLOYED_FORWARD = ("soft", "bpda", "surrogate")  # crafting modes whose forward is the deployed one (soft arms)


def has_jpeg(model: nn.Module) -> bool:
    return bool(getattr(model, "has_jpeg", False))


def deployed_mode(model: nn.Module) -> str:
    """The quantizer mode the model is evaluated with (``soft``, or ``hard`` for a fixed standard-JPEG front end)."""
    return getattr(model.jpeg, "deployed_mode", "soft") if has_jpeg(model) else "none"


def crafting_mode(deployed: str, grad: str) -> str:
    """The layer mode an attack crafts with: a white-box request on a hard-deployed arm becomes ``hard``."""
    if deployed == "hard" and grad == "soft":
        return "hard"
    return grad


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
    if grad == "surrogate" and surrogate_alpha is None:
        raise ValueError("grad 'surrogate' needs a surrogate_alpha (the softness of the backward quantizer)")
    layer = model.jpeg
    deployed = deployed_mode(model)
    saved_alpha = getattr(layer, "surrogate_alpha", None)
    layer.surrogate_alpha = surrogate_alpha if grad == "surrogate" else saved_alpha
    layer.mode = grad
    try:
        yield
    finally:
        layer.mode = deployed
        layer.surrogate_alpha = saved_alpha
