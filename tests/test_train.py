"""The paired trainer: files, pairing, resume (also mid-epoch), refusals, and the fast path vs a plain loop."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
from run_helpers import plain_jpegdl_epoch

import robustbench_jpeg.train as train_module
import robustbench_jpeg.train.pair  # noqa: F401  (the module whose data loading the fixture patches)
from robustbench_jpeg import load_model
from robustbench_jpeg.checkpoint import CheckpointError, load_checkpoint
from robustbench_jpeg.config import ConfigError, RunOptions, TrainConfig
from robustbench_jpeg.data import (
    DatasetNotFoundError,
    load_split,
    to_float,
)

N_TRAIN, N_TEST = 256, 128


@pytest.fixture
def small_data(monkeypatch):
    """cifar100-mini cut to 256 training / 128 test images, so a whole paired run takes a few seconds."""

    def small(name, train, data_dir=None, download=False):
        images, labels = load_split(name, train, data_dir, download)
        n = N_TRAIN if train else N_TEST
        return images[:n].clone(), labels[:n].clone()

    monkeypatch.setattr(train_module.pair, "load_split", small)


def _config(**kwargs) -> TrainConfig:
    defaults = dict(model="tiny", dataset="cifar100-mini", epochs=2, batch_size=64, seed=3)
    defaults.update(kwargs)
    return TrainConfig(**defaults)


OPTIONS = RunOptions(device="cpu", progress=False, checkpoint_every_s=0)


def test_writes_both_arms_with_cards_and_history(small_data, tmp_path):
    results = train_module.train_pair(_config(), tmp_path / "run", OPTIONS)
    assert set(results) == {"baseline", "jpegdl"} and all(r.status == "finished" for r in results.values())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["milestones"] == [1, 2, 2] and config["lr"] == 0.05  # resolved: paper schedule scaled to 2 epochs
    for arm in ("baseline", "jpegdl"):
        arm_dir = tmp_path / "run" / arm
        card = json.loads((arm_dir / "card.json").read_text())
        for key in (
            "model",
            "arm",
            "dataset",
            "recipe",
            "seed",
            "epochs",
            "clean_top1",
            "git_sha",
            "versions",
            "device",
            "wall_seconds",
        ):
            assert key in card, key
        assert card["arm"] == arm and card["epochs_done"] == 2 and card["finished"]
        assert (card["qtables"] is not None) == (arm == "jpegdl")
        with (arm_dir / "history.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert [int(r["epoch"]) for r in rows] == [1, 2]
        assert {"loss", "train_acc", "test_acc", "lr", "jpeg_lr", "seconds"} <= set(rows[0])
        model = load_model(arm_dir)
        assert not model.training and model.has_jpeg == (arm == "jpegdl")


def test_card_accuracy_reproduces_from_saved_weights(small_data, tmp_path):
    train_module.train_pair(_config(epochs=1), tmp_path / "run", OPTIONS)
    images, labels = load_split("cifar100-mini", train=False)
    for arm in ("baseline", "jpegdl"):
        card = json.loads((tmp_path / "run" / arm / "card.json").read_text())
        acc, flags = train_module.evaluate(load_model(tmp_path / "run" / arm), images[:N_TEST], labels[:N_TEST])
        assert acc == pytest.approx(card["clean_top1"], abs=1e-9) and flags.dtype == torch.bool


def test_arms_share_initialisation_and_data_order(small_data, tmp_path):
    train_module.train_pair(_config(epochs=1), tmp_path / "run", OPTIONS)
    base = load_checkpoint(tmp_path / "run" / "baseline")["model"]
    jpeg = load_checkpoint(tmp_path / "run" / "jpegdl")["model"]
    assert {k for k in jpeg if not k.startswith("jpeg.")} == set(base)
    # identical initial weights: re-create both untrained and compare
    torch.manual_seed(3)
    from robustbench_jpeg.jpeg import JpegConfig
    from robustbench_jpeg.models import create_model

    a = create_model("tiny").state_dict()
    torch.manual_seed(3)
    b = create_model("tiny", jpeg=JpegConfig()).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_interrupted_run_resumes_to_the_same_weights(small_data, tmp_path):
    config = _config(arms=("jpegdl",))
    train_module.train_pair(config, tmp_path / "straight", OPTIONS)
    paused = RunOptions(device="cpu", progress=False, checkpoint_every_s=0, time_limit_s=1e-9)
    first = train_module.train_pair(config, tmp_path / "chunked", paused)
    assert first["jpegdl"].status == "paused"
    state = load_checkpoint(tmp_path / "chunked" / "jpegdl")
    assert state["epoch"] == 0 and state["step"] == 1  # stopped after one step, mid-epoch
    with pytest.raises(FileExistsError, match="--resume"):
        train_module.train_pair(config, tmp_path / "chunked", OPTIONS)
    for _ in range(10):  # a few more sittings of one step each, then the rest
        if train_module.train_pair(config, tmp_path / "chunked", paused, resume=True)["jpegdl"].status != "paused":
            break
    final = train_module.train_pair(config, tmp_path / "chunked", OPTIONS, resume=True)
    assert final["jpegdl"].epochs_done == 2
    a = load_checkpoint(tmp_path / "straight" / "jpegdl")
    b = load_checkpoint(tmp_path / "chunked" / "jpegdl")
    for key in a["model"]:
        assert torch.allclose(a["model"][key].float(), b["model"][key].float(), atol=1e-6), key
    assert [r["test_acc"] for r in a["history"]] == [r["test_acc"] for r in b["history"]]
    again = train_module.train_pair(config, tmp_path / "chunked", OPTIONS, resume=True)
    assert again["jpegdl"].status == "skipped"


def test_resume_refuses_a_changed_recipe(small_data, tmp_path):
    train_module.train_pair(_config(epochs=1, arms=("baseline",)), tmp_path / "run", OPTIONS)
    with pytest.raises(ConfigError, match="lr"):
        train_module.train_pair(_config(epochs=1, arms=("baseline",), lr=0.1), tmp_path / "run", OPTIONS, resume=True)
    before = (tmp_path / "run" / "baseline" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match="epochs"):
        train_module.train_pair(_config(epochs=3, arms=("baseline",)), tmp_path / "run", OPTIONS, resume=True)
    assert (tmp_path / "run" / "baseline" / "checkpoint.pt").read_bytes() == before  # nothing lost


def test_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train_module.train_pair(_config(model="resnet9000"), tmp_path / "a", OPTIONS)
    with pytest.raises(DatasetNotFoundError, match="cifar-100"):
        train_module.train_pair(
            _config(dataset="cifar100"), tmp_path / "b", RunOptions(device="cpu", data_dir=str(tmp_path / "nothing"))
        )
    with pytest.raises(ConfigError, match="epochs"):
        _config(epochs=0)
    with pytest.raises(ConfigError, match="arms"):
        _config(arms=("baseline", "other"))
    with pytest.raises(CheckpointError, match="card"):
        load_model(tmp_path / "missing")


def test_checkpoint_loads_with_weights_only(small_data, tmp_path):
    train_module.train_pair(_config(epochs=1, arms=("jpegdl",)), tmp_path / "run", OPTIONS)
    state = torch.load(tmp_path / "run" / "jpegdl" / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "jpeg_optimizer", "epoch", "history"} <= set(state)
    assert "jpeg.alpha_luma" in state["model"]  # alpha travels with the weights


def test_mismatched_checkpoint_is_a_clear_error(small_data, tmp_path):
    train_module.train_pair(_config(epochs=1, arms=("baseline",)), tmp_path / "run", OPTIONS)
    card_file = tmp_path / "run" / "baseline" / "card.json"
    card = json.loads(card_file.read_text())
    card["model"] = "resnet8"
    card_file.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not match"):
        load_model(tmp_path / "run" / "baseline")


def test_fast_path_equals_a_plain_loop_on_cpu():
    """The toolkit's step (device-resident uint8, batched augmentation) equals a plain per-image fp32 loop."""
    images, labels = load_split("cifar100-mini", train=True)
    images, labels = images[:192], labels[:192]
    config = train_module.resolve_config(
        TrainConfig(model="tiny", dataset="cifar100-mini", epochs=1, batch_size=64, seed=5)
    )
    fp32 = RunOptions(device="cpu", progress=False, amp="off", channels_last=False)  # auto is bf16 on some CPUs
    trainer = train_module.ArmTrainer(config, fp32, "jpegdl", Path("unused"), torch.device("cpu"), n_train=192)
    trainer.train_epoch((images, labels))
    fast_losses = trainer.progress.loss_sum

    # plain: per-image crop/flip with torchvision, the same draws, NCHW fp32, a textbook loop
    model, total = plain_jpegdl_epoch(images, labels, 5, dict(lr=0.05, momentum=0.9, weight_decay=5e-4))
    assert fast_losses == pytest.approx(total, rel=1e-5)
    for key, value in model.state_dict().items():
        assert torch.allclose(value.float(), trainer.model.state_dict()[key].float(), atol=1e-5), key


