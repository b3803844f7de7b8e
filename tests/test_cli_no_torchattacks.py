"""The attack engines are imported only to attack: without torchattacks (an optional extra) every default attack runs
and ``--engine torchattacks`` says how to install it; without pyautoattack, train, report, --help and --version work
and attack says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The CLI with the named modules' import blocked (None in sys.modules makes the import raise ModuleNotFoundError).
BLOCKED_CLI = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from robustbench_jpeg.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cli(blocked: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, blocked, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_default_engine_needs_no_torchattacks(monkeypatch):
    import torch

    from robustbench_jpeg.attack.crafting import attack_setting, run_attack
    from robustbench_jpeg.attack.methods import ENGINE_MISSING, EngineMissingError, engine, use_engine
    from robustbench_jpeg.models import create_model
    from robustbench_jpeg.provenance import library_versions

    monkeypatch.setitem(sys.modules, "torchattacks", None)
    assert library_versions()["torchattacks"] == "not installed"
    model, x, y = create_model("tiny").eval(), torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    for method in ("fgsm", "pgd", "apgd-ce"):
        run_attack(model, x, y, attack_setting(method, "linf", 8 / 255, steps=2))
    with pytest.raises(EngineMissingError) as info:
        engine("torchattacks")
    assert info.value.name == "torchattacks" and str(info.value) == ENGINE_MISSING["torchattacks"]
    with use_engine("torchattacks"), pytest.raises(EngineMissingError, match=r"robustbench-jpeg\[torchattacks\]"):
        run_attack(model, x, y, attack_setting("pgd", "linf", 8 / 255, steps=2))


def test_train_works_and_attack_fails_clearly_without_an_engine(tmp_path):
    help_ = _cli("pyautoattack", ["train", "--help"], tmp_path)
    assert help_.returncode == 0, help_.stderr
    assert "--train-subset" in help_.stdout

    run = tmp_path / "run"
    train = _cli(
        "pyautoattack",
        ["train", "--model", "tiny", "--dataset", "cifar100-mini", "--epochs", "1", "--train-subset", "128",
         "--device", "cpu", "--no-progress", "--out", str(run)],
        tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    for arm in ("baseline", "jpegdl"):
        assert (run / arm / "checkpoint.pt").is_file()
        assert json.loads((run / arm / "card.json").read_text())["arm"] == arm

    for blocked, engine_args, expected in (
        ("pyautoattack", [], "attacks need pyautoattack"),
        ("torchattacks", ["--engine", "torchattacks"], "the torchattacks engine is an optional extra"),
    ):
        attack = _cli(
            blocked,
            ["attack", "--run", str(run), "--spec", "paper-pgd", "--n-examples", "20", "--device", "cpu",
             "--no-progress", *engine_args],
            tmp_path,
        )  # fmt: skip
        assert attack.returncode == 2
        assert "Traceback" not in attack.stderr
        lines = attack.stderr.strip().splitlines()
        assert len(lines) == 1, attack.stderr
        assert lines[0].startswith(f"jpeg-robust attack: error: {expected}")
        assert "pip install" in lines[0]
        assert not (run / "results.csv").exists()  # refused before any cell was computed

    # attacked where the engine is installed (this process), the run's report is written where it is not
    from robustbench_jpeg.cli import main

    assert main(["attack", "--run", str(run), "--spec", "paper-fgsm", "--n-examples", "20", "--device", "cpu",
                 "--no-progress"]) == 0  # fmt: skip
    report = _cli(
        "pyautoattack,torchattacks", ["report", "--run", str(run), "--out", str(tmp_path / "report")], tmp_path
    )
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "report.html").is_file()


def test_quickstart_stops_before_training_without_an_engine(tmp_path):
    result = _cli(
        "pyautoattack", ["quickstart", "--out", str(tmp_path / "qs"), "--device", "cpu", "--no-progress"], tmp_path
    )
    assert result.returncode == 2
    from robustbench_jpeg.attack.methods import ENGINE_MISSING

    assert result.stderr.strip().splitlines() == [f"jpeg-robust quickstart: error: {ENGINE_MISSING['autoattack']}"]
    assert not (tmp_path / "qs").exists()  # nothing trained


def test_version_flag(tmp_path):
    from robustbench_jpeg import __version__

    result = _cli("pyautoattack", ["--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"jpeg-robust {__version__}"
    assert __version__ == _pyproject_version()


def _pyproject_version() -> str:
    import re

    return re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
