"""examples/reproduce_figure.py: its own worst case agrees with the report's, and the script runs end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from run_helpers import write_arm

from robustbench_jpeg import JpegConfig, create_model

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "reproduce_figure.py"
QUICKSTART = REPO / "reports" / "quickstart" / "data"


def _example():
    spec = importlib.util.spec_from_file_location("reproduce_figure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_examples_worst_case_equals_the_reports():
    """The example's few lines of numpy against the report's cells (evaluation.worst_case), on the published data."""
    from robustbench_jpeg.report.cells import WORST, build_cells
    from robustbench_jpeg.report.load import load_runs

    mine = _example().worst_case(QUICKSTART)
    cells, _ = build_cells(load_runs([QUICKSTART]))
    theirs = cells[(cells["label"] == WORST) & (cells["norm"] == "linf")]
    assert len(mine) == len(theirs) > 4
    for row in theirs.itertuples():
        hit = mine[(mine["arm"] == row.arm) & (mine["eps_255"] == round(row.eps_key, 2))]
        assert len(hit) == 1 and hit["acc"].iloc[0] == pytest.approx(row.acc), (row.arm, row.eps_key)


def test_script_redraws_the_figure_and_attacks_a_model(tmp_path):
    run = tmp_path / "run"
    write_arm(run, "jpegdl", model=create_model("tiny", jpeg=JpegConfig()))
    figure = tmp_path / "figure.png"
    done = subprocess.run([sys.executable, str(SCRIPT), "--run", str(run), "--n", "4", "--steps", "2", "--out",
                           str(figure)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert figure.stat().st_size > 5000
    assert "jpegdl: clean" in done.stdout and "PGD-2 at 8/255" in done.stdout and "on 4 images" in done.stdout


def test_evaluate_any_model_example_writes_a_run_the_report_reads(tmp_path):
    from robustbench_jpeg.report import build_report

    script = REPO / "examples" / "evaluate_any_model.py"
    run = tmp_path / "any"
    done = subprocess.run([sys.executable, str(script), "--n", "16", "--steps", "5", "--out", str(run)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pgd none eps 8/255: robust" in done.stdout
    card = json.loads((run / "baseline" / "card.json").read_text())
    assert card["model"] == "custom:SmallCNN"
    build_report([run], tmp_path / "report")
    assert (tmp_path / "report" / "report.html").is_file()
