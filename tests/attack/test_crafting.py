"""Crafting: eps-balls, eps 0, FGSM against its closed form, gradient modes, seeding, mode restoring, every method,
and scoring every iterate on the deployed model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_jpeg.attack import methods as methods_mod
from robustbench_jpeg.attack.crafting import AttackEngineWarning, attack_setting, craft, run_attack, within_threat
from robustbench_jpeg.attack.gradients import crafting_mode, jpeg_mode
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
def batch(device):
    torch.manual_seed(0)
    return torch.rand(8, 3, 32, 32).to(device), torch.randint(0, 100, (8,)).to(device)


@pytest.fixture(scope="module")
def jpeg_model(device):
    torch.manual_seed(0)
    return create_model("tiny", jpeg=JpegConfig(paper_table="resnet56")).eval().to(device)


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_linf_examples_stay_in_ball_and_box(batch, jpeg_model, method):
    x, _ = batch
    y = jpeg_model(x).argmax(1)  # correct clean: a misclassified image is returned as it is (already fooled)
    eps = 8 / 255
    adv = craft(
        jpeg_model,
        x,
        y,
        method,
        "linf",
        eps,
        steps=3,
        step_size=eps / 2,
        random_start=True if method == "pgd" else False,
        grad="soft",
        seed=1,
    )
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
    x, _ = batch
    model = LinearNet().eval()
    y = model(x).argmax(1)  # correct clean (a misclassified image is already fooled: returned as it is)
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
    a = craft(
        jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=2, step_size=2 / 255, random_start=True, grad="soft", seed=7
    )
    after = torch.rand(3)
    b = craft(
        jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=2, step_size=2 / 255, random_start=True, grad="soft", seed=7
    )
    c = craft(
        jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=2, step_size=2 / 255, random_start=True, grad="soft", seed=8
    )
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(before, after)  # the attack's seeding did not disturb the caller's RNG stream


def test_soft_gradients_reach_the_input_and_the_two_bpda_forwards(batch):
    x, _ = batch
    layer = JpegLayer(JpegConfig(paper_table="resnet56"))
    soft = layer(x)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(layer(xg).square().sum(), xg)
    assert (g != 0).float().mean() > 0.99  # soft quantizer: dense non-zero input gradients
    layer.mode = "hard"
    hard = layer(x)
    xg = x.clone().requires_grad_(True)
    (g_hard,) = torch.autograd.grad(layer(xg).square().sum(), xg)
    assert (g_hard == 0).all()  # true rounding blocks every gradient
    for mode, forward in (("bpda", soft), ("bpda-hard", hard)):  # textbook BPDA keeps the deployed forward
        layer.mode = mode
        xg = x.clone().requires_grad_(True)
        out = layer(xg)
        assert torch.allclose(out.detach(), forward.detach(), rtol=0, atol=1e-6), mode
        (g_bpda,) = torch.autograd.grad(out.square().sum(), xg)
        assert (g_bpda != 0).float().mean() > 0.99, mode  # identity backward


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


def test_unsupported_norm_unknown_method_and_train_mode_are_errors(batch):
    x, y = batch
    model = create_model("tiny")
    with pytest.raises(ValueError, match="does not support norm"):
        craft(model.eval(), x, y, "fgsm", "l2", 0.5)
    with pytest.raises(ValueError, match="unknown attack method"):
        craft(model.eval(), x, y, "cw", "linf", 0.5)
    with pytest.raises(ValueError, match="eval-mode"):
        craft(model.train(), x, y, "fgsm", "linf", 1 / 255)


def test_surrogate_crafting_restores_the_layer(batch, jpeg_model):
    x, y = batch
    craft(
        jpeg_model,
        x,
        y,
        "pgd",
        "linf",
        4 / 255,
        steps=2,
        step_size=2 / 255,
        grad="surrogate",
        seed=0,
        surrogate_alpha=0.5,
    )
    assert jpeg_model.jpeg.mode == "soft" and jpeg_model.jpeg.surrogate_alpha is None
    with pytest.raises(ValueError, match="surrogate_alpha"):
        craft(jpeg_model, x, y, "pgd", "linf", 4 / 255, steps=1, grad="surrogate")


@pytest.mark.parametrize(
    "method, norm, eps",
    [
        ("apgd-ce", "linf", 8 / 255),
        ("apgd-dlr", "linf", 8 / 255),
        ("apgd-t", "linf", 8 / 255),
        ("fab-t", "linf", 8 / 255),
        ("square", "linf", 8 / 255),
        ("apgd-ce", "l2", 0.5),
        ("square", "l2", 0.5),
    ],
)
def test_every_method_stays_in_the_threat_model_and_is_seeded(batch, method, norm, eps):
    x, y = batch
    model = create_model("tiny").eval()
    params = {"target_classes": 2} if method in ("apgd-t", "fab-t") else None
    steps = 30 if method == "square" else 3
    setting = attack_setting(method, norm, eps, steps=steps, params=params)
    adv, fooled = run_attack(model, x, y, setting, seed=3)
    assert within_threat(adv, x, eps, norm).all()
    assert torch.equal(fooled, model(adv).argmax(1) != y)
    again, _ = run_attack(model, x, y, setting, seed=3)
    assert torch.equal(adv, again)


@pytest.fixture
def scripted_method():
    """A registered attack whose path is scripted: it queries the model at ``path`` iterates, returns ``final``."""
    state = {}

    def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
        def attack(x, y):
            for point in state["path"](x):
                model(point)
            return state["final"](x)

        return attack

    methods_mod.register(
        methods_mod.Method(
            name="scripted", label="Scripted", norms=("linf",), build=build, default_steps=1, scores_iterates=True
        )
    )
    yield state
    del methods_mod.METHODS["scripted"]


class PixelSwitch(nn.Module):
    """Predicts class 1 for an image whose first pixel was raised above ``base`` (by more than 1e-4), else class 0."""

    def __init__(self, base: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("base", base[:, 0, 0, 0].clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), 10)
        logits[:, 0] = 1.0
        logits[:, 1] = (x[:, 0, 0, 0] - self.base[: len(x)]) * 1e5
        return logits


def test_an_image_fooled_by_any_iterate_counts_as_broken(batch, scripted_method):
    """PGD used to be scored at its last iterate only: an image fooled on the way and correct at the end counted as
    robust. Every iterate inside the threat model is now scored on the deployed model, as AutoAttack's APGD does."""
    x, _ = batch
    x = x.clamp(0, 0.9)
    y = torch.zeros(len(x), dtype=torch.long)
    model = PixelSwitch(x).eval()
    eps = 8 / 255

    def path(z):  # one iterate raises image 0's first pixel (inside the ball), then the attack returns the clean images
        bad = z.clone()
        bad[0, 0, 0, 0] += eps / 2
        return [z, bad, z]

    scripted_method["path"] = path
    scripted_method["final"] = lambda z: z.clone()
    adv, fooled = run_attack(model, x, y, attack_setting("scripted", "linf", eps))
    assert fooled.tolist() == [True] + [False] * (len(x) - 1)  # image 0 was fooled on the way, not at the end
    assert torch.equal(adv[1:], x[1:]) and (model(adv).argmax(1)[1:] == y[1:]).all()


