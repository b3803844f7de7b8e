"""Several seeds trained concurrently in one process (train/group.py, ``jpeg-robust train --seeds``): every model is
the model a separate ``train_pair`` run of its seed makes, bit for bit on the CPU; one folder per seed; a paused
group resumes to the same weights."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import robustbench_jpeg.train as train_module
import robustbench_jpeg.train.pair  # noqa: F401  (the module whose data loading the fixture patches)
from robustbench_jpeg.checkpoint import load_checkpoint
from robustbench_jpeg.cli import EXIT_PAUSED, main
from robustbench_jpeg.config import ConfigError, RunOptions, TrainConfig
from robustbench_jpeg.data import load_split
from robustbench_jpeg.jpeg import JpegConfig

N_TRAIN, N_TEST = 200, 100  # three batches of 64 and a ragged one of 8
OPTIONS = RunOptions(device="cpu", progress=False, checkpoint_every_s=0)
CONFIG = TrainConfig(model="tiny", dataset="cifar100-mini", epochs=2, batch_size=64)


@pytest.fixture
def small_data(monkeypatch):
    def small(name, train, data_dir=None, download=False):
        images, labels = load_split(name, train, data_dir, download)
        n = N_TRAIN if train else N_TEST
        return images[:n].clone(), labels[:n].clone()

    monkeypatch.setattr(train_module.pair, "load_split", small)


def _assert_same_arm(a_dir, b_dir) -> None:
    """Checkpoints equal bit for bit (weights, buffers, optimiser states, progress apart from wall seconds)."""
    a, b = load_checkpoint(a_dir), load_checkpoint(b_dir)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in ("optimizer", "jpeg_optimizer"):
        if a[name] is None:
            assert b[name] is None
            continue
        for i, state in a[name]["state"].items():
            for k, v in state.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(b[name]["state"][i][k])), (name, i, k)

    def history(state):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in state["history"]]

    assert history(a) == history(b) and a["epoch"] == b["epoch"] and a["best"] == b["best"]
    card_a = json.loads((a_dir / "card.json").read_text())
    card_b = json.loads((b_dir / "card.json").read_text())
    for key in ("clean_top1", "best_top1", "qtables", "qtables_init", "fingerprint", "seed", "epochs_done"):
        assert card_a[key] == card_b[key], key


def test_concurrent_seeds_equal_separate_runs(small_data, tmp_path):
    results = train_module.train_group(CONFIG, [0, 1], tmp_path / "group", OPTIONS)
    assert {s: {a: r.status for a, r in arms.items()} for s, arms in results.items()} == {
        0: {"baseline": "finished", "jpegdl": "finished"},
        1: {"baseline": "finished", "jpegdl": "finished"},
    }
    for seed in (0, 1):
        train_module.train_pair(dataclasses.replace(CONFIG, seed=seed), tmp_path / f"alone{seed}", OPTIONS)
        for arm in ("baseline", "jpegdl"):
            _assert_same_arm(tmp_path / "group" / f"seed{seed}" / arm, tmp_path / f"alone{seed}" / arm)
        config = json.loads((tmp_path / "group" / f"seed{seed}" / "config.json").read_text())
        assert config == json.loads((tmp_path / f"alone{seed}" / "config.json").read_text()) and config["seed"] == seed
    a = load_checkpoint(tmp_path / "group" / "seed0" / "baseline")["model"]
    b = load_checkpoint(tmp_path / "group" / "seed1" / "baseline")["model"]
    assert not all(torch.equal(a[k], b[k]) for k in a)  # the seeds really differ


def test_a_paused_group_resumes_to_the_same_weights(small_data, tmp_path):
    train_module.train_group(CONFIG, [0, 1], tmp_path / "straight", OPTIONS)
    paused = dataclasses.replace(OPTIONS, time_limit_s=1e-9)  # one round (one step of every model) per sitting
    first = train_module.train_group(CONFIG, [0, 1], tmp_path / "chunked", paused)
    assert all(r.status == "paused" for arms in first.values() for r in arms.values())
    assert load_checkpoint(tmp_path / "chunked" / "seed1" / "jpegdl")["step"] == 1  # mid-epoch checkpoints
    with pytest.raises(FileExistsError, match="--resume"):
        train_module.train_group(CONFIG, [0, 1], tmp_path / "chunked", OPTIONS)
    for _ in range(10):
        out = train_module.train_group(CONFIG, [0, 1], tmp_path / "chunked", paused, resume=True)
        if not any(r.status == "paused" for arms in out.values() for r in arms.values()):
            break
    final = train_module.train_group(CONFIG, [0, 1], tmp_path / "chunked", OPTIONS, resume=True)
    assert all(r.status in ("finished", "skipped") for arms in final.values() for r in arms.values())
    for seed in (0, 1):
        for arm in ("baseline", "jpegdl"):
            a = load_checkpoint(tmp_path / "straight" / f"seed{seed}" / arm)
            b = load_checkpoint(tmp_path / "chunked" / f"seed{seed}" / arm)
            for key in a["model"]:  # the same weights (loss sums folded at other steps: rounding only)
                assert torch.equal(a["model"][key], b["model"][key]), (seed, arm, key)
            assert [r["test_acc"] for r in a["history"]] == [r["test_acc"] for r in b["history"]]
            assert [r["loss"] for r in a["history"]] == pytest.approx([r["loss"] for r in b["history"]], rel=1e-6)


def test_run_folders_templates_and_refusals(small_data, tmp_path):
    assert train_module.seed_run_dirs(tmp_path / "r", [2, 5]) == {
        2: tmp_path / "r" / "seed2",
        5: tmp_path / "r" / "seed5",
    }
    assert train_module.seed_run_dirs(f"{tmp_path}/r56-s{{seed}}", [0]) == {0: tmp_path / "r56-s0"}
    with pytest.raises(ConfigError, match="distinct"):
        train_module.train_group(CONFIG, [1, 1], tmp_path / "x", OPTIONS)
    with pytest.raises(ConfigError, match="one folder"):  # seed0/../same and seed1/../same
        train_module.train_group(CONFIG, [0, 1], tmp_path / "{seed}" / ".." / "same", OPTIONS)
    assert not (tmp_path / "same").exists()  # refused before anything was written


def test_sensitivity_arms_wait_for_their_own_baseline(small_data, tmp_path):
    """q_init='sensitivity' takes the tables from the seed's own trained baseline: trained after the baselines."""
    config = dataclasses.replace(CONFIG, epochs=1, jpeg=JpegConfig(q_init="sensitivity", q_max=7.0))
    results = train_module.train_group(config, [0, 1], tmp_path / "g", OPTIONS)
    assert all(r.status == "finished" for arms in results.values() for r in arms.values())
    train_module.train_pair(dataclasses.replace(config, seed=1), tmp_path / "alone", OPTIONS)
    _assert_same_arm(tmp_path / "g" / "seed1" / "jpegdl", tmp_path / "alone" / "jpegdl")
    card = json.loads((tmp_path / "g" / "seed0" / "jpegdl" / "card.json").read_text())
    assert max(max(row) for row in card["qtables_init"]["luma"]) == pytest.approx(7.0, rel=1e-5)