def test_fast_path_fgsm_equals_plain_torchattacks():
    import torchattacks

    from robustbench_jpeg.attack import craft
    from robustbench_jpeg.jpeg import JpegConfig
    from robustbench_jpeg.models import create_model

    torch.manual_seed(0)
    model = create_model("tiny", jpeg=JpegConfig()).eval()
    images, _ = load_split("cifar100-mini", train=False)
    x = to_float(images[:32])
    y = model(x).argmax(1)  # correct clean (craft returns an image misclassified clean as it is: already fooled)
    ours = craft(model, x, y, "fgsm", "linf", 4 / 255, grad="soft")
    plain = torchattacks.FGSM(model, eps=4 / 255)(x, y)
    assert torch.equal(ours, plain)


def test_sensitivity_initialisation_from_the_trained_baseline(small_data, tmp_path):
    """q_init='sensitivity': tables from this run's own baseline (docs/method.md, section 3), max luma step = q_max,
    all steps positive."""
    from robustbench_jpeg.jpeg import JpegConfig

    config = _config(epochs=1, jpeg=JpegConfig(q_init="sensitivity", q_max=7.0))
    with pytest.raises(ConfigError, match="baseline"):
        train_module.train_pair(_config(epochs=1, arms=("jpegdl",), jpeg=config.jpeg), tmp_path / "alone", OPTIONS)
    train_module.train_pair(config, tmp_path / "run", OPTIONS)
    card = json.loads((tmp_path / "run" / "jpegdl" / "card.json").read_text())
    luma = torch.tensor(card["qtables_init"]["luma"])
    chroma = torch.tensor(card["qtables_init"]["chroma"])
    assert float(luma.max()) == pytest.approx(7.0, rel=1e-5)
    assert (luma > 0).all() and (chroma > 0).all() and not torch.allclose(luma, luma[0, 0].expand(8, 8))


