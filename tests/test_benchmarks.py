"""The benchmarks run end to end in CI-sized settings (a smoke test: nothing here is timed or compared).

Each writes its rows to ``$OUT/benchmarks.csv`` when ``OUT`` is set (the folder of outputs that evidence.sh returns)
and leaves benchmarks/results.csv alone with ``--no-save``; the tests check the rows' fields, never the numbers.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from benchmarks import (
    attack_cascade,
    attack_throughput,
    autoattack_profile,
    cpu_bf16,
    cpu_bf16_accuracy,
    jpeg_overhead,
    train_throughput,
)
from benchmarks.common import RESULTS

TRAIN = ["--device", "cpu", "--model", "tiny", "--steps", "2", "--warmup", "1", "--workers", "0", "--seeds", "1"]
OVERHEAD = ["--device", "cpu", "--model", "tiny", "--steps", "2", "--warmup", "1", "--eval-batch-size", "32"]
ATTACK = ["--device", "cpu", "--model", "tiny", "--n", "32", "--steps", "2", "--workers", "0", "--batch-size", "16"]


@pytest.mark.parametrize(
    "module, argv, rows",
    [
        (
            train_throughput,
            TRAIN,
            [
                {"arm": "baseline", "fields": ("plain_img_s", "ours_img_s", "speedup")},
                {"arm": "jpegdl", "fields": ("plain_img_s", "ours_img_s", "speedup")},
                {"arm": "baseline,jpegdl", "fields": ("models", "mode", "aggregate_img_s", "concurrency_speedup")},
            ],
        ),
        (jpeg_overhead, OVERHEAD, [{"fields": ("forward_ratio", "train_step_ratio", "layer_fwd_bwd_ms")}]),
        (
            attack_throughput,
            ATTACK,
            [
                {"arm": arm, "fields": ("plain_adv_s", "ours_adv_s", "ours_s", "path", "batch")}
                for arm in ("baseline", "jpegdl")
            ],
        ),
    ],
    ids=["train", "jpeg_overhead", "attack"],
)
def test_benchmark_runs_and_writes_its_rows_to_out(module, argv, rows, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    assert module.main([*argv, "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "x" in out and ("img/s" in out or "adv/s" in out or "ms" in out)
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == len(rows)
    for row, want in zip(written, rows, strict=True):
        assert row["benchmark"] == module.__name__.split(".")[-1] and row["device"].startswith("cpu")
        assert row["git_sha"] and row["torch"] and row["timestamp"]
        if "arm" in want:
            assert row["arm"] == want["arm"]
        for field in want["fields"]:
            assert row[field], field
    assert (RESULTS.read_bytes() if RESULTS.exists() else None) == before  # --no-save: the repo copy untouched


def test_cpu_bf16_benchmark_prints_the_three_settings_and_their_ratios_per_arm(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    argv = ["--model", "tiny", "--batch-size", "16", "--steps", "1", "--warmup", "1", "--rounds", "1", "--no-save"]
    assert cpu_bf16.main(argv) == 0
    out = capsys.readouterr().out
    assert "bf16 matrix units:" in out
    for arm in ("baseline", "jpegdl"):
        line = next(line for line in out.splitlines() if line.strip().startswith(arm))
        assert "fp32" in line and "bf16 " in line and "bf16_cl" in line and line.count(" x") == 3
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["arm"] for r in rows] == ["baseline", "jpegdl"]
    assert all(float(r["bf16_cl_ratio"]) > 0 and float(r["fp32_steps_s"]) > 0 for r in rows)


def test_bf16_accuracy_benchmark_compares_precision_with_the_seed_yardstick(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    argv = ["--model", "tiny", "--dataset", "cifar100-mini", "--recipe", "paper", "--epochs", "1"]
    assert cpu_bf16_accuracy.main([*argv, "--train-subset", "64", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "training: fp32" in out and out.count("exact McNemar p =") == 8  # 2 arms x (2 precision + 2 seed pairs)
    assert out.count("precision effect (fp32 - auto, averaged over the seeds)") == 2
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["differs_in"] for r in rows] == ["precision", "precision", "seed", "seed"] * 2
    assert all(0 <= float(r["precision_pooled_p"]) <= 1 for r in rows)
    for r in rows:  # the counts are the disagreements of two real per-image vectors
        assert 0 <= float(r["mcnemar_p"]) <= 1 and int(r["only_first"]) + int(r["only_second"]) <= int(r["n_test"])


def _overfitted_arm(run: Path) -> None:
    """A baseline arm of the tiny model fitted to the first 32 mini test images, so attacks have images to break."""
    import torch.nn.functional as F
    from run_helpers import write_arm

    from robustbench_jpeg.data import load_split
    from robustbench_jpeg.models import create_model

    images, labels = load_split("cifar100-mini", train=False)
    torch.manual_seed(0)
    model = create_model("tiny")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(images[:32].float() / 255), labels[:32]).backward()
        opt.step()
    write_arm(run, "baseline", model=model.eval())


def test_cascade_benchmark_runs_a_spec_plain_and_cascaded_on_copies_of_an_arm(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    run = tmp_path / "run"
    _overfitted_arm(run)
    before = sorted(p.name for p in run.rglob("*"))
    argv = ["--run", str(run), "--n", "32", "--spec", "standard-linf", "--steps-scale", "0.1", "--no-save"]
    assert attack_cascade.main(argv) == 0
    out = capsys.readouterr().out
    assert "all attacks    plain" in out and "worst case at 8/255" in out
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["plain_s"]) > 0 and float(row["cascade_s"]) > 0 and row["worst_plain"].count("=") == 6
    assert sorted(p.name for p in run.rglob("*")) == before  # the run folder itself is never attacked


def test_autoattack_profile_accounts_for_each_attack(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    _overfitted_arm(tmp_path / "run")
    argv = ["--run", str(tmp_path / "run"), "--n", "16", "--steps-scale", "0.02", "--no-save"]
    assert autoattack_profile.main([*argv, "--layouts", "nchw,channels_last"]) == 0
    out = capsys.readouterr().out
    assert out.count("forwards of") == 8 and out.count("nchw / channels_last: x") == 4
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["attack"] for r in rows] == [a for a in ("apgd-ce", "apgd-t", "fab-t", "square") for _ in range(2)]
    assert [r["layout"] for r in rows] == ["nchw", "channels_last"] * 4
    for r in rows:  # every attack called the model, and the shares are fractions of its wall time
        assert int(r["forwards"]) > 0 and 0 < float(r["forward_share"]) < 1 and 0 <= float(r["backward_share"]) < 1


def test_cascade_benchmark_says_when_nothing_was_attacked(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    from run_helpers import write_arm

    write_arm(tmp_path / "run", "baseline")  # untrained: (almost) nothing right among the first 4 images
    argv = ["--run", str(tmp_path / "run"), "--n", "4", "--spec", "quick", "--steps-scale", "0.1", "--no-save"]
    assert attack_cascade.main(argv) == 0
    assert "nothing was attacked" in capsys.readouterr().out


def test_train_benchmark_says_why_there_is_no_graph_row_on_cpu(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert train_throughput.main([*TRAIN, "--no-save", "--arms", "baseline", "--seeds", "0"]) == 0
    assert "CUDA graph rows not run: CUDA graphs need a CUDA device" in capsys.readouterr().out
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["graph_img_s"] == "" and row["ours_img_s"]


EVIDENCE = Path(__file__).resolve().parents[1] / "scripts" / "gpu" / "evidence.sh"


def _evidence(tmp_path, **env) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "out"
    full_env = {**os.environ, "DRY": "1", "OUT": str(out), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    done = subprocess.run(
        ["bash", str(EVIDENCE)], cwd=EVIDENCE.parents[2], env=full_env, capture_output=True, text=True, timeout=900
    )
    return done, json.loads((out / "results.json").read_text())


def test_evidence_script_skips_what_its_budget_cannot_hold(tmp_path):
    """With no time left every stage is skipped with a note, and the results and summary are still written."""
    done, results = _evidence(tmp_path, BUDGET="1")
    assert done.returncode == 0, done.stderr
    assert all("skipped" in line or "not selected" in line for line in results["stages"])
    assert any(line.startswith("S1_smoke skipped") for line in results["stages"])
    assert "SUMMARY" in (tmp_path / "out" / "summary.txt").read_text()


@pytest.mark.slow
def test_evidence_script_dry_run_end_to_end(tmp_path):
    """DRY=1 on the CPU: the stages run, CUDA-only checks say they were skipped, and $OUT holds at most 8 files, the
    CLI run folder among them. Left out to keep it short: the benchmark stages (the tests above run the same
    scripts) and compile (minutes on a CPU); `DRY=1 OUT=/tmp/o bash scripts/gpu/evidence.sh` runs them all."""
    stages = "S0_env S1_smoke S2_speed S4_cli S9_profile_graph"
    done, results = _evidence(tmp_path, ONLY=stages)
    assert done.returncode == 0, done.stderr
    status = {line.split()[0]: line for line in results["stages"]}
    for name in stages.split():
        assert status[name].startswith(f"{name} rc=0"), status[name]
    assert status["S8_compile"] == "S8_compile not selected" and status["S3_attack"] == "S3_attack not selected"
    assert "no CUDA device" in results["smoke"]["syncs_jpegdl_graph"]["skipped"]
    assert results["smoke"]["module_io_jpegdl"]["modules"]["jpeg"]["out"] == "torch.float32"
    assert results["speed"]["models_6_eager"] > 0 and results["env"]["env"]["torch"]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) <= 8 and {"log.txt", "results.json", "summary.txt", "profile.txt", "run.tgz"} <= set(files)
    with tarfile.open(tmp_path / "out" / "run.tgz") as tar:
        names = tar.getnames()
    assert "run-s0/jpegdl/card.json" in names and not any(n.endswith("checkpoint.pt") for n in names)
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "exit 75 (75 = paused)" in log
    # the profiler on graph replays runs last, after the JPEG-DL checks (S6, S7), so a hang there loses nothing
    assert results["stages"][-1].startswith("S9_profile_graph rc=0")
    assert "no CUDA device" in results["profile_graph"]["profile_jpegdl_graph"]["skipped"]
    assert "every file can come back" in log  # checked against the return limits (scripts/gpu/study_plan.py)
