"""Without torchattacks (e.g. a GPU machine that lacks it), train, --help and --version work; attack says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The CLI with `import torchattacks` blocked (None in sys.modules makes the import raise ModuleNotFoundError).
NO_TORCHATTACKS = """
import sys
sys.modules["torchattacks"] = None
from robustbench_jpeg.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", NO_TORCHATTACKS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_engine_and_versions_without_torchattacks(monkeypatch):
    import torch

    from robustbench_jpeg.attack.crafting import attack_setting, run_attack
    from robustbench_jpeg.attack.methods import ENGINE_MISSING, engine
    from robustbench_jpeg.models import create_model
    from robustbench_jpeg.provenance import library_versions

    monkeypatch.setitem(sys.modules, "torchattacks", None)
    assert library_versions()["torchattacks"] == "not installed"
    with pytest.raises(ModuleNotFoundError, match="pip install") as info:
        engine()
    assert info.value.name == "torchattacks" and str(info.value) == ENGINE_MISSING
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    with pytest.raises(ModuleNotFoundError, match="attacks need torchattacks"):
        run_attack(create_model("tiny").eval(), x, y, attack_setting("pgd", "linf", 8 / 255, steps=2))


def test_train_works_and_attack_fails_clearly_without_torchattacks(tmp_path):
    help_ = _cli(["train", "--help"], tmp_path)
    assert help_.returncode == 0, help_.stderr
    assert "--train-subset" in help_.stdout

    run = tmp_path / "run"
    train = _cli(
        ["train", "--model", "tiny", "--dataset", "cifar100-mini", "--epochs", "1", "--train-subset", "128",
         "--device", "cpu", "--no-progress", "--out", str(run)],
        tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    for arm in ("baseline", "jpegdl"):
        assert (run / arm / "checkpoint.pt").is_file()
        card = json.loads((run / arm / "card.json").read_text())
        assert "not installed" in json.dumps(card)  # the card records that torchattacks was absent

    attack = _cli(["attack", "--run", str(run), "--spec", "paper-pgd", "--n-examples", "20", "--device", "cpu",
                   "--no-progress"], tmp_path)  # fmt: skip
    assert attack.returncode == 2
    assert "Traceback" not in attack.stderr
    lines = attack.stderr.strip().splitlines()
    assert len(lines) == 1, attack.stderr
    assert lines[0].startswith("jpeg-robust attack: error: attacks need torchattacks")
    assert 'pip install "torchattacks>=3.5,<3.6"' in lines[0]
    assert not (run / "results.csv").exists()  # refused before any cell was computed

    # attacked where torchattacks is installed (this process), the run's report is written where it is not
    from robustbench_jpeg.cli import main

    assert main(["attack", "--run", str(run), "--spec", "paper-fgsm", "--n-examples", "20", "--device", "cpu",
                 "--no-progress"]) == 0  # fmt: skip
    report = _cli(["report", "--run", str(run), "--out", str(tmp_path / "report")], tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "report.html").is_file()


def test_quickstart_stops_before_training_without_torchattacks(tmp_path):
    result = _cli(["quickstart", "--out", str(tmp_path / "qs"), "--device", "cpu", "--no-progress"], tmp_path)
    assert result.returncode == 2
    from robustbench_jpeg.attack.methods import ENGINE_MISSING

    assert result.stderr.strip().splitlines() == [f"jpeg-robust quickstart: error: {ENGINE_MISSING}"]
    assert not (tmp_path / "qs").exists()  # nothing trained


def test_version_flag(tmp_path):
    from robustbench_jpeg import __version__

    result = _cli(["--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"jpeg-robust {__version__}"
    assert __version__ == _pyproject_version()


def _pyproject_version() -> str:
    import re

    return re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