def test_sensitivity_initialisation_loads_the_baseline_on_the_runs_device(small_data, tmp_path, monkeypatch):
    """The baseline is loaded on the device the run trains on (where its data is), not on whatever "auto" picks:
    here "auto" is made to answer another device, which the load must never see."""
    from robustbench_jpeg.jpeg import JpegConfig

    pair = sys.modules["robustbench_jpeg.train.pair"]
    real_resolve, real_load, seen = pair.resolve_device, pair.load_model, []
    monkeypatch.setattr(pair, "resolve_device", lambda n: torch.device("meta") if n == "auto" else real_resolve(n))
    monkeypatch.setattr(pair, "load_model", lambda d, device: seen.append(torch.device(device)) or real_load(d, device))
    config = _config(epochs=1, jpeg=JpegConfig(q_init="sensitivity", q_max=7.0))
    train_module.train_pair(config, tmp_path / "run", OPTIONS)
    assert seen == [torch.device("cpu")]


def test_two_trainings_of_one_arm_are_refused_but_arms_can_train_apart(small_data, tmp_path):
    import fcntl

    from robustbench_jpeg.train import TrainLockedError

    run = tmp_path / "run"
    (run / "jpegdl").mkdir(parents=True)
    with open(run / "jpegdl" / ".train.lock", "a+") as handle:  # another process is training that arm
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with pytest.raises(TrainLockedError, match="arm jpegdl"):
            train_module.train_pair(_config(epochs=1, arms=("jpegdl",)), run, OPTIONS)
        # the other arm of the same recipe may train meanwhile (e.g. one process per arm on a 2-core machine)
        assert (
            train_module.train_pair(_config(epochs=1, arms=("baseline",)), run, OPTIONS)["baseline"].status
            == "finished"
        )
    assert train_module.train_pair(_config(epochs=1, arms=("jpegdl",)), run, OPTIONS)["jpegdl"].status == "finished"
    assert json.loads((run / "config.json").read_text())["arms"] == ["baseline", "jpegdl"]


