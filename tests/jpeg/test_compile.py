"""The JPEG layer under ``torch.compile``: one graph over several calls once the DCT matrix is built beforehand.

Dynamo's own graph capture (``backend="eager"``, no code generation) shows the recompiles, which is what matters
here and takes a few seconds on a CPU.
"""

from __future__ import annotations

import pytest
import torch

from robustbench_jpeg.jpeg import JpegLayer, functional, prepare_dct

dynamo = pytest.importorskip("torch._dynamo")


def _graphs_over_three_calls(warm: bool) -> int:
    from torch._dynamo.utils import counters

    functional._KRON_DCT_CACHE.clear()
    if warm:
        prepare_dct("cpu")
    torch.manual_seed(0)
    layer = JpegLayer()
    dynamo.reset()
    counters.clear()
    compiled = torch.compile(layer, backend="eager")
    x = torch.rand(2, 3, 16, 16)
    for _ in range(3):
        compiled(x).sum().backward()
    return counters["stats"]["unique_graphs"]


@pytest.mark.slow
def test_prepared_dct_gives_one_graph_and_a_cold_cache_two():
    assert _graphs_over_three_calls(warm=True) == 1
    assert _graphs_over_three_calls(warm=False) == 2  # the cache write inside the traced call forces a recompile
    dynamo.reset()


def test_the_trainer_prepares_the_dct_before_compiling(monkeypatch):
    """``--compile``: the DCT matrix for the training device exists when ``torch.compile`` is called."""
    from robustbench_jpeg.config import RunOptions, TrainConfig
    from robustbench_jpeg.train import ArmTrainer, resolve_config

    seen = []

    def fake_compile(module, **kwargs):
        seen.append((torch.device("cpu"), torch.float32) in functional._KRON_DCT_CACHE)
        return module

    functional._KRON_DCT_CACHE.clear()
    monkeypatch.setattr(torch, "compile", fake_compile)
    config = resolve_config(TrainConfig(model="tiny", dataset="cifar100-mini", epochs=1, batch_size=8))
    options = RunOptions(device="cpu", progress=False, checkpoint_every_s=0, compile=True)
    ArmTrainer(config, options, "jpegdl", "unused", torch.device("cpu"), n_train=16)
    assert seen == [True]
