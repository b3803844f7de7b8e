"""Devices and precision: names, exact float32 for evaluation and attacks, cuDNN benchmark for training."""

from __future__ import annotations

import pytest
import torch

from robustbench_jpeg.device import DeviceError, exact_fp32, resolve_device, training_backend


def test_exact_fp32_turns_tf32_off_and_restores_every_flag():
    """exact_fp32 sets the whole cuDNN backend with one API, so reading allow_tf32 inside it works (mixing the
    legacy and the fp32_precision APIs makes that read raise in recent PyTorch) and every flag comes back."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark, cudnn.enabled)
    with exact_fp32("cuda"):
        assert cudnn.allow_tf32 is False and matmul.allow_tf32 is False
        assert cudnn.deterministic is True and cudnn.benchmark is False
        with exact_fp32("cpu"):  # nests
            assert cudnn.allow_tf32 is False
    assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark, cudnn.enabled) == before


def test_training_backend_benchmarks_cudnn_on_cuda_only():
    saved = torch.backends.cudnn.benchmark
    with training_backend(torch.device("cpu")):
        assert torch.backends.cudnn.benchmark == saved
    with training_backend(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark == saved


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:x", "mps0"])
def test_unknown_devices_are_refused_with_the_choices(name):
    with pytest.raises(DeviceError, match="auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda")
