"""The benchmarks run end to end in CI-sized settings (a smoke test: nothing here is timed or compared)."""

from __future__ import annotations

import pytest

from benchmarks import attack_throughput, jpeg_overhead, train_throughput


@pytest.mark.parametrize(
    "module, argv",
    [
        (train_throughput, ["--device", "cpu", "--model", "tiny", "--steps", "2", "--warmup", "1", "--workers", "0"]),
        (
            jpeg_overhead,
            ["--device", "cpu", "--model", "tiny", "--steps", "2", "--warmup", "1", "--eval-batch-size", "32"],
        ),
        (attack_throughput, ["--device", "cpu", "--model", "tiny", "--n", "32", "--steps", "2", "--workers", "0"]),
    ],
)
def test_benchmark_runs(module, argv, capsys):
    assert module.main([*argv, "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "x" in out and ("img/s" in out or "adv/s" in out or "ms" in out)
