"""torchattacks builders and the crafting primitives shared by the sweep and the tests.

The model is attacked in [0, 1] pixel space: both arms normalise inside the model, so no
``set_normalization_used`` is called and eps means the same thing for both arms. torchattacks puts the model in
eval mode for the attack and restores the previous mode afterwards; our models are always in eval mode here.
torchattacks is imported on first use (:func:`_engine`), so training and reports work without it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    import torchattacks

__all__ = [
    "ATTACK_BUILDERS",
    "register_builder",
    "build_attack",
    "craft",
    "jpeg_mode",
    "derive_seed",
    "exact_fp32",
]

Builder = Callable[..., "torchattacks.attack.Attack"]
ATTACK_BUILDERS: dict[tuple[str, str], Builder] = {}

TORCHATTACKS_MISSING = (
    "attacks need torchattacks, which is not installed (training and reports do not need it): "
    'pip install "torchattacks>=3.5,<3.6" && pip install "requests>=2.32.4"'
)


def _engine():
    """The attack engine, torchattacks, imported on first use; a clear error if it is not installed."""
    try:
        import torchattacks
    except ModuleNotFoundError as exc:
        if exc.name != "torchattacks":
            raise
        raise ModuleNotFoundError(TORCHATTACKS_MISSING, name="torchattacks") from None
    return torchattacks


def register_builder(method: str, norm: str) -> Callable[[Builder], Builder]:
    """Register ``fn(model, eps, steps, step_size, random_start) -> torchattacks.Attack`` for (method, norm)."""

    def decorator(fn: Builder) -> Builder:
        ATTACK_BUILDERS[(method, norm)] = fn
        return fn

    return decorator


@register_builder("fgsm", "linf")
def _fgsm(model: nn.Module, eps: float, steps: int, step_size: float, random_start: bool):
    return _engine().FGSM(model, eps=eps)


@register_builder("pgd", "linf")
def _pgd(model: nn.Module, eps: float, steps: int, step_size: float, random_start: bool):
    return _engine().PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)


@register_builder("pgd", "l2")
def _pgdl2(model: nn.Module, eps: float, steps: int, step_size: float, random_start: bool):
    return _engine().PGDL2(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)


def build_attack(
    model: nn.Module, method: str, norm: str, eps: float, steps: int = 1, step_size: float | None = None,
    random_start: bool = False,
) -> torchattacks.attack.Attack:
    """A torchattacks attack on ``model`` (inputs in [0, 1], no normalisation handling: the model normalises)."""
    try:
        builder = ATTACK_BUILDERS[(method, norm)]
    except KeyError:
        known = ", ".join(f"{m}/{n}" for m, n in sorted(ATTACK_BUILDERS))
        raise ValueError(f"no attack builder for method={method!r}, norm={norm!r}; known: {known}") from None
    return builder(model, eps=eps, steps=steps, step_size=eps if step_size is None else step_size,
                   random_start=random_start)


@contextlib.contextmanager
def jpeg_mode(model: nn.Module, grad: str) -> Iterator[None]:
    """Craft with the JPEG layer in ``grad`` mode (``soft`` or ``bpda``); always restores ``soft``.

    ``grad="none"`` (baselines) leaves the model untouched. Asking for soft/bpda on a model without a JPEG layer,
    or for ``none`` on a model with one, is an error: it would silently attack something else than recorded.
    """
    has_jpeg = bool(getattr(model, "has_jpeg", False))
    if grad == "none":
        if has_jpeg:
            raise ValueError("grad 'none' given for a model with a JPEG layer; use 'soft' or 'bpda'")
        yield
        return
    if not has_jpeg:
        raise ValueError(f"grad {grad!r} needs a model with a JPEG layer (model.has_jpeg is False)")
    if grad not in ("soft", "bpda"):
        raise ValueError(f"unknown grad mode {grad!r}; choose soft or bpda")
    model.jpeg.mode = grad
    try:
        yield
    finally:
        model.jpeg.mode = "soft"


def derive_seed(*parts: object) -> int:
    """A 60-bit seed from a stable hash of ``parts`` (e.g. cell id, batch index, restart)."""
    digest = hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:15], 16)


@contextlib.contextmanager
def exact_fp32(device: torch.device | str) -> Iterator[None]:
    """Full-precision float32 on CUDA for the duration (no TF32 in convolutions or matmuls, deterministic cuDNN).

    TF32 keeps 10 mantissa bits: enough to flip JPEG quantisation decisions and borderline predictions, so
    attack numbers would depend on the card. Restores the previous settings afterwards.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    backends = torch.backends
    saved_det, saved_bench = backends.cudnn.deterministic, backends.cudnn.benchmark
    new_api = hasattr(backends.cudnn, "conv") and hasattr(backends.cudnn.conv, "fp32_precision")
    if new_api:
        saved = (backends.cudnn.conv.fp32_precision, backends.cuda.matmul.fp32_precision)
        backends.cudnn.conv.fp32_precision = "ieee"
        backends.cuda.matmul.fp32_precision = "ieee"
    else:  # pragma: no cover - older torch
        saved = (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32)
        backends.cudnn.allow_tf32 = False
        backends.cuda.matmul.allow_tf32 = False
    backends.cudnn.deterministic, backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        backends.cudnn.deterministic, backends.cudnn.benchmark = saved_det, saved_bench
        if new_api:
            backends.cudnn.conv.fp32_precision, backends.cuda.matmul.fp32_precision = saved
        else:  # pragma: no cover
            backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = saved


def craft(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str, norm: str, eps: float, steps: int = 1,
    step_size: float | None = None, random_start: bool = False, grad: str = "none", seed: int | None = None,
) -> torch.Tensor:
    """Adversarial examples for ``(x, y)`` against ``model``, crafted with the JPEG layer in ``grad`` mode.

    ``x`` is a float batch in [0, 1] on the model's device. ``eps == 0`` returns ``x`` unchanged (exactly).
    ``seed`` seeds torch's RNG (random starts) inside a forked RNG state, so the global stream is untouched.
    The returned tensor is detached, within the eps-ball around ``x`` and clipped to [0, 1].
    """
    if eps == 0:
        return x.detach().clone()
    if model.training:
        raise ValueError("attack an eval-mode model (model.eval()); train-mode BatchNorm would mix the batch")
    attack = build_attack(model, method, norm, eps, steps, step_size, random_start)
    devices = []
    if x.device.type == "cuda":
        devices = [x.device.index if x.device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices), jpeg_mode(model, grad):
        if seed is not None:
            torch.manual_seed(seed)
        adv = attack(x, y)
    if model.training:  # torchattacks restores the given mode; make sure nothing flipped it
        raise RuntimeError("model left eval mode during the attack")
    return adv.detach()
