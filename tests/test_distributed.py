"""torchrun: DistributedDataParallel training and sharded attack sweeps equal single-process runs.

Two CPU processes (gloo) train ``tiny_nobn`` (no BatchNorm, so data parallelism is exact) and attack a small run;
the results must equal a single-process run's: weights to fp32 rounding, per-sample attack results exactly.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from run_helpers import write_arm

from robustbench_jpeg import distributed
from robustbench_jpeg.attack.crafting import craft
from robustbench_jpeg.attack.random_starts import PerSampleRandom, start_seed
from robustbench_jpeg.attack.spec import AttackSpec
from robustbench_jpeg.checkpoint import load_checkpoint, load_model
from robustbench_jpeg.cli import main as cli_main
from robustbench_jpeg.data import load_split
from robustbench_jpeg.jpeg import JpegConfig
from robustbench_jpeg.models import create_model
from robustbench_jpeg.runfolder.store import RunStore
from robustbench_jpeg.sweep import run_sweep

pytestmark = [
    pytest.mark.skipif(
        not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
        reason="torch.distributed with the gloo backend is not available in this torch build",
    ),
    pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.SanityCheckWarning"),
]

TIMEOUT_S = 180
# 250 images in global batches of 49: 5 full steps split 25/24 over two ranks, then 5 images split 3/2
TRAIN_ARGS = [
    "train",
    "--model",
    "tiny_nobn",
    "--dataset",
    "cifar100-mini",
    "--epochs",
    "1",
    "--batch-size",
    "49",
    "--train-subset",
    "250",
    "--seed",
    "1",
    "--device",
    "cpu",
    "--amp",  # float32, whose rounding the comparison below bounds (auto is bf16 on CPUs with bf16 units)
    "off",
    "--no-channels-last",
    "--no-progress",
    "--checkpoint-every",
    "0",
]
# 60 images in batches of 16: one process crafts 0-15, 16-31, ...; two ranks craft 0-15, 16-29 | 30-45, 46-59
ATTACK_ARGS = [
    "attack",
    "--method",
    "pgd",
    "--eps",
    "2,8",
    "--steps",
    "3",
    "--restarts",
    "2",
    "--n-examples",
    "60",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "--no-progress",
]


def torchrun(args: list[str], cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node=2 --standalone -m robustbench_jpeg ARGS`` on CPU; on a
    timeout the launcher and its workers (a session of their own) are killed, and the test fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
        "-m",
        "robustbench_jpeg",
        *args,
    ]
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish in {TIMEOUT_S} s (a rank waiting in a collective?)\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc


def _files(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


def _history(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


# --- fast, single process ----------------------------------------------------------------------------------------


def test_shard_bounds_cover_everything_in_order():
    for n in (0, 1, 5, 49, 60, 1000):
        for world in (1, 2, 3, 8):
            bounds = [distributed.shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_single_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.init_from_env("cpu")
    assert (info.rank, info.world, info.is_main, info.backend) == (0, 1, True, None)
    assert not torch.distributed.is_initialized()
    flags = np.array([True, False, True])
    assert distributed.gather_shards(flags, 3) is flags
    assert distributed.run_on_main(lambda: 7) == 7 and distributed.any_true(True, False) == (True, False)
    distributed.barrier()
    distributed.cleanup()


def test_tiny_nobn_has_no_batchnorm():
    model = create_model("tiny_nobn")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize(("norm", "eps"), [("linf", 8 / 255), ("l2", 0.5)])
def test_random_start_of_an_image_does_not_depend_on_its_batch(norm, eps):
    torch.manual_seed(0)
    model = create_model("tiny", jpeg=JpegConfig()).eval()
    images, labels = load_split("cifar100-mini", train=False)
    x, y = images[:6].float() / 255, labels[:6]
    seeds = [start_seed("cell", 0, i) for i in range(6)]
    # steps=1 with a zero step size: the random start itself
    whole = craft(
        model,
        x,
        y,
        "pgd",
        norm,
        eps,
        steps=1,
        step_size=1e-12,
        random_start=True,
        grad="soft",
        seed=1,
        start_seeds=seeds,
    )
    part = craft(
        model,
        x[2:5],
        y[2:5],
        "pgd",
        norm,
        eps,
        steps=1,
        step_size=1e-12,
        random_start=True,
        grad="soft",
        seed=2,
        start_seeds=seeds[2:5],
    )
    assert torch.equal(whole[2:5], part) and not torch.equal(whole, x)
    with PerSampleRandom(seeds[:2]), pytest.raises(RuntimeError, match="unseeded"):
        torch.rand(3)


# --- two processes -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_training_equals_single_process(tmp_path):
    ddp = _ok(torchrun([*TRAIN_ARGS, "--out", str(tmp_path / "ddp")], cwd=tmp_path))
    assert ddp.stdout.count("run folder:") == 1  # rank 0 reports, the other rank is silent
    assert cli_main([*TRAIN_ARGS, "--out", str(tmp_path / "single")]) == 0
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    assert _files(ddp_dir) == _files(single_dir)  # rank 0 alone wrote, and nothing else (no stray temp files)
    assert len((ddp_dir / "commands.txt").read_text().splitlines()) == 1
    for arm in ("baseline", "jpegdl"):
        a, b = load_checkpoint(ddp_dir / arm), load_checkpoint(single_dir / arm)
        assert set(a["model"]) == set(b["model"])  # plain state_dict keys: no DDP "module." prefix
        # equal up to fp32 rounding: the gradient sums are grouped differently, and a rounding-level change can
        # flip a ReLU or max-pool choice; observed differences ~2e-6 (weights ~0.1), while e.g. averaging per-rank
        # means instead of the global-batch mean moves the weights by ~3e-3. The JPEG tables step with Adam
        # (lr 3e-3), whose steps are normalised per entry, so entries with a near-zero gradient amplify rounding
        # (observed ~2e-5); tables that missed the averaging would differ by ~1e-3.
        for key in a["model"]:
            atol = 1e-4 if key.startswith("jpeg.") else 1e-5
            assert torch.allclose(a["model"][key], b["model"][key], rtol=1e-5, atol=atol), (arm, key)
        assert (a["epoch"], a["step"], a["finished"]) == (b["epoch"], b["step"], b["finished"]) == (1, 0, True)
        rows_a, rows_b = _history(ddp_dir / arm / "history.csv"), _history(single_dir / arm / "history.csv")
        assert len(rows_a) == len(rows_b) == 1
        for ra, rb in zip(rows_a, rows_b, strict=True):
            assert float(ra["loss"]) == pytest.approx(float(rb["loss"]), rel=1e-5)
            # accuracies count argmax hits; fp32 rounding may flip a near-tie, hardly ever more than one
            assert float(ra["train_acc"]) == pytest.approx(float(rb["train_acc"]), abs=1.01 / 250)
            assert float(ra["test_acc"]) == pytest.approx(float(rb["test_acc"]), abs=2.01 / 1000)
            assert ra["lr"] == rb["lr"] and ra["jpeg_lr"] == rb["jpeg_lr"]
        card = json.loads((ddp_dir / arm / "card.json").read_text())
        assert card["world_size"] == 2 and card["data"]["train_images"] == 250
        load_model(ddp_dir / arm)  # a DDP checkpoint loads single-process


def _overfit_tiny() -> dict[str, torch.Tensor]:
    """A ``tiny`` model over-fitted on the first 64 test images, so attacks have clean-correct images to flip."""
    images, labels = load_split("cifar100-mini", train=False)
    torch.manual_seed(0)
    model = create_model("tiny")
    x, y = images[:64].float() / 255, labels[:64]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval().state_dict()


def _write_run(run_dir: Path, state: dict[str, torch.Tensor]) -> None:
    for arm in ("baseline", "jpegdl"):
        write_arm(run_dir, arm, state=state)


@pytest.mark.slow
def test_sharded_attack_sweep_equals_single_process(tmp_path):
    _write_run(tmp_path / "single", _overfit_tiny())
    shutil.copytree(tmp_path / "single", tmp_path / "ddp")  # copy2: same bytes and mtimes (checkpoint fingerprints)
    ddp = _ok(torchrun([*ATTACK_ARGS, "--run-dir", str(tmp_path / "ddp")], cwd=tmp_path))
    assert ddp.stdout.count("checks:") == 1
    assert cli_main([*ATTACK_ARGS, "--run", str(tmp_path / "single")]) == 0
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    assert _files(ddp_dir) == _files(single_dir)
    a = pd.read_csv(ddp_dir / "results.csv").sort_values("cell_id").reset_index(drop=True)
    b = pd.read_csv(single_dir / "results.csv").sort_values("cell_id").reset_index(drop=True)
    assert len(a) == 8 and (a["attack"] == "pgd").sum() == 4  # clean cells on N and on the whole test set
    assert (a["robust_acc"] < a["clean_acc"]).any()  # the attacks did something to compare
    assert set(a["world_size"]) == {2} and set(b["world_size"]) == {1}
    varying = ["wall_s", "timestamp", "world_size"]
    pd.testing.assert_frame_equal(a.drop(columns=varying), b.drop(columns=varying))
    assert (ddp_dir / "samples.bin").read_bytes() == (single_dir / "samples.bin").read_bytes()
    assert (ddp_dir / "checks.json").read_text() == (single_dir / "checks.json").read_text()
    sa, sb = (json.loads((d / "sweep_state.json").read_text()) for d in (ddp_dir, single_dir))
    for entry in (*sa["specs"].values(), *sb["specs"].values()):
        entry.pop("created"), entry.pop("updated")
    assert sa == sb


def test_sweep_results_do_not_depend_on_the_batch_size(tmp_path):
    state = _overfit_tiny()
    samples = {}
    for batch_size in (16, 25):
        run_dir = tmp_path / f"bs{batch_size}"
        _write_run(run_dir, state)
        spec = AttackSpec(method="pgd", eps=(8 / 255,), steps=2, restarts=2, n_examples=40, batch_size=batch_size)
        table = run_sweep(run_dir, spec, progress=False)
        stored = RunStore(run_dir).samples()
        samples[batch_size] = {c: stored[c] for c in table["cell_id"]}
    assert samples[16].keys() == samples[25].keys()
    for cell_id, flags in samples[16].items():
        assert np.array_equal(flags, samples[25][cell_id]), cell_id