def test_the_example_returned_is_the_first_iterate_that_fooled(batch, scripted_method):
    """0.2 returned the final iterate even when it fooled nobody and an earlier one had: the example must be the one
    that fooled the deployed model (the first such iterate inside the threat model), the final one otherwise."""
    x, _ = batch
    x = x.clamp(0, 0.9)
    y = torch.zeros(len(x), dtype=torch.long)
    model = PixelSwitch(x).eval()
    eps = 8 / 255
    first, second = x.clone(), x.clone()
    first[0, 0, 0, 0] += eps / 4
    second[0, 0, 0, 0] += eps / 2
    second[1, 0, 0, 0] += eps / 2
    scripted_method["path"] = lambda z: [z, first, second, z]
    final = x.clone()
    final[2, 0, 0, 0] += eps / 3  # image 2 is fooled by the final example only
    scripted_method["final"] = lambda z: final.clone()
    adv, fooled = run_attack(model, x, y, attack_setting("scripted", "linf", eps))
    assert fooled.tolist() == [True, True, True] + [False] * (len(x) - 3)
    assert torch.equal(adv[0], first[0]) and torch.equal(adv[1], second[1])  # the first fooling iterate
    assert torch.equal(adv[2:], final[2:])  # the final example where no iterate fooled
    assert (model(adv).argmax(1) != y).tolist() == fooled.tolist()  # every example flagged fooled does fool


