"""JpegLayer: the thin module over the functional core."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from robustbench_jpeg.jpeg import JpegConfig, JpegLayer, jpeg_dl
from robustbench_jpeg.jpeg.functional import QUANT_MODES, coefficients_to_rgb, jpeg_coefficients, quantize
from robustbench_jpeg.jpeg.tables import paper_tables, standard_tables


def test_module_equals_functional_in_every_mode(device):
    layer = JpegLayer(JpegConfig(paper_table="vgg13")).to(device)
    layer.surrogate_alpha = 0.5
    x = torch.rand(2, 3, 32, 32, device=device)
    q_y, q_c = (t.to(device) for t in paper_tables("vgg13"))
    for mode in QUANT_MODES:
        layer.mode = mode
        assert torch.equal(layer(x), jpeg_dl(x, q_y, q_c, 5.0, 5.0, mode=mode, surrogate_alpha=0.5)), mode


@pytest.mark.parametrize("mode", QUANT_MODES)
def test_forward_is_decode_of_encode_in_every_mode(mode):
    layer = JpegLayer(JpegConfig(paper_table="resnet56"))
    layer.mode, layer.surrogate_alpha = mode, 0.4
    x = torch.rand(2, 3, 16, 24)
    coeffs = layer.encode(x)
    assert coeffs.shape == (2, 3, 2, 3, 8, 8) and coeffs.dtype == torch.float32
    assert torch.equal(coeffs, jpeg_coefficients(x, layer.config.chroma_offset))
    assert torch.equal(layer(x), layer.decode(coeffs))
    q = (layer.q_luma, layer.q_chroma, layer.alpha_luma, layer.alpha_chroma)
    expected = coefficients_to_rgb(quantize(coeffs, *q, mode=mode, surrogate_alpha=0.4), layer.config.chroma_offset)
    assert torch.equal(layer.decode(coeffs), expected)
    # float64 stays float64 through both halves
    layer = layer.double()
    x64 = x.double()
    assert layer.encode(x64).dtype == torch.float64 and torch.equal(layer(x64), layer.decode(layer.encode(x64)))


def test_gradient_with_respect_to_the_coefficients():
    # what the toolkit measures: the loss gradient at the quantizer's input, per channel and frequency
    layer = JpegLayer(JpegConfig(paper_table="resnet56"))
    coeffs = layer.encode(torch.rand(2, 3, 16, 16)).detach().requires_grad_(True)
    layer.decode(coeffs).square().sum().backward()
    assert coeffs.grad.shape == (2, 3, 2, 2, 8, 8)
    assert (coeffs.grad[:, 1:] == 0).float().mean() > 0.5  # the chroma quantizer is hard (alpha q^2 >= 20)
    layer.mode = "bpda"
    coeffs.grad = None
    layer.decode(coeffs).square().sum().backward()
    assert (coeffs.grad != 0).all()


def test_encode_decode_exceptions():
    layer = JpegLayer()
    with pytest.raises(TypeError, match="floating-point"):
        layer.encode(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiples of 8"):
        layer.encode(torch.rand(1, 3, 8, 12))
    with pytest.raises(ValueError, match=r"\(B, 3, H/8, W/8, 8, 8\)"):
        layer.decode(torch.rand(1, 3, 8, 8))


def test_surrogate_alpha_attribute():
    layer = JpegLayer()
    assert layer.surrogate_alpha is None
    layer.mode = "surrogate"
    with pytest.raises(ValueError, match="surrogate_alpha"):
        layer(torch.rand(1, 3, 8, 8))
    for bad, error in ((0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), ("0.5", TypeError)):
        with pytest.raises(error, match="surrogate_alpha"):
            layer.surrogate_alpha = bad
    with pytest.raises(ValueError, match="surrogate_alpha"):
        layer.surrogate_alpha = (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="surrogate_alpha"):
        layer.surrogate_alpha = torch.zeros(8, 8)
    layer.surrogate_alpha = (0.2, torch.full((8, 8), 0.05))
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    out = layer(x)
    layer.mode = "soft"
    assert torch.equal(out, layer(x))  # forward: the deployed layer
    assert "surrogate_alpha" not in layer.state_dict() and "surrogate_alpha" in repr(layer)
    layer.surrogate_alpha = None
    assert layer.surrogate_alpha is None


# Torch functions that create a tensor from host data or bring one back to the host.
_HOST_FUNCTIONS = {torch.tensor, torch.as_tensor, torch.scalar_tensor, torch.Tensor.cpu, torch.Tensor.item}
_HOST_FUNCTIONS |= {torch.Tensor.tolist, torch.Tensor.numpy, torch.from_numpy}


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.host_calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _HOST_FUNCTIONS and not (func is torch.as_tensor and isinstance(args[0], torch.Tensor)):
            self.host_calls.append(getattr(func, "__name__", str(func)))  # as_tensor(tensor) is a no-op view
        return func(*args, **(kwargs or {}))


class _DispatchRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.cpu_ops = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops.append(str(func))
        leaves = pytree.tree_leaves((args, kwargs, out))
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in leaves):
            self.cpu_ops.append(str(func))
        return out


@pytest.mark.parametrize("mode", QUANT_MODES)
def test_forward_and_backward_do_no_host_work(mode):
    """Once the DCT matrix is cached, no op touches a CPU tensor and nothing is built from host data.

    On CUDA this means no blocking host->device copy per step and a forward that CUDA graphs can capture. The
    ``meta`` device stands in for the accelerator: any CPU tensor or host->device copy would show up here.
    """
    layer = JpegLayer(JpegConfig(paper_table="resnet56")).to("meta")
    layer.mode, layer.surrogate_alpha = mode, 0.5
    x = torch.empty(2, 3, 16, 16, device="meta", requires_grad=True)
    layer(x)  # warm-up: builds the (meta, float32) DCT matrix once
    functions, forward, backward = _FunctionRecorder(), _DispatchRecorder(), _DispatchRecorder()
    with functions:
        with forward:
            out = layer(x)
        with backward:
            out.sum().backward()
    assert out.device.type == "meta" and x.grad is not None and x.grad.device.type == "meta"
    assert len(forward.ops) > 20 and len(backward.ops) > 5  # both passes were recorded
    assert forward.cpu_ops == [] and backward.cpu_ops == []  # includes any aten._to_copy / copy_ from a CPU tensor
    assert functions.host_calls == []


def test_the_recorders_do_catch_host_work():
    # negative control for the test above: a host->device copy and a tensor from a Python float are both flagged
    functions, dispatch = _FunctionRecorder(), _DispatchRecorder()
    with functions, dispatch:
        torch.ones(3).to("meta")
        torch.as_tensor(5.0, device="meta")
    assert any("_to_copy" in op for op in dispatch.cpu_ops) and functions.host_calls == ["as_tensor"]


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
    assert float(layer.q_luma.detach()[0, 0]) == 255.0  # clamped into the explicit bounds
    luma_int, chroma_int = layer.quantization_tables()
    assert luma_int.dtype == torch.int64 and luma_int.shape == (8, 8)
    assert int(luma_int[0, 1]) == 3 and int(chroma_int.min()) == 1 and int(luma_int.max()) == 255
    with torch.no_grad():
        layer.q_luma.fill_(-4.0)
    layer.project_()
    assert float(layer.q_luma.detach().min()) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="8x8"):
        layer.set_quantization_tables(torch.ones(4, 4), torch.ones(8, 8))
    with pytest.raises(ValueError, match="positive"):
        layer.set_quantization_tables(torch.zeros(8, 8), torch.ones(8, 8))


def test_load_state_dict_projects_tables():
    layer = JpegLayer()
    state = layer.state_dict()
    state["q_luma"] = torch.full((8, 8), 999.0)
    layer.load_state_dict(state)
    assert float(layer.q_luma.detach().max()) == 255.0


def test_every_parameter_gets_a_finite_gradient(device):
    layer = JpegLayer().to(device)
    out = layer(torch.rand(2, 3, 32, 32, device=device))
    out.square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_layer_gradcheck_float64(device):
    layer = JpegLayer(JpegConfig(alpha=0.5, q_init="constant", q_constant=2.0)).double().to(device)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, device=device, requires_grad=True)
    assert gradcheck(layer, (x,), atol=1e-5)


def test_runs_in_fp32_under_bf16_autocast(device):
    layer = JpegLayer().to(device)
    x = torch.rand(2, 3, 32, 32, device=device)
    reference = layer(x)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.float32 and torch.equal(out, reference)


def test_bpda_hard_forward_equals_hard_and_gradient_reaches_input():
    layer = JpegLayer()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    layer.mode = "hard"
    hard = layer(x)
    layer.mode = "bpda-hard"
    bpda = layer(x)
    assert torch.equal(bpda, hard)
    bpda.sum().backward()
    assert x.grad.abs().min() > 0  # identity backward: every pixel gets a gradient


def test_bpda_forward_equals_soft_and_the_layer_backward_is_the_identity():
    layer = JpegLayer()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    layer = layer.double()
    soft = layer(x)
    layer.mode = "bpda"
    bpda = layer(x)
    assert torch.equal(bpda, soft)
    # with the quantizer replaced by the identity, the whole layer (an orthonormal transform and its inverse)
    # has the identity as its Jacobian: the gradient is passed through unchanged
    g = torch.randn_like(x)
    (grad,) = torch.autograd.grad(bpda, x, g)
    assert torch.allclose(grad, g, atol=1e-12)


def test_no_parameter_gradient_in_bpda_modes_and_surrogate_gradient_reaches_tables():
    layer = JpegLayer()
    layer.surrogate_alpha = 0.5
    for mode, expect in (("bpda", False), ("bpda-hard", False), ("surrogate", True)):
        layer.zero_grad(set_to_none=True)
        layer.mode = mode
        layer(torch.rand(1, 3, 8, 8, requires_grad=True)).square().sum().backward()
        assert (layer.q_luma.grad is not None) is expect, mode
