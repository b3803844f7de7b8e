"""Crafting: eps-balls, eps 0, FGSM against its closed form, soft/BPDA gradients, seeding, mode restoring."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_jpeg.attack.builders import build_attack, craft, jpeg_mode
from robustbench_jpeg.jpeg import JpegConfig, JpegLayer
from robustbench_jpeg.models import create_model


class LinearNet(nn.Module):
    """A linear classifier on the flattened [0, 1] input."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(3 * 32 * 32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    return torch.rand(8, 3, 32, 32), torch.randint(0, 100, (8,))


@pytest.fixture(scope="module")
def jpeg_model():
    torch.manual_seed(0)
    return create_model("tiny", jpeg=JpegConfig(paper_table="resnet56")).eval()


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_linf_examples_stay_in_ball_and_box(batch, jpeg_model, method):
    x, y = batch
    eps = 8 / 255
    adv = craft(jpeg_model, x, y, method, "linf", eps, steps=3, step_size=eps / 2, random_start=True if method == "pgd"
                else False, grad="soft", seed=1)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() > eps / 2  # it did move


def test_l2_examples_stay_in_ball_and_box(batch, jpeg_model):
    x, y = batch
    adv = craft(jpeg_model, x, y, "pgd", "l2", 0.5, steps=3, step_size=0.25, random_start=True, grad="bpda", seed=1)
    norms = (adv - x).flatten(1).norm(dim=1)
    assert norms.max() <= 0.5 + 1e-5 and norms.max() > 0.1
    assert adv.min() >= 0 and adv.max() <= 1


def test_eps_zero_returns_clean_input(batch, jpeg_model):
    x, y = batch
    assert torch.equal(craft(jpeg_model, x, y, "pgd", "linf", 0.0, steps=5, random_start=True, grad="soft"), x)


def test_fgsm_equals_closed_form_on_linear_model(batch):
    x, y = batch
    y = y % 10
    model = LinearNet().eval()
    eps = 4 / 255
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    expected = (x + eps * grad.sign()).clamp(0, 1)
    adv = craft(model, x, y, "fgsm", "linf", eps)
    assert torch.equal(adv, expected)


def test_pgd_seed_reproducible_and_restores_global_rng(batch, jpeg_model):
    x, y = batch
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = craft(jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=2, step_size=2 / 255, random_start=True, grad="soft",
              seed=7)
    after = torch.rand(3)
    b = craft(jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=2, step_size=2 / 255, random_start=True, grad="soft",
              seed=7)
    c = craft(jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=2, step_size=2 / 255, random_start=True, grad="soft",
              seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(before, after)  # the attack's seeding did not disturb the caller's RNG stream


def test_soft_gradients_reach_the_input_and_bpda_forward_is_hard_rounding(batch):
    x, _ = batch
    layer = JpegLayer(JpegConfig(paper_table="resnet56"))
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(layer(xg).square().sum(), xg)
    assert (g != 0).float().mean() > 0.99  # soft quantizer: dense non-zero input gradients
    layer.mode = "hard"
    hard = layer(x)
    xg = x.clone().requires_grad_(True)
    (g_hard,) = torch.autograd.grad(layer(xg).square().sum(), xg)
    assert (g_hard == 0).all()  # true rounding blocks every gradient
    layer.mode = "bpda"
    xg = x.clone().requires_grad_(True)
    out = layer(xg)
    # BPDA forward == hard rounding (x + (hard - x).detach() can differ from hard by one float32 ulp)
    assert torch.allclose(out.detach(), hard.detach(), rtol=0, atol=1e-6)
    (g_bpda,) = torch.autograd.grad(out.square().sum(), xg)
    assert (g_bpda != 0).float().mean() > 0.99  # identity backward


def test_jpeg_mode_restores_soft_and_rejects_mismatches(jpeg_model):
    with pytest.raises(RuntimeError), jpeg_mode(jpeg_model, "bpda"):
        assert jpeg_model.jpeg.mode == "bpda"
        raise RuntimeError("boom")
    assert jpeg_model.jpeg.mode == "soft"
    with pytest.raises(ValueError, match="none"), jpeg_mode(jpeg_model, "none"):
        pass
    baseline = create_model("tiny").eval()
    with pytest.raises(ValueError, match="JPEG layer"), jpeg_mode(baseline, "bpda"):
        pass


def test_bpda_crafting_is_evaluated_in_soft_mode(batch, jpeg_model):
    x, y = batch
    craft(jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=1, step_size=4 / 255, grad="bpda", seed=0)
    assert jpeg_model.jpeg.mode == "soft"


def test_unknown_builder_and_train_mode_are_errors(batch):
    x, y = batch
    model = create_model("tiny")
    with pytest.raises(ValueError, match="no attack builder"):
        build_attack(model.eval(), "fgsm", "l2", 0.5)
    with pytest.raises(ValueError, match="eval-mode"):
        craft(model.train(), x, y, "fgsm", "linf", 1 / 255)
