"""JpegLayer: the thin module over the functional core."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from robustbench_jpeg.jpeg import JpegConfig, JpegLayer, jpeg_dl
from robustbench_jpeg.jpeg.tables import paper_tables, standard_tables


def test_module_equals_functional_in_every_mode():
    layer = JpegLayer(JpegConfig(paper_table="vgg13"))
    x = torch.rand(2, 3, 32, 32)
    q_y, q_c = paper_tables("vgg13")
    for mode in ("soft", "hard", "bpda"):
        layer.mode = mode
        assert torch.allclose(layer(x), jpeg_dl(x, q_y, q_c, 5.0, 5.0, mode=mode), atol=1e-6)


def test_has_128_parameters_and_alpha_is_a_saved_buffer():
    layer = JpegLayer()
    assert sum(p.numel() for p in layer.parameters()) == 128
    state = layer.state_dict()
    assert set(state) == {"q_luma", "q_chroma", "alpha_luma", "alpha_chroma"}
    assert torch.all(state["alpha_luma"] == 5.0)


def test_mode_is_settable_and_validated():
    layer = JpegLayer()
    assert layer.mode == "soft"
    layer.mode = "hard"
    assert layer.mode == "hard"
    with pytest.raises(ValueError, match="soft"):
        layer.mode = "rounding"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"window": 0}, "window"),
        ({"q_init": "random"}, "q_init"),
        ({"q_lower": 0.0}, "q_lower"),
        ({"q_constant": 300.0}, "q_constant"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JpegConfig(**kwargs)


def test_config_round_trips_through_dict():
    config = JpegConfig(alpha=2.0, window=None, q_init="standard", quality=75)
    assert JpegConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        JpegConfig.from_dict({"alpha": 5.0, "bogus": 1})


def test_initialisations():
    luma, chroma = standard_tables(75)
    layer = JpegLayer(JpegConfig(q_init="standard", quality=75))
    assert torch.equal(layer.q_luma.detach(), luma.float()) and torch.equal(layer.q_chroma.detach(), chroma.float())
    layer = JpegLayer(JpegConfig(q_init="constant", q_constant=3.0))
    assert torch.all(layer.q_luma == 3.0)
    layer = JpegLayer(JpegConfig(q_init="paper", paper_table="resnet110", q_max=5.0))
    assert float(layer.q_luma.detach().max()) == pytest.approx(5.0)


def test_tables_set_get_project_and_export():
    layer = JpegLayer()
    luma = torch.full((8, 8), 3.4)
    luma[0, 0] = 1000.0
    chroma = torch.full((8, 8), 0.3)
    layer.set_quantization_tables(luma, chroma)
    assert float(layer.q_luma[0, 0]) == 255.0  # clamped into the explicit bounds
    luma_int, chroma_int = layer.quantization_tables()
    assert luma_int.dtype == torch.int64 and luma_int.shape == (8, 8)
    assert int(luma_int[0, 1]) == 3 and int(chroma_int.min()) == 1 and int(luma_int.max()) == 255
    with torch.no_grad():
        layer.q_luma.fill_(-4.0)
    layer.project_()
    assert float(layer.q_luma.min()) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="8x8"):
        layer.set_quantization_tables(torch.ones(4, 4), torch.ones(8, 8))
    with pytest.raises(ValueError, match="positive"):
        layer.set_quantization_tables(torch.zeros(8, 8), torch.ones(8, 8))


def test_load_state_dict_projects_tables():
    layer = JpegLayer()
    state = layer.state_dict()
    state["q_luma"] = torch.full((8, 8), 999.0)
    layer.load_state_dict(state)
    assert float(layer.q_luma.max()) == 255.0


def test_every_parameter_gets_a_finite_gradient():
    layer = JpegLayer()
    out = layer(torch.rand(2, 3, 32, 32))
    out.square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_layer_gradcheck_float64():
    layer = JpegLayer(JpegConfig(alpha=0.5, q_init="constant", q_constant=2.0)).double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert gradcheck(layer, (x,), atol=1e-5)


def test_runs_in_fp32_under_bf16_autocast():
    layer = JpegLayer()
    x = torch.rand(2, 3, 32, 32)
    reference = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.float32 and torch.equal(out, reference)


def test_bpda_forward_equals_hard_and_gradient_reaches_input():
    layer = JpegLayer()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    layer.mode = "hard"
    hard = layer(x)
    layer.mode = "bpda"
    bpda = layer(x)
    assert torch.equal(bpda, hard)
    bpda.sum().backward()
    assert x.grad.abs().min() > 0  # identity backward: every pixel gets a gradient
