"""Devices and numerical precision, shared by training and the attacks.

* :func:`resolve_device` turns ``auto``/``cpu``/``cuda``/``cuda:N`` into a ``torch.device`` (or a clear error).
* :func:`autocast` is bf16 autocast for the backbone on request (the JPEG layer always runs in float32 itself);
  ``cache=False`` for CUDA graph capture.
* :func:`exact_fp32` is full float32 for evaluation and attacks: no TF32 in convolutions or matmuls, deterministic
  cuDNN. TF32 keeps 10 mantissa bits, enough to flip JPEG quantisation decisions and borderline predictions, so
  attack numbers would depend on the GPU model.
* :func:`training_backend` lets cuDNN pick the fastest convolution algorithms for training (``cudnn.benchmark``).

Only the legacy flag API (``allow_tf32``) is used: mixing it with the newer ``fp32_precision`` API makes reading
``torch.backends.cudnn.allow_tf32`` raise in recent PyTorch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["DeviceError", "DEVICE_CHOICES", "resolve_device", "autocast", "exact_fp32", "training_backend"]

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class DeviceError(ValueError):
    """A device name that is not understood or not available here."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``; ``cuda`` / ``cuda:N`` (an error without a GPU)."""
    if isinstance(name, torch.device):
        device = name
    else:
        text = str(name).strip().lower()
        if text == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if text != "cpu" and not (text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
            raise DeviceError(f"unknown device {name!r}: use {DEVICE_CHOICES}")
        device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(name)!r} was requested but no CUDA GPU is available; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise DeviceError(f"device {str(name)!r} does not exist: this machine has {count} GPU(s)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {str(name)!r}: use {DEVICE_CHOICES}")
    return device


def autocast(device: torch.device, enabled: bool, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``, else nothing.

    ``cache=False`` turns off autocast's cache of casted weights, which CUDA graph capture requires; the values
    computed are the same either way (the cache only saves recasting a weight used twice in one region).
    """
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache)


@contextlib.contextmanager
def exact_fp32(device: torch.device | str | None = None) -> Iterator[None]:
    """Full-precision float32 for the duration: TF32 off for cuDNN (convolutions) and CUDA matmuls, deterministic
    cuDNN, no benchmark autotuning. Every setting is restored afterwards. The flags are process-wide and harmless
    on the CPU, so the context works (and is tested) everywhere; ``device`` is accepted for readability."""
    matmul = torch.backends.cuda.matmul
    saved_matmul = matmul.allow_tf32
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        matmul.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32 = saved_matmul


@contextlib.contextmanager
def training_backend(device: torch.device) -> Iterator[None]:
    """cuDNN benchmark mode (autotuned convolution algorithms) while training on CUDA; nothing on the CPU."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved
