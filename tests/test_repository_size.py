"""The tracked tree stays under its budget (docs/gpu.md): it travels with every command sent to a remote GPU, beside
the data and checkpoints, under a 64 MiB limit. Committed reports show their figure files instead of embedding them,
and exported weights are regenerated with ``jpeg-robust export`` rather than committed (reports/README.md)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _budget() -> int:
    spec = importlib.util.spec_from_file_location("study_plan", ROOT / "scripts" / "gpu" / "study_plan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_plan"] = module
    spec.loader.exec_module(module)
    return module.TREE_BUDGET_BYTES


def _tracked() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in listed.decode().split("\0") if p and (ROOT / p).is_file()]


def test_the_tracked_tree_is_under_its_budget():
    files = _tracked()
    total = sum(p.stat().st_size for p in files)
    largest = sorted(files, key=lambda p: -p.stat().st_size)[:5]
    listing = ", ".join(f"{p.relative_to(ROOT)} ({p.stat().st_size / 1e6:.1f} MB)" for p in largest)
    assert total <= _budget(), f"tracked tree {total / 1e6:.1f} MB > {_budget() / 1e6:.0f} MB; largest: {listing}"


def test_no_committed_report_embeds_its_figures_or_holds_weights():
    files = [p for p in _tracked() if p.relative_to(ROOT).parts[0] == "reports"]
    assert not [p for p in files if p.suffix == ".safetensors"], "exported weights are regenerated, not committed"
    embedded = [p for p in files if p.name == "report.html" and "base64," in p.read_text(encoding="utf-8")]
    assert not embedded, f"{embedded}: regenerate with jpeg-robust report (figures are files next to the HTML)"