def test_another_recipe_is_refused_even_for_a_new_arm(small_data, tmp_path):
    run = tmp_path / "run"
    train_module.train_pair(_config(epochs=1, arms=("baseline",)), run, OPTIONS)
    before = (run / "config.json").read_bytes()
    with pytest.raises(ConfigError, match="recipe differs"):
        train_module.train_pair(_config(epochs=1, arms=("jpegdl",), lr=0.2), run, OPTIONS)
    assert (run / "config.json").read_bytes() == before  # nothing contradicts the recorded recipe


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", float("nan")),
        ("momentum", float("inf")),
        ("gamma", -1.0),
        ("jpeg_lr", float("nan")),
        ("epochs", 0),
        ("seed", -1),
    ],
)
def test_non_finite_or_out_of_range_options_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        _config(**{field: value})


@pytest.mark.parametrize("field", ["alpha", "chroma_offset", "q_max", "q_constant"])
def test_non_finite_jpeg_options_are_refused(field):
    from robustbench_jpeg.jpeg import JpegConfig

    with pytest.raises(ValueError, match=field):
        JpegConfig(**{field: float("nan")})


def test_a_non_finite_loss_stops_before_saving(small_data, tmp_path, monkeypatch):
    """A NaN loss in epoch 2 is noticed at the next sync point (the epoch's end): training stops with a clear error
    and the checkpoint of epoch 1 stays on disk, never overwritten with NaN weights."""
    from robustbench_jpeg.train import NonFiniteLossError

    real, calls = train_module.arm.F.cross_entropy, {"n": 0}

    def nan_after_one_epoch(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > N_TRAIN // 64 else loss

    monkeypatch.setattr(train_module.arm.F, "cross_entropy", nan_after_one_epoch)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match="NaN or infinite in epoch 2"):
        train_module.train_pair(_config(epochs=2, arms=("baseline",)), run, OPTIONS)
    state = load_checkpoint(run / "baseline")
    weights = [v for v in state["model"].values() if v.is_floating_point()]
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in weights)
    assert json.loads((run / "baseline" / "card.json").read_text())["epochs_done"] == 1


def test_models_refuse_integer_images_and_warn_once_on_0_255_floats():
    import warnings

    from robustbench_jpeg.models import create_model

    model = create_model("tiny").eval()
    with pytest.raises(TypeError, match="float RGB in \\[0, 1\\]"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.warns(UserWarning, match="divided by 255"):
        model(torch.full((1, 3, 32, 32), 200.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.full((1, 3, 32, 32), 200.0))  # once per model: no second warning
