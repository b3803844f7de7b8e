"""Finishing an arm survives a crash: the card and history of a finished checkpoint are completed by ``--resume``;
a failed first training (no data) does not pin its recipe; a non-finite loss names a checkpoint that exists."""

from __future__ import annotations

import errno
import json

import pytest
from test_train import OPTIONS, _config, small_data  # noqa: F401  (small_data is a fixture)

import robustbench_jpeg.train as train_module
from robustbench_jpeg.checkpoint import find_arms, load_checkpoint, weights_fingerprint
from robustbench_jpeg.config import RunOptions
from robustbench_jpeg.data import DatasetNotFoundError

pytestmark = pytest.mark.usefixtures("small_data")  # cifar100-mini cut to 256 / 128 images


def test_a_crash_between_the_final_checkpoint_and_the_card_is_completed_by_resume(tmp_path, monkeypatch):
    run = tmp_path / "run"
    config = _config(epochs=1, arms=("baseline",))
    real = train_module.pair.write_card

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(run / "baseline" / "card.json"))

    monkeypatch.setattr(train_module.pair, "write_card", disk_full)
    with pytest.raises(OSError):
        train_module.train_pair(config, run, OPTIONS)
    monkeypatch.setattr(train_module.pair, "write_card", real)
    assert load_checkpoint(run / "baseline")["epoch"] == 1 and not (run / "baseline" / "card.json").exists()
    (run / "baseline" / "history.csv").unlink()
    result = train_module.train_pair(config, run, OPTIONS, resume=True)["baseline"]
    assert (result.status, result.epochs_done) == ("completed", 1)
    card = json.loads((run / "baseline" / "card.json").read_text(encoding="utf-8"))
    from robustbench_jpeg import load_model

    assert card["finished"] and card["fingerprint"] == weights_fingerprint(load_model(run / "baseline"))
    assert (run / "baseline" / "history.csv").is_file() and "baseline" in find_arms(run)
    assert train_module.train_pair(config, run, OPTIONS, resume=True)["baseline"].status == "skipped"


def test_a_card_left_one_epoch_behind_is_rewritten(tmp_path):
    run = tmp_path / "run"
    config = _config(epochs=2, arms=("baseline",))
    train_module.train_pair(config, run, OPTIONS)
    card_path = run / "baseline" / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.update(epochs_done=1, finished=False, fingerprint="0" * 16)  # what epoch 1 wrote
    card_path.write_text(json.dumps(card), encoding="utf-8")
    assert train_module.train_pair(config, run, OPTIONS, resume=True)["baseline"].status == "completed"
    assert json.loads(card_path.read_text(encoding="utf-8"))["epochs_done"] == 2


def test_a_failed_first_training_does_not_pin_its_recipe(tmp_path):
    run = tmp_path / "run"
    missing = RunOptions(device="cpu", progress=False, data_dir=str(tmp_path / "nothing"))
    with pytest.raises(DatasetNotFoundError):
        train_module.train_pair(_config(dataset="cifar100", epochs=1, arms=("baseline",)), run, missing)
    result = train_module.train_pair(_config(epochs=1, arms=("baseline",)), run, OPTIONS)["baseline"]
    assert result.status == "finished"
    assert json.loads((run / "config.json").read_text(encoding="utf-8"))["dataset"] == "cifar100-mini"


def test_a_non_finite_loss_in_the_first_epoch_says_no_checkpoint_exists(tmp_path, monkeypatch):
    from robustbench_jpeg.train import NonFiniteLossError

    real = train_module.arm.F.cross_entropy
    monkeypatch.setattr(train_module.arm.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"no checkpoint was written yet \(.*checkpoint.pt does not exist\)"):
        train_module.train_pair(_config(epochs=1, arms=("baseline",)), run, OPTIONS)
    assert not (run / "baseline" / "checkpoint.pt").exists()
