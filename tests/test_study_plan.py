"""The study plan for a GPU reached through per-command limits (scripts/gpu/study_plan.py, docs/gpu.md): parts that
carry the data and checkpoints under the carry limit, and returned files under the return limits; a dry run on the
CPU through the sitting script."""

from __future__ import annotations

import importlib.util
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("study_plan", ROOT / "scripts" / "gpu" / "study_plan.py")
study_plan = importlib.util.module_from_spec(_spec)
sys.modules["study_plan"] = study_plan  # dataclasses look their module up by name
_spec.loader.exec_module(study_plan)
MiB = study_plan.MiB
LIMITS = study_plan.Limits()


def _files(folder: Path, sizes: dict[str, int]) -> list[Path]:
    """Sparse files of the given sizes (what the planner reads is the size)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        with open(folder / name, "wb") as handle:
            handle.truncate(size)
    return [folder / name for name in sizes]


# The packed CIFAR-100 (six 100x100-image WebP mosaics and the small frames) and six resnet56 checkpoints.
DATA = {f"train-{i}.webp": 17_250_000 for i in range(5)} | {"test-0.webp": 17_250_000, "train.frame.xz": 350_000}
CHECKPOINTS = {f"cifar100-resnet56-s{s}-{arm}.tgz": 7_100_000 for s in range(3) for arm in ("baseline", "jpegdl")}


def test_a_sitting_carries_data_and_checkpoints_in_parts_under_the_limit(tmp_path):
    files = _files(tmp_path / "d", DATA) + _files(tmp_path / "c", CHECKPOINTS)
    commands = study_plan.plan_sitting(files, study_plan.TREE_BUDGET_BYTES, LIMITS, "train {minutes}")
    assert study_plan.carry_problems(commands, study_plan.TREE_BUDGET_BYTES, LIMITS) == []
    assert sorted(f.name for c in commands for f in c.files) == sorted([*DATA, *CHECKPOINTS])  # everything, once
    for c in commands:
        assert c.carry_bytes + study_plan.TREE_BUDGET_BYTES <= LIMITS.carry_bytes
    assert commands[-1].shell.endswith(f"train {round(commands[-1].run_s / 60 - 0.5, 1)}")
    assert 0 < commands[-1].run_s <= LIMITS.command_s
    assert sum(c.device_s for c in commands) <= LIMITS.device_s


def test_the_old_plan_would_not_have_fitted(tmp_path):
    """A 28.3 MB tree with a 52 MB data part is over the carry limit, and the checker says so."""
    part = _files(tmp_path, {"part-a.bin": 52_000_000})
    command = study_plan.Command("part-a", tuple(part), 52_000_000, 30, 0, "cp")
    assert "part-a: tree" in study_plan.carry_problems([command], 28_300_000, LIMITS)[0]


def test_a_file_larger_than_a_part_is_named(tmp_path):
    files = _files(tmp_path, {"train.bin": 60 * MiB})
    with pytest.raises(SystemExit, match="train.bin.*larger than a part"):
        study_plan.split_into_parts(files, 40 * MiB)


def test_returned_files_are_checked_against_the_return_limits(tmp_path):
    out = tmp_path / "out"
    _files(out, {f"f{i}.txt": 10 for i in range(8)})
    assert study_plan.returned_problems(out, LIMITS) == []
    _files(out, {"big.tgz": 17 * MiB, "bad name.txt": 1})
    _files(out / "a" / "b" / "c", {"deep.txt": 1})
    problems = "\n".join(study_plan.returned_problems(out, LIMITS))
    assert "11 files > 8" in problems and "big.tgz: 17.0 MiB > 16 MiB" in problems
    assert "bad name.txt: too deep or a name" in problems and "deep.txt: too deep" in problems


@pytest.mark.slow
def test_dry_run_trains_packs_one_tarball_per_arm_and_plans_the_next_sitting(tmp_path, capsys):
    """The sitting script on the CPU (tiny model, a moment of training): six per-arm tarballs with the arm's
    checkpoint and the run's config, every returned file within the limits, and a plan that carries them."""
    data = tmp_path / "data"
    _files(data, DATA)
    work = tmp_path / "work"
    assert study_plan.main(["--data", str(data), "--dry-run", "--model", "tiny", "--work", str(work)]) == 0
    printed = capsys.readouterr().out
    assert "study_sitting.sh" in printed and "RBJ_GIT_SHA=" in printed
    assert printed.count("-baseline.tgz") == 3 and printed.count("-jpegdl.tgz") == 3  # planned into the parts
    assert study_plan.returned_problems(work / "out", LIMITS) == []
    for tgz in (work / "out").glob("*.tgz"):
        with tarfile.open(tgz) as tar:
            names = tar.getnames()
        run = tgz.name.rsplit("-", 1)[0]
        assert f"{run}/config.json" in names and f"{run}/{tgz.stem.rsplit('-', 1)[1]}/checkpoint.pt" in names, names
    assert "train exit status 75" in (work / "out" / "log.txt").read_text()
