"""The report's quantizer audit: hardness, near-zero slopes and zero gradients per frequency, from diagnostics.json."""

from __future__ import annotations

import json

import pytest
from run_helpers import write_arm

from robustbench_jpeg.attack import AttackSpec
from robustbench_jpeg.report import build_report
from robustbench_jpeg.sweep import run_sweep


@pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.SanityCheckWarning")
def test_the_report_puts_the_quantizer_in_numbers_and_a_heat_map(tmp_path):
    run = tmp_path / "run"
    for arm in ("baseline", "jpegdl"):
        write_arm(run, arm)
    run_sweep(run, AttackSpec(method="fgsm", eps=(2 / 255,), n_examples=8), progress=False)
    diagnostics = json.loads((run / "diagnostics.json").read_text())
    assert (
        set(diagnostics["jpegdl"]) >= {"hardness", "slopes", "gradients"} and "hardness" not in diagnostics["baseline"]
    )
    md = build_report([run], tmp_path / "report").read_text(encoding="utf-8")
    section = md.split("## The quantizer in numbers", 1)[1].split("\n## ", 1)[0]
    hard = diagnostics["jpegdl"]["hardness"]["luma"]
    n_hard = sum(v >= 20 for row in hard for v in row)
    assert "| JPEG-DL | Y | " in section and f"{n_hard} of 64" in section
    share = diagnostics["jpegdl"]["slopes"]["below_threshold"]["channel"]["Cb"]
    assert f"{100 * share:.1f}%" in section
    assert (tmp_path / "report" / "quantizer.png").stat().st_size > 10_000
