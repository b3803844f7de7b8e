"""Crafting adversarial examples and scoring them on the deployed model.

:func:`run_attack` is the one primitive the sweep uses: it builds the method's attack with the current engine
(AutoAttack's reference code by default, see ``methods``) on the crafting model (the JPEG layer in the requested
gradient mode), seeds its randomness, and returns the examples together with a per-image "fooled" flag. An image
is fooled when the **deployed** evaluated model misclassifies the final example or, for methods that query the
whole batch at every iterate (FGSM, PGD), any iterate inside the threat model, as AutoAttack's APGD counts it.
APGD, FAB and Square keep their own best iterate.

Every example is checked to lie in the eps-ball around its image and in [0, 1]; one that does not (an engine
bug) is replaced by the clean image and reported.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .gradients import DEPLOYED_FORWARD, deployed_mode, has_jpeg, jpeg_mode
from .methods import build_attack, get_method
from .random_starts import PerSampleRandom, derive_seed

__all__ = ["run_attack", "craft", "derive_seed", "within_threat", "AttackEngineWarning"]

BALL_RTOL = 1e-6
BALL_ATOL = 1e-6


class AttackEngineWarning(UserWarning):
    """The attack engine returned an example outside the threat model; it was replaced by the clean image."""


def within_threat(x: torch.Tensor, x0: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Per image: is ``x`` in [0, 1] and within ``eps`` of ``x0`` (L-inf or L2), up to float rounding?"""
    delta = (x - x0).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    in_box = (x.flatten(1).amin(dim=1) >= -BALL_ATOL) & (x.flatten(1).amax(dim=1) <= 1 + BALL_ATOL)
    return in_box & (size <= eps * (1 + BALL_RTOL) + BALL_ATOL)


class _IterateScorer(nn.Module):
    """What the attack sees: the crafting model's logits. Each whole-batch call also scores the iterate on the
    deployed evaluated model (reusing the logits when the forward is the deployed one) and remembers fooled images."""

    def __init__(
        self,
        crafting: nn.Module,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: str,
        evaluate: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        super().__init__()
        self.crafting = crafting
        self.x0, self.y, self.eps, self.norm, self.evaluate = x0, y, eps, norm, evaluate
        self.fooled = torch.zeros(len(y), dtype=torch.bool, device=y.device)
        self.train(crafting.training)  # engines may restore the mode they find on the model they are given

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.crafting(x)
        if x.shape == self.x0.shape:
            with torch.no_grad():
                pred = (logits if self.evaluate is None else self.evaluate(x.detach())).argmax(dim=1)
                self.fooled |= (pred != self.y) & within_threat(x.detach(), self.x0, self.eps, self.norm)
        return logits


def run_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str,
    norm: str,
    eps: float,
    steps: int = 1,
    step_size: float | None = None,
    random_start: bool = False,
    grad: str = "none",
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    surrogate_alpha: float | None = None,
    target: nn.Module | None = None,
    start_seeds: Sequence[int] | None = None,
    num_classes: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack ``(x, y)`` crafting on ``model`` (JPEG layer in mode ``grad``); score on ``target`` as deployed.

    Args:
        model: the crafting model, in eval mode (its JPEG layer, if any, in its deployed mode).
        x, y: float images in [0, 1] on the model's device, and labels.
        target: the evaluated model (another arm for transfer attacks); default ``model`` as deployed.
        start_seeds: per-image seeds of the random start (methods with per-sample randomness); default from
            ``seed`` and the image's position.
        seed: seed of the attack's randomness (per-batch methods) and default start seeds.

    Returns:
        ``(x_adv, fooled)``: detached examples within the threat model, and a bool tensor: the deployed target
        misclassified the final example or an iterate inside the threat model.
    """
    spec = get_method(method)
    if norm not in spec.norms:
        raise ValueError(f"{method} does not support norm {norm!r} (supported: {', '.join(spec.norms)})")
    for m in (model, target):
        if m is not None and m.training:
            raise ValueError("attack an eval-mode model (model.eval()); train-mode BatchNorm would mix the batch")
    target = model if target is None else target
    if eps == 0:
        with torch.no_grad():
            return x.detach().clone(), _deployed_logits(target, x).argmax(dim=1) != y
    if not spec.uses_gradient:
        grad = "none" if not has_jpeg(model) else deployed_mode(model)
    same_forward = target is model and (not has_jpeg(model) or grad in DEPLOYED_FORWARD or grad == deployed_mode(model))
    evaluate = None if same_forward else (lambda z: _deployed_logits(target, z))
    scorer = _IterateScorer(model, x.detach(), y, eps, norm, evaluate) if spec.scores_iterates else model
    attack = build_attack(
        spec,
        scorer,
        eps=eps,
        norm=norm,
        steps=steps,
        step_size=eps if step_size is None else step_size,
        random_start=random_start,
        seed=int(seed) % (2**31),
        num_classes=num_classes,
        **spec.check_params(params),
    )
    devices = (
        [x.device.index if x.device.index is not None else torch.cuda.current_device()]
        if x.device.type == "cuda"
        else []
    )
    mode = jpeg_mode(model, grad, surrogate_alpha) if has_jpeg(model) and grad != "none" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=devices), mode:
        torch.manual_seed(int(seed) % (2**63))
        if spec.per_sample_random:
            seeds = start_seeds if start_seeds is not None else [derive_seed(seed, i) for i in range(len(y))]
            with PerSampleRandom(seeds):
                adv = attack(x, y)
        else:
            adv = attack(x, y)
    if model.training or target.training:
        raise RuntimeError("a model left eval mode during the attack")
    adv = adv.detach()
    inside = within_threat(adv, x, eps, norm)
    if not bool(inside.all()):
        warnings.warn(
            f"{method} returned {int((~inside).sum())} example(s) outside the {norm} ball of radius {eps:g}"
            " or [0, 1]; they are replaced by the clean image",
            AttackEngineWarning,
            stacklevel=2,
        )
        adv = torch.where(inside.view(-1, 1, 1, 1), adv, x)
    with torch.no_grad():
        fooled = _deployed_logits(target, adv).argmax(dim=1) != y
    if spec.scores_iterates:
        fooled |= scorer.fooled
    return adv, fooled


def _deployed_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` with its JPEG layer (if any) in the deployed mode, whatever mode it is in now."""
    if not has_jpeg(model) or model.jpeg.mode == deployed_mode(model):
        return model(x)
    current = model.jpeg.mode
    model.jpeg.mode = deployed_mode(model)
    try:
        return model(x)
    finally:
        model.jpeg.mode = current


def craft(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str,
    norm: str,
    eps: float,
    steps: int = 1,
    step_size: float | None = None,
    random_start: bool = False,
    grad: str = "none",
    seed: int | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Adversarial examples only (see :func:`run_attack`); ``eps == 0`` returns ``x`` unchanged."""
    adv, _ = run_attack(
        model, x, y, method, norm, eps, steps, step_size, random_start, grad, seed=0 if seed is None else seed, **kwargs
    )
    return adv