def test_iterates_outside_the_ball_do_not_count_and_bad_outputs_are_replaced(batch, scripted_method):
    x, y = batch
    model = LinearNet().eval()
    y = model(x).argmax(1)
    scripted_method["path"] = lambda z: [torch.zeros_like(z)]  # far outside the 1/255 ball: may fool, must not count
    scripted_method["final"] = lambda z: torch.zeros_like(z)
    with pytest.warns(AttackEngineWarning, match="outside the linf ball"):
        adv, fooled = run_attack(model, x, y, attack_setting("scripted", "linf", 1 / 255))
    assert torch.equal(adv, x) and not fooled.any()


def test_transfer_and_bpda_hard_iterates_are_scored_on_the_deployed_target(batch, jpeg_model):
    """Crafting on another model (transfer) or with a non-deployed forward (bpda-hard): the fooled flags describe
    the deployed evaluated model, never the crafting forward."""
    x, y = batch
    target = jpeg_model
    y = target(x).argmax(1)
    source = create_model("tiny").eval()
    adv, fooled = run_attack(source, x, y, attack_setting("fgsm", "linf", 16 / 255), target=target)
    assert torch.equal(fooled, target(adv).argmax(1) != y)  # FGSM: the start is clean-correct, only the end counts
    adv, fooled = run_attack(target, x, y, attack_setting("fgsm", "linf", 16 / 255, grad="bpda-hard"))
    assert torch.equal(fooled, target(adv).argmax(1) != y) and target.jpeg.mode == "soft"


@pytest.fixture(scope="module")
def hard_model(device):
    """A model behind a fixed standard JPEG front end deployed with hard rounding (the ``jpeg-standard`` control)."""
    torch.manual_seed(0)
    config = JpegConfig(paper_table="resnet56", quantizer="hard")
    return create_model("tiny", jpeg=config).eval().to(device)


@pytest.mark.parametrize(
    "grad, crafted",
    [("soft", "hard"), ("bpda", "bpda-hard"), ("surrogate", "surrogate-hard"), ("bpda-hard", "bpda-hard")],
)
def test_on_a_hard_deployed_arm_every_iterate_runs_and_is_scored_on_the_hard_forward(batch, hard_model, grad, crafted):
    """0.2 crafted ``bpda`` and ``surrogate`` on a hard-deployed arm through the *soft* forward and scored every
    iterate on that never-deployed soft model. Every forward an attack makes on such an arm must be the deployed hard
    rounding (with an identity or surrogate backward), so the iterates are scored on the deployed model."""
    x, _ = batch
    y = hard_model(x).argmax(1)
    modes = []
    hook = hard_model.jpeg.register_forward_pre_hook(lambda layer, _args: modes.append(layer.mode))
    try:
        setting = attack_setting("pgd", "linf", 8 / 255, steps=3, step_size=4 / 255, grad=grad, surrogate_alpha=1.0)
        adv, fooled = run_attack(hard_model, x, y, setting, seed=0)
    finally:
        hook.remove()
    assert crafting_mode("hard", grad) == crafted
    assert crafted in modes and set(modes) <= {crafted, "hard"}  # crafting forwards, and deployed scoring forwards
    assert hard_model.jpeg.mode == "hard" and hard_model.jpeg.surrogate_alpha is None
    assert torch.equal(fooled | (hard_model(adv).argmax(1) != y), fooled)  # a fooling example is flagged


def test_surrogate_hard_keeps_the_hard_forward_and_has_a_gradient(batch, hard_model):
    x, _ = batch
    y = hard_model(x).argmax(1)
    deployed = hard_model(x)
    xg = x.clone().requires_grad_(True)
    with jpeg_mode(hard_model, "surrogate-hard", surrogate_alpha=1.0):
        logits = hard_model(xg)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), xg)
    assert torch.equal(logits.detach(), deployed)  # the deployed hard forward, bit for bit
    assert grad.abs().sum() > 0  # where hard rounding alone gives no gradient through the quantizer
