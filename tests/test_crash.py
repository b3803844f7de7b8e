"""Crash harness: ``train``, ``attack``, ``report`` and ``export`` killed at random points (SIGKILL after a random
delay) or stopped by a full disk (ENOSPC after a random number of bytes), then run again to the end (``train`` with
``--resume``) and compared with an uninterrupted run: nothing lost, nothing duplicated, the same numbers.

The default suite tries a few points; ``-m slow`` runs the long part (docs/integrity.md has its figures).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from crash_harness import EXIT_KILLED, run_child

from robustbench_jpeg.checkpoint import load_checkpoint, load_model, weights_fingerprint
from robustbench_jpeg.outputs import OUTPUT_RECORD
from robustbench_jpeg.runfolder import read_results
from robustbench_jpeg.runfolder.store import RunStore

ARMS = ("baseline", "jpegdl")
TRAIN = ["train", "--model", "tiny", "--dataset", "cifar100-mini", "--epochs", "2", "--train-subset", "64",
         "--batch-size", "32", "--device", "cpu", "--no-progress", "--checkpoint-every", "0.02"]  # fmt: skip
ATTACK = ["attack", "--method", "pgd", "--eps", "1,4", "--steps", "2", "--grad", "soft,bpda", "--n-examples", "12",
          "--batch-size", "4", "--device", "cpu", "--no-progress"]  # fmt: skip
ATTACK_DONE = (0, 3)  # 3: finished, a sanity check failed (expected on a one-epoch tiny model)


def train(out: Path) -> list[str]:
    return [*TRAIN, "--out", str(out)]


def attack(run: Path) -> list[str]:
    return [ATTACK[0], "--run", str(run), *ATTACK[1:]]


def report(run: Path, out: Path) -> list[str]:
    return ["report", "--run", str(run), "--out", str(out), "--title", "crash"]


def export(run: Path, out: Path) -> list[str]:
    return ["export", str(run), "--format", "weights", "--out", str(out)]


@dataclass
class Reference:
    """Uninterrupted runs, their durations (only to draw kill times) and the bytes each wrote."""

    root: Path
    trained: Path  # a trained pair, never attacked
    attacked: Path
    report: Path
    export: Path
    seconds: dict[str, float]
    written: dict[str, int]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    root = tmp_path_factory.mktemp("crash")
    ref = Reference(root, root / "trained", root / "attacked", root / "report", root / "export", {}, {})
    for name, argv, folder in (
        ("train", train(ref.trained), ref.trained),
        ("attack", attack(ref.attacked), ref.attacked),
        ("report", report(ref.attacked, ref.report), ref.report),
        ("export", export(ref.attacked, ref.export), ref.export),
    ):
        if name == "attack":
            shutil.copytree(ref.trained, ref.attacked)
        start = time.monotonic()
        outcome = run_child(argv, folder)
        ref.seconds[name], ref.written[name] = time.monotonic() - start, outcome.written
        assert outcome.status in ATTACK_DONE if name == "attack" else outcome.status == 0, outcome.stderr
    return ref


OUTCOMES: Counter[str] = Counter()  # how the interrupted runs ended, per command (printed by the slow tests)


def interrupt(argv: list[str], folder: Path, ref: Reference, name: str, rng: random.Random, how: str):
    """Run ``argv`` once, killed or with a full disk at a random point; a full disk must end in one line."""
    if how == "kill":
        outcome = run_child(argv, folder, kill_after_s=rng.uniform(0, ref.seconds[name]))
        assert outcome.status in (EXIT_KILLED, *ATTACK_DONE), outcome.stderr
        OUTCOMES[f"{name}: {'killed' if outcome.status == EXIT_KILLED else 'finished before the kill'}"] += 1
    else:
        outcome = run_child(argv, folder, disk_bytes=rng.randrange(ref.written[name] + 1))
        errors = [line for line in outcome.stderr.splitlines() if line.startswith(f"jpeg-robust {argv[0]}: error")]
        assert "Traceback" not in outcome.stderr and "harness child" not in outcome.stderr, outcome.stderr
        assert outcome.status in (2, *ATTACK_DONE), outcome.stderr
        if outcome.status == 2:  # one error line (train's epoch lines may precede it), the last one
            assert len(errors) == 1 and outcome.stderr.strip().endswith(errors[0]), outcome.stderr
            assert "no space left" in errors[0].lower(), errors
        OUTCOMES[f"{name}: {'disk full' if outcome.status == 2 else 'finished within the free space'}"] += 1
    return outcome


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.suffix == ".tmp" or p.is_dir())


# --- the comparisons ----------------------------------------------------------------------------------------------


def same_training(ref: Path, run: Path) -> None:
    for arm in ARMS:
        a, b = load_checkpoint(ref / arm), load_checkpoint(run / arm)
        for key, value in a["model"].items():
            assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6), (arm, key)
        assert [r["test_acc"] for r in a["history"]] == [r["test_acc"] for r in b["history"]], arm
        card = json.loads((run / arm / "card.json").read_text(encoding="utf-8"))
        assert card["finished"] and card["fingerprint"] == weights_fingerprint(load_model(run / arm)), arm
        history = pd.read_csv(run / arm / "history.csv")
        assert list(history["epoch"]) == [1, 2], arm  # each epoch once
        assert not [p.name for p in (run / arm).glob(".*.tmp")], arm  # partial writes of a kill are cleaned up


def same_results(ref: Path, run: Path) -> None:
    a, b = read_results(ref).set_index("cell_id"), read_results(run).set_index("cell_id")
    assert sorted(a.index) == sorted(b.index)
    columns = ["n", "n_correct", "n_clean_correct", "robust_acc", "fingerprint"]
    pd.testing.assert_frame_equal(a.loc[sorted(a.index), columns], b.loc[sorted(a.index), columns])
    va, vb = RunStore(ref).samples(), RunStore(run).samples()
    assert sorted(va) == sorted(vb) and all(np.array_equal(va[c], vb[c]) for c in va)
    lines = [line.split(",") for line in (run / "results.csv").read_text(encoding="utf-8").splitlines()[1:]]
    cell = list(pd.read_csv(run / "results.csv", dtype=str).columns).index("cell_id")
    ids = [fields[cell] for fields in lines]
    assert len(ids) == len(set(ids)), "a cell appears twice in results.csv"


def _text(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("Generated ")]


def same_report(ref: Path, out: Path) -> None:
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {p.relative_to(ref).as_posix() for p in ref.rglob("*") if p.is_file()}
    for name in ("report.md", "table.md", "table.csv", "paired.csv", "table.tex", "data/results.csv"):
        assert _text(out / name) == _text(ref / name), name
    assert (out / "data" / "runs").is_dir() and not hidden_leftovers(out)
    assert json.loads((out / OUTPUT_RECORD).read_text(encoding="utf-8"))["complete"]


def _export_files(folder: Path) -> dict[str, object]:
    """File -> bytes; a safetensors file -> (metadata, tensors), as its header's key order is not fixed."""
    from safetensors import safe_open

    files: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix == ".safetensors":
            with safe_open(str(p), "pt") as handle:
                files[p.relative_to(folder).as_posix()] = (
                    handle.metadata(),
                    {k: handle.get_tensor(k).numpy().tobytes() for k in sorted(handle.keys())},
                )
        elif p.is_file():
            files[p.relative_to(folder).as_posix()] = p.read_bytes()
    return files


