"""scripts/cpu_study.sh, dry: the commands of the three-seed CPU study, in order, each bounded by the sitting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cpu_study.sh"


def _commands(*args: str, **env: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(SCRIPT), "/data/cifar100", *args],
        env={**os.environ, "DRY": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line[2:] for line in done.stderr.splitlines() if line.startswith("+ ")]


def test_the_study_trains_three_seeds_and_the_controls_with_the_cpu_recipe():
    trains = [c for c in _commands("train", SITTING="90") if " train " in c]
    assert len(trains) == 6
    assert all("--recipe cpu --model resnet20" in c and "--data-dir /data/cifar100" in c for c in trains)
    assert all("--time-limit 89" in c or "--time-limit 90" in c for c in trains)  # the sitting bounds each command
    arms = sorted((c.split("--seed ")[1].split()[0], c.split("--arms ")[1].split()[0]) for c in trains)
    assert arms == [
        ("0", "baseline,jpegdl"), ("0", "jpeg-frozen"), ("0", "jpeg-standard"),
        ("1", "baseline,jpegdl"), ("2", "baseline"), ("2", "jpegdl"),
    ]  # fmt: skip


def test_the_study_attacks_for_the_worst_case_first_then_the_paper_protocols_then_reports_all_three():
    commands = _commands("all")
    attacks = [c for c in commands if " attack " in c]
    assert len(attacks) == 21 and all("--nproc_per_node=2" in c and "--time-limit" in c for c in attacks)
    cells = [
        (
            c.split("--run-dir ")[1].split()[0][-1],
            c.split("--arms ")[1].split()[0],
            c.split("--spec ")[1].split()[0],
        )
        for c in attacks
    ]  # (seed, arms, spec)
    pair, controls = "baseline,jpegdl", "baseline,jpeg-frozen,jpeg-standard"
    paper = ["paper-fgsm", "paper-pgd", "paper-as-run"]
    assert cells == (
        [(s, pair, spec) for s in "012" for spec in ("adaptive", "autoattack")]  # the pair's worst case, every seed
        + [("0", controls, "adaptive"), ("0", "baseline,jpeg-frozen", "autoattack")]  # then the controls' (seed 0);
        + [("0", "jpeg-standard", "autoattack-bpda")]  # standard JPEG's white-box gradient is zero: BPDA only
        + [(s, pair, spec) for spec in paper for s in "012"]  # the paper's protocols, every seed
        + [("0", controls, spec) for spec in ("paper-fgsm", "paper-pgd", "paper-as-run")]
    )
    for spec in ("adaptive", "autoattack", "autoattack-bpda", "paper-as-run"):
        expected = {"adaptive": 4, "autoattack": 4, "autoattack-bpda": 1, "paper-as-run": 4}[spec]
        assert sum(f"--spec {spec} " in c and "--n-examples 1000" in c for c in attacks) == expected, spec
    assert (
        sum(f"--spec {s} " in c and "--n-examples" not in c for c in attacks for s in ("paper-fgsm", "paper-pgd")) == 8
    )
    (report,) = [c for c in commands if " report " in c]
    assert all(f"seed{s}" in report for s in (0, 1, 2)) and commands[-1] == report


def test_save_keeps_the_run_folders_on_a_branch_and_restore_brings_them_back(tmp_path):
    import shutil

    import pytest

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (repo / ".gitignore").write_text("/runs/\n")
    git("add", ".gitignore")
    git("commit", "-q", "-m", "start")
    arm = repo / "runs" / "study" / "seed0" / "baseline"
    arm.mkdir(parents=True)
    (arm / "checkpoint.pt").write_bytes(b"weights")
    (arm / ".train.lock").write_text("")

    def study(stage: str) -> None:
        env = {**os.environ, "RUNS": "runs/study", "BRANCH": "study/test"}
        done = subprocess.run(["bash", str(SCRIPT), "/data", stage], cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    study("save")
    assert git("ls-tree", "-r", "--name-only", "study/test").split() == [
        ".gitignore",
        "runs/study/seed0/baseline/checkpoint.pt",
    ]  # no lock files; the current branch, its index and working tree untouched:
    assert git("status", "--porcelain") == "" and git("rev-parse", "HEAD") != git("rev-parse", "study/test")
    (arm / "checkpoint.pt").write_bytes(b"more weights")
    study("save")  # a second save is a child of the first
    assert git("rev-list", "--count", "study/test").strip() == "3"
    shutil.rmtree(repo / "runs")
    study("restore")
    assert (arm / "checkpoint.pt").read_bytes() == b"more weights" and git("status", "--porcelain") == ""
