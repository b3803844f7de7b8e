"""Outputs never overwrite what they did not create: ``export`` and ``report`` write only into a new or empty folder,
or one holding only their own earlier output (recorded in ``jpeg-robust-output.json``); ``--force`` is explicit and
never opens a run folder. And an export of a run with an unfinished arm says so instead of exporting the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_helpers import write_arm

from robustbench_jpeg.cli import main
from robustbench_jpeg.export import ExportError, export_run
from robustbench_jpeg.outputs import OUTPUT_RECORD, OutputFolderError, claim_output, finish_output, release_output


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    """A hand-made trained pair (cards and checkpoints of a tiny model, config.json naming both arms)."""
    run = tmp_path_factory.mktemp("outputs") / "B"
    write_arm(run, "baseline")
    write_arm(run, "jpegdl")
    (run / "config.json").write_text(json.dumps({"arms": ["baseline", "jpegdl"]}), encoding="utf-8")
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_export_never_overwrites_another_runs_cards(pair, tmp_path, capsys):
    other = tmp_path / "V"
    write_arm(other, "baseline", seed=7)
    write_arm(other, "jpegdl", seed=7)
    before = snapshot(other)
    for force in ([], ["--force"]):
        assert main(["export", str(pair), "--format", "weights", "--out", str(other), *force]) == 2
        assert "holds a run (baseline/card.json)" in one_error(capsys)
    assert snapshot(other) == before


def test_an_export_never_replaces_a_projects_readme(pair, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# my project\n", encoding="utf-8")
    monkeypatch.chdir(project)
    assert main(["export", str(pair), "--format", "tables", "--out", "."]) == 2
    line = one_error(capsys)
    assert "holds files that jpeg-robust export did not write (README.md)" in line and "--force" in line
    assert sorted(p.name for p in project.iterdir()) == ["README.md"]
    assert (project / "README.md").read_text(encoding="utf-8") == "# my project\n"


def test_an_export_rewrites_its_own_output_and_force_keeps_the_record_honest(pair, tmp_path):
    out = tmp_path / "w"
    written, _ = export_run(pair, "weights", out)
    record = json.loads((out / OUTPUT_RECORD).read_text(encoding="utf-8"))
    assert record["complete"] and sorted(record["files"]) == sorted(p.relative_to(out).as_posix() for p in written)
    export_run(pair, "tables", out)  # an earlier export of its own: fine, any format
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ExportError, match=r"did not write \(notes.txt\)"):
        export_run(pair, "weights", out)
    export_run(pair, "weights", out, force=True)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    with pytest.raises(ExportError, match=r"did not write \(notes.txt\)"):  # still not the export's own
        export_run(pair, "weights", out)


def test_a_report_folder_and_an_export_folder_are_foreign_to_each_other(tmp_path):
    report = tmp_path / "r"
    claim = claim_output(report, "report")
    (report / "report.md").write_text("# r\n", encoding="utf-8")
    finish_output(claim)
    with pytest.raises(OutputFolderError, match=r"jpeg-robust export did not write \(report.md\)"):
        claim_output(report, "export")
    claim_output(report, "report")  # its own


def test_a_write_that_stopped_half_way_is_taken_over_by_the_next(tmp_path):
    fresh = tmp_path / "fresh"
    claim_output(fresh, "export")
    (fresh / "half.json").write_text("{", encoding="utf-8")  # then killed: no finish_output
    assert claim_output(fresh, "export").ours == ("half.json",)  # what the stopped write left is its own

    out = tmp_path / "o"
    out.mkdir()
    (out / "theirs.txt").write_text("x", encoding="utf-8")
    claim_output(out, "export", force=True)
    (out / "half.json").write_text("{", encoding="utf-8")  # killed again
    with pytest.raises(OutputFolderError, match=r"did not write \(theirs.txt\)"):  # a foreign file stays foreign
        claim_output(out, "export")
    claim = claim_output(out, "export", force=True)
    assert (claim.ours, claim.foreign) == (("half.json",), ("theirs.txt",))
    finish_output(claim)
    assert json.loads((out / OUTPUT_RECORD).read_text(encoding="utf-8"))["files"] == ["half.json"]


def test_a_failed_write_into_a_new_folder_leaves_nothing(tmp_path):
    out = tmp_path / "new"
    release_output(claim_output(out, "report"))
    assert not out.exists()
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        claim_output(Path(__file__), "report")


def test_a_report_refuses_a_run_folder_and_foreign_files_as_its_output(tmp_path, capsys):
    from test_report import cell, write_run

    run = write_run(tmp_path / "run", [cell("baseline", "clean", 0, [True, False]), cell("jpegdl", "clean", 0, [True])])
    other = write_run(tmp_path / "V", [cell("baseline", "clean", 0, [True, True])])
    before = snapshot(other)
    assert main(["report", "--run", str(run), "--out", str(other), "--force"]) == 2
    assert "holds a run (results.csv); report never writes into a run folder" in one_error(capsys)
    assert snapshot(other) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "table.csv").write_text("precious\n", encoding="utf-8")
    assert main(["report", "--run", str(run), "--out", str(tmp_path / "mine")]) == 2
    assert "did not write (table.csv)" in one_error(capsys)
    assert (tmp_path / "mine" / "table.csv").read_text(encoding="utf-8") == "precious\n"


def test_an_export_with_an_unfinished_arm_names_the_missing_card(pair, tmp_path, capsys):
    run = tmp_path / "B2"
    write_arm(run, "baseline")
    write_arm(run, "jpegdl")
    (run / "config.json").write_text(json.dumps({"arms": ["baseline", "jpegdl"]}), encoding="utf-8")
    (run / "jpegdl" / "card.json").unlink()
    assert main(["export", str(run), "--format", "weights", "--out", str(tmp_path / "w")]) == 2
    line = one_error(capsys)
    assert "jpegdl/card.json missing" in line and "train --resume" in line and "--arms baseline" in line
    assert not (tmp_path / "w").exists()
    assert main(["export", str(run), "--format", "weights", "--arms", "baseline", "--out", str(tmp_path / "w")]) == 0
    assert (tmp_path / "w" / "baseline" / "model.safetensors").is_file() and not (tmp_path / "w" / "jpegdl").exists()


def test_a_write_killed_while_writing_its_first_record_is_taken_over(tmp_path):
    """The defect (found by the crash harness): killed inside the atomic write of the first output record, a write
    left only the record's temporary file, which the next write refused as foreign."""
    out = tmp_path / "out"
    out.mkdir()
    (out / f".{OUTPUT_RECORD}.k2x9.tmp").write_text("{")
    claim = claim_output(out, "export")
    assert claim.foreign == () and not (out / f".{OUTPUT_RECORD}.k2x9.tmp").exists()
    finish_output(claim)
    (out / "nested").mkdir()
    (out / "nested" / f".{OUTPUT_RECORD}.k2x9.tmp").write_text("{")  # not the record's: still foreign
    with pytest.raises(OutputFolderError, match="did not write"):
        claim_output(out, "export")