def same_export(ref: Path, out: Path) -> None:
    assert _export_files(out) == _export_files(ref)


# --- the points ---------------------------------------------------------------------------------------------------


def crash_train(ref: Reference, tmp: Path, rng: random.Random, how: str) -> None:
    run = tmp / f"train-{how}"
    interrupt(train(run), run, ref, "train", rng, how)
    again = run_child([*train(run), "--resume"], run)
    assert again.status == 0, again.stderr
    same_training(ref.trained, run)


def crash_attack(ref: Reference, tmp: Path, rng: random.Random, how: str) -> None:
    run = tmp / f"attack-{how}"
    shutil.copytree(ref.trained, run)
    interrupt(attack(run), run, ref, "attack", rng, how)
    again = run_child(attack(run), run)
    assert again.status in ATTACK_DONE, again.stderr
    same_results(ref.attacked, run)


def crash_report(ref: Reference, tmp: Path, rng: random.Random, how: str) -> None:
    out = tmp / f"report-{how}"
    interrupt(report(ref.attacked, out), out, ref, "report", rng, how)
    again = run_child(report(ref.attacked, out), out)
    assert again.status == 0, again.stderr
    same_report(ref.report, out)


def crash_export(ref: Reference, tmp: Path, rng: random.Random, how: str) -> None:
    out = tmp / f"export-{how}"
    interrupt(export(ref.attacked, out), out, ref, "export", rng, how)
    again = run_child(export(ref.attacked, out), out)
    assert again.status == 0, again.stderr
    same_export(ref.export, out)


CRASHES = {"train": crash_train, "attack": crash_attack, "report": crash_report, "export": crash_export}


@pytest.mark.parametrize(
    "command, how", [("train", "kill"), ("attack", "disk"), ("report", "kill"), ("export", "disk")]
)
def test_a_crash_loses_and_duplicates_nothing(reference, tmp_path, command, how):
    CRASHES[command](reference, tmp_path, random.Random(f"{command}-{how}"), how)


POINTS = int(os.environ.get("RBJ_CRASH_POINTS", "2"))  # kill points and full-disk points per command (slow part)


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(CRASHES))
def test_many_crash_points(reference, tmp_path, command):
    """``RBJ_CRASH_POINTS`` kill points and as many full-disk points per command (figures in docs/integrity.md)."""
    rng = random.Random(f"many-{command}")
    for i in range(POINTS):
        for how in ("kill", "disk"):
            CRASHES[command](reference, tmp_path / f"{i}", rng, how)


@pytest.mark.slow
def test_print_crash_points_tried():
    """After the long part (same module): how the interrupted runs ended, for docs/integrity.md (``pytest -s``)."""
    print(f"\ncrash points: {dict(sorted(OUTCOMES.items()))}")
