"""The benchmarks run end to end in CI-sized settings (a smoke test: nothing here is timed or compared).

Each writes its rows to ``$OUT/benchmarks.csv`` when ``OUT`` is set (the device machine's folder that comes back)
and leaves benchmarks/results.csv alone with ``--no-save``; the tests check the rows' fields, never the numbers.
"""

from __future__ import annotations

import csv

import pytest

from benchmarks import attack_throughput, jpeg_overhead, train_throughput
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


def test_train_benchmark_says_why_there_is_no_graph_row_on_cpu(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert train_throughput.main([*TRAIN, "--no-save", "--arms", "baseline", "--seeds", "0"]) == 0
    assert "CUDA graph rows not run: CUDA graphs need a CUDA device" in capsys.readouterr().out
    with (tmp_path / "benchmarks.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["graph_img_s"] == "" and row["ours_img_s"]
