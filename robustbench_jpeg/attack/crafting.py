"""Crafting adversarial examples and scoring them on the deployed model.

:func:`run_attack` is the one primitive the sweep uses: it builds the method's attack with the current engine
(AutoAttack's reference code by default, see ``methods``) on the crafting model (the JPEG layer in the requested
gradient mode), seeds its randomness, and returns the examples together with a per-image "fooled" flag. An image
is fooled when the **deployed** evaluated model misclassifies the final example or, for methods that query the
whole batch at every iterate (FGSM, PGD), any iterate inside the threat model, as AutoAttack's APGD counts it; the
example returned for such an image is the first iterate that fooled the deployed model (the final one otherwise).
APGD, FAB and Square keep their own best iterate.

A JPEG front end is crafted through in the cell's gradient mode (:mod:`.gradients`); on an arm deployed with hard
rounding every mode keeps the hard forward, and an iterate is scored on the crafting logits only when the
crafting forward is the deployed one.

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

from ..device import crafting_precision, exact_fp32
from ..runfolder.cell import Setting
from .gradients import SURROGATE_GRADS, crafting_mode, deployed_mode, forward_of, has_jpeg, jpeg_mode
from .methods import Method, build_attack, get_method
from .random_starts import PerSampleRandom, derive_seed

__all__ = ["run_attack", "craft", "attack_setting", "derive_seed", "within_threat", "AttackEngineWarning"]

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
    deployed evaluated model (reusing the logits when the forward is the deployed one), remembers fooled images and,
    per image, the first iterate that fooled it."""

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
        self.first = x0.clone()
        self.tf32 = False  # set while crafting in TF32 (device.crafting_precision)
        self.train(crafting.training)  # engines may restore the mode they find on the model they are given

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.crafting(x)
        if x.shape == self.x0.shape:
            with torch.no_grad():
                point = x.detach()
                if self.evaluate is None and not self.tf32:
                    scores = logits  # the deployed forward, in exact float32
                else:
                    with exact_fp32():  # crafting in TF32: the iterate is scored again, exactly
                        scores = (self.evaluate or self.crafting)(point)
                pred = scores.argmax(dim=1)
                new = (pred != self.y) & within_threat(point, self.x0, self.eps, self.norm) & ~self.fooled
                self.first[new] = point[new].to(self.first.dtype)
                self.fooled |= new
        return logits


def attack_setting(
    method: str,
    norm: str,
    eps: float,
    steps: int = 1,
    step_size: float | None = None,
    random_start: bool = False,
    grad: str = "none",
    params: Mapping[str, Any] | None = None,
    surrogate_alpha: float | None = None,
    eval_alpha: float | None = None,
    attack_seed: int = 0,
) -> Setting:
    """A :class:`Setting` for one attack, named as its method names itself (``step_size`` defaults to eps)."""
    spec = get_method(method)
    return Setting(
        attack=method,
        method_kind=spec.kind,
        attack_label=spec.display_name(steps),
        norm=norm,
        eps=float(eps),
        steps=int(steps),
        step_size=float(eps if step_size is None else step_size),
        step_rule="none",
        restarts=1,
        random_start=bool(random_start),
        grad=grad,
        surrogate_alpha=surrogate_alpha,
        eval_alpha=eval_alpha,
        attack_seed=int(attack_seed),
        params=tuple(sorted(spec.check_params(params).items())) if params else (),
    )


def _crafting_grad(model: nn.Module, method: Method, grad: str) -> str:
    """The JPEG layer mode to craft with: the requested one kept on the deployed forward (:func:`crafting_mode`);
    the deployed mode for gradient-free methods and for ``none`` on a JPEG model."""
    if not has_jpeg(model):
        return grad if method.uses_gradient else "none"  # a quantizer mode here is refused by jpeg_mode
    deployed = deployed_mode(model)
    if not method.uses_gradient or grad == "none":
        return deployed
    return crafting_mode(deployed, grad)


def _check_models(setting: Setting, method: Method, model: nn.Module, target: nn.Module | None) -> None:
    if setting.norm not in method.norms:
        raise ValueError(
            f"{setting.attack} does not support norm {setting.norm!r} (supported: {', '.join(method.norms)})"
        )
    for m in (model, target):
        if m is not None and m.training:
            raise ValueError("attack an eval-mode model (model.eval()); train-mode BatchNorm would mix the batch")


