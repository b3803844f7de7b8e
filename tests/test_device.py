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


def test_exact_fp32_works_after_the_matmul_precision_was_set_to_high():
    """``torch.set_float32_matmul_precision("high")`` (common in training scripts) then exact_fp32: TF32 is off
    inside, the precision can be read, and "high" comes back afterwards."""
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        with exact_fp32():
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(saved)


class _FlagRecorder(torch.nn.Module):
    """A tiny classifier that records, at every forward, whether TF32 was allowed for convolutions and matmuls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4 * 30 * 30, 10)
        self.flags: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.flags.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_tf32_crafting_crafts_in_tf32_and_scores_in_exact_fp32(device):
    """With ``tf32_crafting(True)`` the attack's gradient passes run with TF32 allowed and every score (PGD's iterates,
    the final examples) runs with it off. On the CPU TF32 does not exist, so the examples and the fooled flags equal
    the exact-fp32 attack's (tolerance 0, stated in docs/gpu.md); on a GPU (``--device cuda``) TF32 rounding may
    change a gradient's sign near zero and so the examples, which is why only the flags are checked there."""
    from robustbench_jpeg.attack.crafting import attack_setting, run_attack
    from robustbench_jpeg.device import tf32_crafting

    torch.manual_seed(0)
    x, y = torch.rand(6, 3, 32, 32, device=device), torch.randint(0, 10, (6,), device=device)
    results = {}
    for tf32 in (False, True):
        model = _FlagRecorder().to(device).eval()
        with exact_fp32(device), tf32_crafting(tf32):
            setting = attack_setting("pgd", "linf", 8 / 255, steps=3, step_size=2 / 255)
            adv, fooled = run_attack(model, x, y, setting, seed=1)
        results[tf32] = (adv, fooled, model.flags)
    assert set(results[False][2]) == {(False, False)}  # exact throughout
    crafting = [f for f in results[True][2] if f == (True, True)]
    scoring = [f for f in results[True][2] if f == (False, False)]
    assert len(crafting) >= 3 and len(scoring) >= 4 and len(crafting) + len(scoring) == len(results[True][2])
    assert results[True][2][-1] == (False, False)  # the final examples are scored exactly
    if device.type == "cpu":
        assert torch.equal(results[True][0], results[False][0]) and torch.equal(results[True][1], results[False][1])


def test_bf16_matrix_units_are_read_from_the_cpu_flags():
    from robustbench_jpeg.device import cpuinfo_has_bf16

    assert cpuinfo_has_bf16("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpuinfo_has_bf16("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert not cpuinfo_has_bf16("flags\t\t: fpu sse avx2 avx512f\nbugs\t\t: avx512_bf16_is_not_a_flag_here\n")
    assert not cpuinfo_has_bf16("")


@pytest.mark.parametrize("bf16_cpu", [True, False])
def test_auto_turns_bf16_and_channels_last_on_for_cuda_and_bf16_cpus_only(monkeypatch, bf16_cpu):
    import robustbench_jpeg.device as device_mod
    from robustbench_jpeg.device import use_bf16, use_channels_last

    monkeypatch.setattr(device_mod, "cpu_has_bf16_matmul", lambda: bf16_cpu)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_bf16("auto", cpu) is bf16_cpu and use_channels_last(None, cpu) is bf16_cpu
    assert use_bf16("auto", cuda) and use_channels_last(None, cuda)
    assert use_bf16("bf16", cpu) and not use_bf16("off", cpu) and not use_bf16("off", cuda)
    assert use_channels_last(False, cpu) is False and use_channels_last(True, cpu) is True


def test_on_a_bf16_cpu_the_trainer_uses_bf16_and_the_jpeg_layer_stays_fp32(monkeypatch):
    """``--amp auto`` on a CPU with bf16 units (detection forced here, so the test runs on any CPU): the backbone
    trains under bf16 autocast in channels_last, and the JPEG layer's output equals the float32 layer's bit for bit."""
    import robustbench_jpeg.device as device_mod
    from robustbench_jpeg.config import RunOptions, TrainConfig
    from robustbench_jpeg.device import autocast
    from robustbench_jpeg.train import ArmTrainer, resolve_config

    monkeypatch.setattr(device_mod, "cpu_has_bf16_matmul", lambda: True)
    config = resolve_config(TrainConfig(model="tiny", dataset="cifar100-mini", epochs=1, batch_size=8))
    options = RunOptions(device="cpu", progress=False, checkpoint_every_s=0)
    trainer = ArmTrainer(config, options, "jpegdl", "unused", torch.device("cpu"), n_train=16)
    assert trainer.amp and trainer.channels_last
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    layer = trainer.model.jpeg
    with torch.no_grad():
        exact = layer(x)
        with autocast(torch.device("cpu"), trainer.amp):
            inside = layer(x)
            backbone_out = trainer.model.backbone(torch.rand(2, 3, 32, 32))
    assert inside.dtype == torch.float32 and torch.equal(inside, exact)
    assert backbone_out.dtype == torch.bfloat16  # the backbone does run in bf16
