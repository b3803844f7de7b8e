"""The control arms: trained in the same paired run as the baseline and JPEG-DL, differing only in the front end."""

from __future__ import annotations

import json

import pytest
import torch

import robustbench_jpeg.train as train_module
import robustbench_jpeg.train.arm as arm_module
import robustbench_jpeg.train.pair as pair_module
from robustbench_jpeg import load_model
from robustbench_jpeg.attack import AttackSpec
from robustbench_jpeg.checkpoint import load_checkpoint
from robustbench_jpeg.config import RunOptions, TrainConfig
from robustbench_jpeg.data import load_split
from robustbench_jpeg.jpeg import standard_tables
from robustbench_jpeg.sweep import run_sweep

ARMS = ("baseline", "jpegdl", "jpeg-frozen", "jpeg-standard")
OPTIONS = RunOptions(device="cpu", progress=False, checkpoint_every_s=0)


@pytest.fixture(scope="module")
def four_arms(tmp_path_factory):
    """A tiny four-arm run on 192 training images, recording every training batch each arm saw."""
    seen: dict[str, list[torch.Tensor]] = {arm: [] for arm in ARMS}
    current = {"arm": None}
    real_init, real_augment = arm_module.ArmTrainer.__init__, arm_module.apply_augment

    def init(self, config, options, arm, *args, **kwargs):
        current["arm"] = arm
        real_init(self, config, options, arm, *args, **kwargs)

    def augment(images, dy, dx, flip, *args, **kwargs):
        out = real_augment(images, dy, dx, flip, *args, **kwargs)
        seen[current["arm"]].append(out.clone())
        return out

    def small(name, train, data_dir=None, download=False):
        images, labels = load_split(name, train, data_dir, download)
        n = 192 if train else 64
        return images[:n].clone(), labels[:n].clone()

    patch = pytest.MonkeyPatch()
    patch.setattr(arm_module.ArmTrainer, "__init__", init)
    patch.setattr(arm_module, "apply_augment", augment)
    patch.setattr(pair_module, "load_split", small)
    run = tmp_path_factory.mktemp("controls") / "run"
    config = TrainConfig(model="tiny", dataset="cifar100-mini", epochs=2, batch_size=64, seed=7, arms=ARMS)
    try:
        results = train_module.train_pair(config, run, OPTIONS)
    finally:
        patch.undo()
    return run, results, seen


def test_every_arm_trains_and_loads(four_arms):
    run, results, _ = four_arms
    assert set(results) == set(ARMS) and all(r.status == "finished" for r in results.values())
    for arm in ARMS:
        model = load_model(run / arm)
        assert model.has_jpeg == (arm != "baseline")
        card = json.loads((run / arm / "card.json").read_text())
        assert card["arm"] == arm and card["fingerprint"]


def test_frozen_tables_stay_bit_identical_to_their_initial_values(four_arms):
    run, _, _ = four_arms
    frozen = load_checkpoint(run / "jpeg-frozen")
    card = json.loads((run / "jpeg-frozen" / "card.json").read_text())
    assert frozen["jpeg_optimizer"] is None
    assert card["qtables"]["luma"] == card["qtables_init"]["luma"]
    assert card["qtables"]["chroma"] == card["qtables_init"]["chroma"]
    learned = json.loads((run / "jpegdl" / "card.json").read_text())
    assert learned["qtables_init"] == card["qtables_init"]  # same start
    assert learned["qtables"]["luma"] != learned["qtables_init"]["luma"]  # and JPEG-DL did learn


def test_standard_arm_is_fixed_ijg_jpeg_with_hard_rounding(four_arms):
    run, _, _ = four_arms
    model = load_model(run / "jpeg-standard")
    luma, chroma = standard_tables(75)
    assert torch.equal(model.jpeg.q_luma.detach(), luma.float()) and torch.equal(
        model.jpeg.q_chroma.detach(), chroma.float()
    )
    assert model.jpeg.mode == "hard" and model.jpeg.deployed_mode == "hard"
    assert model.jpeg.config.chroma_offset == 0.0


def test_all_arms_saw_identical_batches(four_arms):
    _, _, seen = four_arms
    reference = seen["baseline"]
    assert len(reference) == 2 * 3  # two epochs of three batches
    for arm in ARMS[1:]:
        assert len(seen[arm]) == len(reference)
        assert all(torch.equal(a, b) for a, b in zip(seen[arm], reference, strict=True)), arm


def test_every_arm_shares_the_backbone_initialisation(four_arms):
    run, _, _ = four_arms
    torch.manual_seed(7)
    from robustbench_jpeg.models import create_model

    init = create_model("tiny").state_dict()
    for arm in ARMS:  # rebuild each arm's untrained model from its recipe: the same backbone start
        torch.manual_seed(7)
        model = arm_module.create_model(
            "tiny",
            100,
            jpeg=train_module.arms.arm_jpeg_config(
                arm, train_module.resolve_config(TrainConfig(model="tiny", dataset="cifar100-mini", arms=ARMS))
            ),
        )
        state = model.state_dict()
        assert all(torch.equal(state[k], init[k]) for k in init), arm


@pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.SanityCheckWarning")
def test_the_sweep_attacks_every_arm_and_crafts_the_standard_arm_through_hard_rounding(four_arms):
    run, _, _ = four_arms
    spec = AttackSpec(method="pgd", eps=(8 / 255,), steps=2, grad=("soft", "bpda"), n_examples=16, batch_size=16)
    table = run_sweep(run, spec, progress=False)
    attacked = table[table["attack"] == "pgd"]
    assert set(attacked["arm"]) == set(ARMS)
    assert set(attacked.loc[attacked["arm"] == "jpeg-standard", "grad"]) == {"hard", "bpda-hard"}  # hard forward
    assert set(attacked.loc[attacked["arm"] == "jpeg-frozen", "grad"]) == {"soft", "bpda"}
    checks = json.loads((run / "checks.json").read_text())
    assert set(checks["masking"]) == {"jpegdl", "jpeg-frozen", "jpeg-standard"}


@pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.SanityCheckWarning")
def test_an_evaluation_alpha_changes_soft_quantizers_only_and_keeps_every_arm_apart(four_arms):
    """Every arm's cells of an eval-alpha attack carry the alpha, so the corrected worst case never mixes them in
    (the baseline and the hard standard-JPEG arm score the same either way: their numbers equal the ordinary ones)."""
    run, _, _ = four_arms
    common = {"method": "fgsm", "eps": (4 / 255,), "n_examples": 16}
    table = run_sweep(run, [AttackSpec(**common), AttackSpec(**common, eval_alpha=1.0)], progress=False)
    fgsm = table[table["attack"] == "fgsm"]
    assert set(fgsm.loc[fgsm["eval_alpha"].notna(), "arm"]) == set(ARMS)
    by = fgsm.set_index(["arm", fgsm["eval_alpha"].fillna(0)])["n_correct"]
    for arm in ("baseline", "jpeg-standard"):
        assert by[(arm, 1.0)] == by[(arm, 0)]