def run_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    setting: Setting,
    *,
    target: nn.Module | None = None,
    seed: int = 0,
    start_seeds: Sequence[int] | None = None,
    num_classes: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack ``(x, y)`` with ``setting``, crafting on ``model`` (JPEG layer in the setting's gradient mode, on the
    deployed forward); score on ``target`` as deployed.

    Args:
        model: the crafting model, in eval mode (its JPEG layer, if any, in its deployed mode).
        x, y: float images in [0, 1] on the model's device, and labels.
        setting: the attack (method, norm, eps, steps, step size, random start, grad, params, surrogate alpha).
        target: the evaluated model (another arm for transfer attacks); default ``model`` as deployed.
        seed: seed of the attack's randomness (per-batch methods) and default start seeds.
        start_seeds: per-image seeds of the random start (methods with per-sample randomness); default from
            ``seed`` and the image's position.

    Returns:
        ``(x_adv, fooled)``: detached examples within the threat model, and a bool tensor: the deployed target
        misclassified the final example or an iterate inside the threat model. For an image an iterate fooled,
        ``x_adv`` is the first such iterate.
    """
    method = get_method(setting.attack)
    _check_models(setting, method, model, target)
    target = model if target is None else target
    if setting.eps == 0:
        with torch.no_grad():
            return x.detach().clone(), _deployed_logits(target, x).argmax(dim=1) != y
    grad = _crafting_grad(model, method, setting.grad)
    same_forward = target is model and forward_of(grad) == forward_of(deployed_mode(model))
    evaluate = None if same_forward else (lambda z: _deployed_logits(target, z))
    scorer = _IterateScorer(model, x.detach(), y, setting.eps, setting.norm, evaluate)
    attacked = scorer if method.scores_iterates else model
    adv = _run(method, attacked, model, x, y, setting, grad, seed, start_seeds, num_classes)
    if model.training or target.training:
        raise RuntimeError("a model left eval mode during the attack")
    adv = _inside_or_clean(adv.detach(), x, setting)
    with torch.no_grad():
        fooled = _deployed_logits(target, adv).argmax(dim=1) != y
    if method.scores_iterates:
        adv = torch.where(scorer.fooled.view(-1, 1, 1, 1), scorer.first, adv)
        fooled |= scorer.fooled
    return adv, fooled


def _run(
    method: Method,
    attacked: nn.Module,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    setting: Setting,
    grad: str,
    seed: int,
    start_seeds: Sequence[int] | None,
    num_classes: int,
) -> torch.Tensor:
    """Build the method's attack on ``attacked`` and run it seeded, ``model``'s JPEG layer in mode ``grad``."""
    attack = build_attack(
        method,
        attacked,
        eps=setting.eps,
        norm=setting.norm,
        steps=setting.steps,
        step_size=setting.step_size,
        random_start=setting.random_start,
        seed=int(seed) % (2**31),
        num_classes=num_classes,
        **method.check_params(dict(setting.params)),
    )
    devices = (
        [x.device.index if x.device.index is not None else torch.cuda.current_device()]
        if x.device.type == "cuda"
        else []
    )
    surrogate = setting.surrogate_alpha if grad in SURROGATE_GRADS else None
    mode = jpeg_mode(model, grad, surrogate) if grad != "none" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=devices), mode, crafting_precision() as tf32:
        if isinstance(attacked, _IterateScorer):
            attacked.tf32 = tf32
        torch.manual_seed(int(seed) % (2**63))
        if not method.per_sample_random:
            return attack(x, y)
        seeds = start_seeds if start_seeds is not None else [derive_seed(seed, i) for i in range(len(y))]
        with PerSampleRandom(seeds):
            return attack(x, y)


def _inside_or_clean(adv: torch.Tensor, x: torch.Tensor, setting: Setting) -> torch.Tensor:
    """``adv`` with every example outside the threat model (an engine bug) replaced by its clean image, warned."""
    inside = within_threat(adv, x, setting.eps, setting.norm)
    if bool(inside.all()):
        return adv
    warnings.warn(
        f"{setting.attack} returned {int((~inside).sum())} example(s) outside the {setting.norm} ball of radius "
        f"{setting.eps:g} or [0, 1]; they are replaced by the clean image",
        AttackEngineWarning,
        stacklevel=3,
    )
    return torch.where(inside.view(-1, 1, 1, 1), adv, x)


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
    params: Mapping[str, Any] | None = None,
    surrogate_alpha: float | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Adversarial examples only, for one attack given by its fields (see :func:`attack_setting` and
    :func:`run_attack`, which take the rest: ``target``, ``start_seeds``, ``num_classes``); ``eps == 0`` returns
    ``x`` unchanged."""
    setting = attack_setting(method, norm, eps, steps, step_size, random_start, grad, params, surrogate_alpha)
    adv, _ = run_attack(model, x, y, setting, seed=0 if seed is None else seed, **kwargs)
    return adv