def test_cli_seeds_pause_and_resume(small_data, tmp_path, capsys):
    argv = [
        "train",
        "--model",
        "tiny",
        "--dataset",
        "cifar100-mini",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--seeds",
        "0,3",
        "--out",
        str(tmp_path / "r-s{seed}"),
    ]
    assert main([*argv, "--time-limit", "0.0000001", "--resume"]) == EXIT_PAUSED  # --resume starts new folders too
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "run folder (seed 3)" in out
    for seed in (0, 3):
        card = json.loads((tmp_path / f"r-s{seed}" / "jpegdl" / "card.json").read_text())
        assert card["seed"] == seed and card["finished"]
        assert "--seeds 0,3" in (tmp_path / f"r-s{seed}" / "commands.txt").read_text()


def test_two_processes_may_start_the_arms_of_one_new_folder_together(monkeypatch, tmp_path):
    """One process per arm on a fresh folder (as scripts/cpu_study.sh trains seed 2): the second waits for the first
    to write config.json instead of failing, and the folder records both arms."""
    import contextlib
    import threading
    import time

    from robustbench_jpeg.train import pair

    slow, prepared = pair._prepare_run_dir, threading.Barrier(2)

    def prepare_slowly(*args, **kwargs):
        time.sleep(0.3)  # the other process arrives while this one holds the folder
        return slow(*args, **kwargs)

    monkeypatch.setattr(pair, "_prepare_run_dir", prepare_slowly)
    errors: list[BaseException] = []

    def start(arm: str) -> None:
        prepared.wait(30)
        try:
            with contextlib.ExitStack() as stack:
                pair.open_run(stack, tmp_path / "seed2", dataclasses.replace(CONFIG, arms=(arm,)), OPTIONS, False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(arm,)) for arm in ("baseline", "jpegdl")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert json.loads((tmp_path / "seed2" / "config.json").read_text())["arms"] == ["baseline", "jpegdl"]
