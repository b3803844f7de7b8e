"""Devices and numerical precision, shared by training and the attacks.

* :func:`resolve_device` turns ``auto``/``cpu``/``cuda``/``cuda:N`` into a ``torch.device`` (or a clear error).
* :func:`autocast` is bf16 autocast for the backbone on request (the JPEG layer always runs in float32 itself);
  ``cache=False`` for CUDA graph capture. :func:`use_bf16` and :func:`use_channels_last` resolve ``auto``: on for
  CUDA and for CPUs with bf16 matrix units (:func:`cpu_has_bf16_matmul`: AMX-BF16 or AVX512-BF16), off elsewhere.
* :func:`exact_fp32` is full float32 for evaluation and attacks: no TF32 in convolutions or matmuls, deterministic
  cuDNN. TF32 keeps 10 mantissa bits, enough to flip JPEG quantisation decisions and borderline predictions, so
  attack numbers would depend on the GPU model.
* :func:`training_backend` lets cuDNN pick the fastest convolution algorithms for training (``cudnn.benchmark``).

* :func:`tf32_crafting` (``jpeg-robust attack --tf32-crafting``) lets the attacks *craft* with TF32 matmuls and
  convolutions (:func:`crafting_precision`, around the attack engine's call) while every score, of the final
  examples and of PGD's iterates, stays in exact float32. On the CPU TF32 does not exist and nothing changes.

cuDNN uses the legacy flag API (``allow_tf32``); matmuls use ``torch.set_float32_matmul_precision`` (which keeps the
legacy and the newer per-backend flags consistent), falling back to the per-backend ``fp32_precision`` when a caller
set that one: mixing the two APIs makes reading the precision raise in recent PyTorch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = [
    "DeviceError",
    "DEVICE_CHOICES",
    "resolve_device",
    "autocast",
    "cpu_has_bf16_matmul",
    "use_bf16",
    "use_channels_last",
    "exact_fp32",
    "tf32_crafting",
    "crafting_precision",
    "training_backend",
]

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


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs that multiply bf16 in hardware


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_matmul() -> bool:
    """Does this CPU multiply bf16 in hardware (AMX-BF16 or AVX512-BF16: Intel Sapphire Rapids / Cooper Lake and
    later, AMD Zen 4 and later)? Read from the kernel's CPU flags; False where they cannot be read (not Linux)."""
    try:
        return cpuinfo_has_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Does the text of ``/proc/cpuinfo`` list a bf16 matrix flag on its ``flags`` lines?"""
    lines = [line.split(":", 1) for line in cpuinfo.splitlines() if line.startswith("flags")]
    flags = {flag for parts in lines if len(parts) == 2 for flag in parts[1].split()}
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def _fast_by_default(device: torch.device) -> bool:
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_matmul())


def use_bf16(amp: str, device: torch.device) -> bool:
    """``--amp``: ``bf16`` on, ``off`` off, ``auto`` on CUDA and on CPUs with bf16 matrix units (the backbone only:
    the JPEG layer runs in float32 inside autocast, and evaluation and attacks in exact float32)."""
    return amp == "bf16" or (amp == "auto" and _fast_by_default(device))


def use_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """``--channels-last``: as given, or (None, auto) where bf16 autocast is on by default."""
    return channels_last if channels_last is not None else _fast_by_default(device)


def autocast(device: torch.device, enabled: bool, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``, else nothing.

    ``cache=False`` turns off autocast's cache of casted weights, which CUDA graph capture requires; the values
    computed are the same either way (the cache only saves recasting a weight used twice in one region).
    """
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache)


@contextlib.contextmanager
def _matmul_precision(precision: str) -> Iterator[None]:
    """``torch.set_float32_matmul_precision(precision)`` for the duration ("highest": no TF32; "high": TF32), restored
    afterwards; when a caller set the per-backend ``fp32_precision`` (reading the global precision then raises),
    that flag is set and restored instead."""
    matmul = torch.backends.cuda.matmul
    try:
        saved = torch.get_float32_matmul_precision()
    except RuntimeError:  # the per-backend API is in use
        saved_backend = matmul.fp32_precision
        matmul.fp32_precision = "ieee" if precision == "highest" else "tf32"
        try:
            yield
        finally:
            matmul.fp32_precision = saved_backend
        return
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved)


@contextlib.contextmanager
def exact_fp32(device: torch.device | str | None = None) -> Iterator[None]:
    """Full-precision float32 for the duration: TF32 off for cuDNN (convolutions) and CUDA matmuls, deterministic
    cuDNN, no benchmark autotuning. Every setting is restored afterwards, also when the caller had set the matmul
    precision to "high". The flags are process-wide and harmless on the CPU, so the context works (and is tested)
    everywhere; ``device`` is accepted for readability."""
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        with _matmul_precision("highest"):
            yield


_TF32_CRAFTING = [False]  # set for a whole sweep by tf32_crafting(); read where the attack engine is called


@contextlib.contextmanager
def tf32_crafting(enabled: bool) -> Iterator[None]:
    """Allow TF32 while crafting attacks for the duration (a sweep); scoring stays exact float32."""
    saved = _TF32_CRAFTING[0]
    _TF32_CRAFTING[0] = bool(enabled)
    try:
        yield
    finally:
        _TF32_CRAFTING[0] = saved


@contextlib.contextmanager
def crafting_precision() -> Iterator[bool]:
    """Around an attack engine's crafting loop: TF32 matmuls and cuDNN convolutions when :func:`tf32_crafting` is on
    (yields True; the caller then scores inside :func:`exact_fp32`), else nothing changes (yields False)."""
    if not _TF32_CRAFTING[0]:
        yield False
        return
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=True, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=True):
        with _matmul_precision("high"):
            yield True


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
