"""The quantizer hardness audit: hardness tables, the analytic slope, and the slope statistics."""

from __future__ import annotations

import json
import math

import pytest
import torch

from robustbench_jpeg.jpeg import JpegConfig, JpegLayer
from robustbench_jpeg.jpeg import functional as JF
from robustbench_jpeg.jpeg.hardness import SLOPE_THRESHOLD, hardness_tables, slope_stats, soft_quantize_slope
from robustbench_jpeg.jpeg.tables import paper_tables

F64 = torch.float64


def _autograd_slope(x: torch.Tensor, q, alpha, window=5) -> torch.Tensor:
    """dQ_d/dx per element by autograd (each output depends on its own input only, so grad of the sum)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(JF.soft_quantize(x, q, alpha, window).sum(), x)
    return grad


def test_hardness_tables():
    layer = JpegLayer(JpegConfig(paper_table="resnet56"))
    tables = hardness_tables(layer)
    assert set(tables) == {"luma", "chroma"}
    assert len(tables["luma"]) == 8 and all(len(row) == 8 for row in tables["luma"])
    q_y, q_c = paper_tables("resnet56")
    assert tables["luma"][0][0] == pytest.approx(5.0 * float(q_y[0, 0]) ** 2, rel=1e-6)
    assert tables["chroma"][7][3] == pytest.approx(5.0 * float(q_c[7, 3]) ** 2, rel=1e-6)
    json.dumps(tables)
    constant = hardness_tables(JpegLayer(JpegConfig(q_init="constant", q_constant=2.0, alpha=0.5)))
    assert constant["chroma"] == [[2.0] * 8] * 8


class TestSlope:
    def test_reference_values(self):
        # q = 1, alpha = 5 (h = 5): the staircase's slope is ~0.13 at a cell centre and ~2.5 at a cell edge.
        # centre x = 3: points 1..5, weights prop. to exp(-5 d^2), d = -2..2
        w = [math.exp(-5 * d * d) for d in (-2, -1, 0, 1, 2)]
        var = sum(wi * d * d for wi, d in zip(w, (-2, -1, 0, 1, 2), strict=True)) / sum(w)
        out = soft_quantize_slope(torch.tensor([3.0, 3.5 - 1e-9], dtype=F64), 1.0, 5.0)
        assert float(out[0]) == pytest.approx(10 * var, rel=1e-12) and float(out[0]) == pytest.approx(0.133, abs=1e-3)
        assert float(out[1]) == pytest.approx(2.5, abs=1e-3)

    @pytest.mark.parametrize("window", [5, 3, None])
    def test_matches_autograd_on_random_coefficients(self, window):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(4, 3, 2, 2, 8, 8, generator=g, dtype=F64) * 60
        x[0, 0, 0, 0, 0, 0] = 130.0 * 0.7  # near saturation for the luma DC step below (127 q = 88.9)
        x[0, 0, 0, 1, 0, 0] = -127.2 * 0.7
        x[0, 0, 1, 0, 0, 0] = 5000.0  # far beyond saturation: slope 0
        q = torch.rand(3, 1, 1, 8, 8, generator=g, dtype=F64) * 6 + 0.2
        q[0, ..., 0, 0] = 0.7
        alpha = torch.full((3, 1, 1, 8, 8), 5.0, dtype=F64)
        alpha[1:] = 0.8
        analytic = soft_quantize_slope(x, q, alpha, window)
        auto = _autograd_slope(x, q, alpha, window)
        assert analytic.shape == x.shape and (analytic >= 0).all()
        assert torch.allclose(analytic, auto, rtol=1e-9, atol=1e-12)
        assert float(analytic[0, 0, 1, 0, 0, 0]) == 0.0 == float(auto[0, 0, 1, 0, 0, 0])
        assert ((analytic == 0) == (auto == 0)).all()  # exact zeros agree

    def test_float32_is_accurate_and_agrees_with_float32_autograd(self):
        # In float32 (the layer's working dtype) autograd's slope carries rounding noise of up to ~1e-3 for
        # large |x| (it cancels terms of size |y - x|); the centred-variance form stays close to the float64 value.
        g = torch.Generator().manual_seed(1)
        x = torch.randn(20000, generator=g) * 40
        for q in (1.0, 3.0, 12.0, 0.3):
            analytic = soft_quantize_slope(x, q, 5.0)
            reference = soft_quantize_slope(x.double(), q, 5.0)
            auto = _autograd_slope(x, q, 5.0)
            assert torch.allclose(analytic.double(), reference, rtol=1e-4, atol=1e-5)
            assert torch.allclose(auto.double(), reference, rtol=1e-4, atol=1e-3)
            assert ((analytic < SLOPE_THRESHOLD) != (auto < SLOPE_THRESHOLD)).float().mean() <= 1e-3
            assert ((analytic == 0) != (auto == 0)).float().mean() <= 2e-3  # only at the edge of float32 underflow


class TestSlopeStats:
    def test_smoke_layout_and_json(self):
        layer = JpegLayer(JpegConfig(paper_table="resnet56"))
        stats = slope_stats(layer, torch.rand(5, 3, 16, 16), batch_size=2)
        json.dumps(stats)
        assert stats["threshold"] == SLOPE_THRESHOLD == 0.01
        assert stats["images"] == 5 and stats["coefficients_per_frequency"] == 5 * 4
        for key in ("below_threshold", "zero"):
            part = stats[key]
            assert set(part) == {"luma", "chroma", "channel"} and set(part["channel"]) == {"Y", "Cb", "Cr"}
            assert len(part["luma"]) == 8 and all(len(row) == 8 for row in part["chroma"])
            assert all(0.0 <= v <= 1.0 for row in part["luma"] + part["chroma"] for v in row)
        for c in ("Y", "Cb", "Cr"):  # exactly zero is a subset of below the threshold
            assert stats["zero"]["channel"][c] <= stats["below_threshold"]["channel"][c]
        assert set(stats["mean_slope"]) == {"Y", "Cb", "Cr"}

    def test_against_autograd_shares(self):
        layer = JpegLayer(JpegConfig(paper_table="resnet56")).double()
        images = torch.rand(6, 3, 16, 16, dtype=F64)
        images[:2] = images[:2].mean(dim=(2, 3), keepdim=True)  # flat images: AC coefficients exactly 0
        stats = slope_stats(layer, images, batch_size=4)
        coeffs = layer.encode(images)
        q = torch.stack((layer.q_luma, layer.q_chroma, layer.q_chroma)).detach().view(3, 1, 1, 8, 8)
        auto = _autograd_slope(coeffs, q, 5.0)  # (6, 3, 2, 2, 8, 8)
        n = 6 * 2 * 2
        below = (auto < SLOPE_THRESHOLD).double().sum(dim=(0, 2, 3))
        zero = (auto == 0).double().sum(dim=(0, 2, 3))
        assert torch.tensor(stats["below_threshold"]["luma"], dtype=F64).allclose(below[0] / n)
        assert torch.tensor(stats["below_threshold"]["chroma"], dtype=F64).allclose((below[1] + below[2]) / (2 * n))
        assert torch.tensor(stats["zero"]["luma"], dtype=F64).allclose(zero[0] / n)
        assert float(zero[1:].sum()) > 0  # chroma (hardness up to ~1e4): exactly flat even in float64
        assert stats["zero"]["channel"]["Cr"] == pytest.approx(float(zero[2].sum()) / (64 * n))
        assert stats["mean_slope"]["Y"] == pytest.approx(float(auto[:, 0].mean()), rel=1e-9)
        assert stats["below_threshold"]["channel"]["Cb"] > 0.5  # the resnet56 chroma table is hard (h >= 20)

    def test_soft_and_hard_tables(self):
        # alpha = 1/64: luma q = 8 gives hardness 1 (slope ~1 everywhere; 127 q = 1016 covers the DC range of
        # these images, so nothing saturates), chroma q = 255 gives hardness ~1016 (flat almost everywhere)
        layer = JpegLayer(JpegConfig(q_init="constant", q_constant=1.0, alpha=1 / 64))
        layer.set_quantization_tables(torch.full((8, 8), 8.0), torch.full((8, 8), 255.0))
        layer.mode = "bpda-hard"  # the audit describes the deployed soft quantizer whatever the mode
        images = torch.rand(4, 3, 32, 32)
        stats = slope_stats(layer, images, batch_size=3)
        assert stats["below_threshold"]["channel"]["Y"] == 0.0 and stats["zero"]["channel"]["Y"] == 0.0
        assert stats["below_threshold"]["channel"]["Cb"] > 0.95 and stats["zero"]["channel"]["Cr"] > 0.95
        assert stats == slope_stats(layer, images, batch_size=100)  # batching does not change the counts

    @pytest.mark.parametrize(
        "images, batch_size, error, message",
        [
            (torch.rand(0, 3, 8, 8), 4, ValueError, "empty"),
            (torch.rand(3, 8, 8), 4, ValueError, r"\(N, 3, H, W\)"),
            (torch.rand(2, 3, 8, 8), 0, ValueError, "batch_size"),
            (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 4, TypeError, "floating-point"),
            (torch.rand(2, 3, 8, 12), 4, ValueError, "multiples of 8"),
        ],
    )
    def test_exception(self, images, batch_size, error, message):
        with pytest.raises(error, match=message):
            slope_stats(JpegLayer(), images, batch_size=batch_size)
