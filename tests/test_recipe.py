"""Named training recipes (``--recipe``): the ``cpu`` recipe's schedule, loss and optimiser, its record in the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from run_helpers import plain_jpegdl_epoch

import robustbench_jpeg.train as train_module
from robustbench_jpeg.config import RECIPES, ConfigError, RunOptions, TrainConfig, recipe_config
from robustbench_jpeg.data import load_split
from robustbench_jpeg.train.progress import scheduled_lr

OPTIONS = RunOptions(device="cpu", progress=False, checkpoint_every_s=0, amp="off", channels_last=False)


def test_the_cosine_schedule_equals_torchs_cosine_annealing_after_a_linear_warm_up():
    config = recipe_config("cpu", model="tiny", epochs=12, warmup_epochs=2)
    base, warmup, rest = 0.1, 2, 10
    ours = [scheduled_lr(base, e, config) for e in range(config.epochs)]
    assert ours[:warmup] == pytest.approx([base / 3, 2 * base / 3])
    # after the warm-up: torch's CosineAnnealingLR with T_max = rest + 1, one scheduler step before each epoch
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=rest + 1)
    reference = []
    for _ in range(rest):
        optimizer.step()  # no gradient: changes nothing, keeps the documented call order
        scheduler.step()
        reference.append(optimizer.param_groups[0]["lr"])
    assert ours[warmup:] == pytest.approx(reference)
    assert all(a > b for a, b in zip(ours[warmup:-1], ours[warmup + 1 :], strict=True)) and ours[-1] > 0


def test_the_step_schedule_is_unchanged_by_the_recipes():
    config = train_module.resolve_config(TrainConfig(model="tiny", epochs=240))
    assert [scheduled_lr(0.05, e, config) for e in (0, 149, 150, 180, 210, 239)] == pytest.approx(
        [0.05, 0.05, 0.005, 0.0005, 0.00005, 0.00005]
    )


def test_a_recipe_sets_its_fields_and_explicit_options_win():
    config = recipe_config("cpu", model="resnet20", epochs=5)
    assert config.recipe == "cpu" and config.epochs == 5
    for key, value in RECIPES["cpu"].items():
        if key != "epochs":
            assert getattr(config, key) == value, key
    assert recipe_config("paper", model="resnet20") == TrainConfig(model="resnet20")
    with pytest.raises(ConfigError, match="recipe"):
        recipe_config("fast")


@pytest.mark.parametrize(
    "fields, option",
    [
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": float("nan")}, "label_smoothing"),
        ({"warmup_epochs": 30}, "warmup_epochs"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"schedule": "linear"}, "schedule"),
        ({"momentum": 0.0}, "nesterov"),
    ],
)
def test_bad_recipe_values_name_the_option(fields, option):
    with pytest.raises(ConfigError, match=option):
        recipe_config("cpu", **fields)


def test_the_cpu_recipe_step_equals_a_plain_loop_with_nesterov_and_label_smoothing():
    """One epoch of the trainer under the cpu recipe equals a textbook loop: the warm-up learning rate of epoch 0,
    SGD with Nesterov momentum, label-smoothed cross-entropy; the tables on Adam 0.003 as in the paper."""
    images, labels = load_split("cifar100-mini", train=True)
    images, labels = images[:128], labels[:128]
    config = train_module.resolve_config(
        recipe_config("cpu", model="tiny", dataset="cifar100-mini", epochs=4, batch_size=64, seed=5)
    )
    trainer = train_module.ArmTrainer(config, OPTIONS, "jpegdl", Path("unused"), torch.device("cpu"), n_train=128)
    trainer.train_epoch((images, labels))

    lr = 0.1 / 3  # epoch 0 of a 2-epoch linear warm-up to 0.1
    sgd = dict(lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    model, total = plain_jpegdl_epoch(images, labels, 5, sgd, label_smoothing=0.1)
    assert trainer.progress.loss_sum == pytest.approx(total, rel=1e-5)
    for key, value in model.state_dict().items():
        assert torch.allclose(value.float(), trainer.model.state_dict()[key].float(), atol=1e-5), key


@pytest.fixture
def small_data(monkeypatch):
    def small(name, train, data_dir=None, download=False):
        images, labels = load_split(name, train, data_dir, download)
        n = 128 if train else 64
        return images[:n].clone(), labels[:n].clone()

    monkeypatch.setattr(train_module.pair, "load_split", small)


def test_the_card_names_the_recipe_and_resume_refuses_another(small_data, tmp_path):
    config = recipe_config("cpu", model="tiny", dataset="cifar100-mini", epochs=3, arms=("baseline",))
    train_module.train_pair(config, tmp_path / "run", OPTIONS)
    card = json.loads((tmp_path / "run" / "baseline" / "card.json").read_text())
    recipe = card["recipe"]
    assert recipe["name"] == "cpu" and recipe["schedule"] == "cosine" and recipe["warmup_epochs"] == 2
    assert recipe["nesterov"] is True and recipe["loss"] == "cross-entropy, label smoothing 0.1"
    assert "milestones" not in recipe  # a cosine schedule has none
    history = (tmp_path / "run" / "baseline" / "history.csv").read_text().splitlines()
    lrs = [float(line.split(",")[4]) for line in history[1:]]
    assert lrs == pytest.approx([scheduled_lr(0.1, e, train_module.resolve_config(config)) for e in range(3)])
    for changed in ({"label_smoothing": 0.2}, {"recipe": "paper"}):
        with pytest.raises(ConfigError, match="|".join(changed)):
            train_module.train_pair(
                TrainConfig(**{**config.to_dict(), "jpeg": config.jpeg, "arms": ("baseline",), **changed}),
                tmp_path / "run",
                OPTIONS,
                resume=True,
            )


def test_the_cli_applies_the_recipe_and_its_overrides(tmp_path):
    from robustbench_jpeg.cli import build_parser
    from robustbench_jpeg.cli.train_cmd import config_from_args

    args = build_parser().parse_args(["train", "--recipe", "cpu", "--epochs", "4", "--no-nesterov", "--out", "x"])
    config = config_from_args(args)
    assert (config.recipe, config.epochs, config.nesterov, config.schedule) == ("cpu", 4, False, "cosine")
    paper = config_from_args(build_parser().parse_args(["train", "--out", "x"]))
    assert paper == TrainConfig()


def test_the_report_names_the_recipe_of_each_card(small_data, tmp_path):
    from robustbench_jpeg.report.run_sections import recipe_name, recipe_summary

    config = recipe_config("cpu", model="tiny", dataset="cifar100-mini", epochs=3)
    train_module.train_pair(config, tmp_path / "run", OPTIONS)
    card = json.loads((tmp_path / "run" / "jpegdl" / "card.json").read_text())
    assert recipe_name(card) == "cpu"
    line = recipe_summary(card)
    for text in ("`cpu` recipe", "3 epochs", "batch 128", "SGD (Nesterov) 0.1", "cosine after 2 warm-up epochs"):
        assert text in line, (text, line)
    assert "label smoothing 0.1" in line and "tables Adam 0.003 (constant)" in line
    old = {"epochs": 5, "recipe": {"batch_size": 64, "lr": 0.05, "milestones": [3, 4], "gamma": 0.1}}
    assert recipe_name(old) == "paper" and "x0.1 after epochs [3, 4]" in recipe_summary(old)
