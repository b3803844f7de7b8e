"""Bad input and faults at the command line: one line on stderr naming the file or option and the fix, a non-zero
exit status, no traceback, nothing lost. And help a user can work from."""

from __future__ import annotations

import argparse
import errno
import json
from pathlib import Path

import pytest

from robustbench_jpeg import provenance
from robustbench_jpeg.cli import EXIT_PAUSED, EXIT_USAGE, build_parser, main

TINY_TRAIN = [
    "train",
    "--model",
    "tiny",
    "--dataset",
    "cifar100-mini",
    "--epochs",
    "1",
    "--train-subset",
    "128",
    "--device",
    "cpu",
    "--no-progress",
]


def run_cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return code, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def fgsm_attack(run: Path, eps: str = "1", n_examples: str = "4") -> list[str]:
    """The CLI arguments of a small FGSM attack on CPU against ``run``."""
    return [
        "attack",
        "--run",
        str(run),
        "--method",
        "fgsm",
        "--eps",
        eps,
        "--n-examples",
        n_examples,
        "--device",
        "cpu",
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained and attacked pair (a report can be built from it)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main([*TINY_TRAIN, "--out", str(run)]) == 0
    assert main(fgsm_attack(run, eps="2", n_examples="8")) == 0
    return run


def attempt(argv, capsys) -> tuple[int, str]:
    """Run the CLI; argparse's own refusals (SystemExit) count like a returned status."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "gpu"], "device must be auto, cpu, cuda or cuda:N"),
        (["--device", "tpu"], "device must be auto, cpu, cuda or cuda:N"),
        (["--lr", "nan"], "expected a finite number|lr must be"),
        (["--chroma-offset", "inf"], "expected a finite number"),
        (["--time-limit", "-5"], "expected a positive number"),
        (["--checkpoint-every", "-1"], "expected a number >= 0"),
    ],
)
def test_bad_training_options(tmp_path, capsys, argv, message):
    import re

    code, err = attempt([*TINY_TRAIN, "--out", str(tmp_path / "r"), *argv], capsys)
    assert code == EXIT_USAGE and re.search(message, err), err
    assert not (tmp_path / "r" / "baseline" / "checkpoint.pt").exists()


def test_out_pointing_at_a_file(tmp_path, capsys, trained):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, err = run_cli([*TINY_TRAIN, "--out", str(afile)], capsys)
    assert code == EXIT_USAGE and "is a file, not a folder" in one_line(err)
    code, err = run_cli(["attack", "--run", str(afile), "--spec", "quick", "--device", "cpu"], capsys)
    assert code == EXIT_USAGE and "is a file, not a run folder" in one_line(err)
    code, err = run_cli(["report", "--run", str(trained), "--out", str(afile)], capsys)
    assert code == EXIT_USAGE and str(afile) in one_line(err)
    assert afile.read_text() == "x"


def test_a_card_with_a_wrong_field_type_names_file_and_field(tmp_path, capsys, trained):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    card = json.loads((run / "jpegdl" / "card.json").read_text())
    card["num_classes"] = "abc"
    (run / "jpegdl" / "card.json").write_text(json.dumps(card))
    code, err = run_cli(
        fgsm_attack(run),
        capsys,
    )
    line = one_line(err)
    assert code == EXIT_USAGE and "jpegdl/card.json" in line and "num_classes" in line and "'abc'" in line


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("results.csv", b"\x00\xff garbage,,\n1,2\n3\n", "results.csv"),
        ("sweep_state.json", b"{not json", "sweep_state.json is not valid JSON"),
        ("config.json", b"{not json", "config.json is not valid JSON"),
    ],
)
def test_damaged_run_files_are_named(tmp_path, capsys, trained, name, content, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / name).write_bytes(content)
    code, err = run_cli(
        fgsm_attack(run),
        capsys,
    )
    assert code == EXIT_USAGE and message in one_line(err)


def test_spec_files_that_are_not_utf8_or_have_a_bad_field(tmp_path, capsys, trained):
    bad = tmp_path / "latin.yaml"
    bad.write_bytes("version: 1\ndescription: caf\xe9\nattacks:\n  - {method: pgd, eps: [2]}\n".encode("latin-1"))
    code, err = run_cli(["attack", "--run", str(trained), "--spec", str(bad), "--device", "cpu"], capsys)
    assert code == EXIT_USAGE and "not UTF-8" in one_line(err) and "latin.yaml" in err
    grad = tmp_path / "grad.yaml"
    grad.write_text("version: 1\nattacks:\n  - {method: pgd, eps: [2], grad: 5}\n")
    code, err = run_cli(["attack", "--run", str(trained), "--spec", str(grad), "--device", "cpu"], capsys)
    assert code == EXIT_USAGE and "grad must name" in one_line(err) and "grad.yaml" in err


def test_read_only_output_and_full_disk_are_clear_messages(tmp_path, capsys, monkeypatch, trained):
    def read_only(path, data):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(provenance, "atomic_write_bytes", read_only)
    code, err = run_cli(["report", "--run", str(trained), "--out", str(tmp_path / "rep")], capsys)
    assert code == EXIT_USAGE and "cannot write" in one_line(err) and "writable" in err
    monkeypatch.undo()

    import torch

    def full(*args, **kwargs):  # what torch's writer raises when the disk fills up mid-checkpoint
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 438784 vs 438672")

    monkeypatch.setattr(torch, "save", full)
    code, err = run_cli([*TINY_TRAIN, "--out", str(tmp_path / "full")], capsys)
    assert code == EXIT_USAGE and "no space left" in one_line(err) and "again with --resume" in err


def test_a_corrupted_embedded_data_file_is_named(tmp_path, capsys, monkeypatch):
    import shutil

    from robustbench_jpeg.data import cifar

    copy = tmp_path / "mini"
    shutil.copytree(cifar.MINI_DIR, copy)
    data = bytearray((copy / "test.webp").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "test.webp").write_bytes(bytes(data))
    monkeypatch.setattr(cifar, "MINI_DIR", copy)
    cifar._load_mini_cached.cache_clear() if hasattr(cifar._load_mini_cached, "cache_clear") else None
    code, err = run_cli([*TINY_TRAIN, "--out", str(tmp_path / "r")], capsys)
    assert code == EXIT_USAGE and "test" in one_line(err)


def test_time_limit_pause_has_its_own_exit_status(tmp_path, capsys):
    argv = [*TINY_TRAIN, "--epochs", "3", "--out", str(tmp_path / "r")]  # the later --epochs wins
    assert main([*argv, "--time-limit", "0.00001"]) == EXIT_PAUSED
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0


def test_fail_on_check_exits_non_zero(tmp_path, capsys, trained):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    argv = [
        "attack",
        "--run",
        str(run),
        "--method",
        "pgd",
        "--eps",
        "8",
        "--steps",
        "2",
        "--grad",
        "soft,bpda",
        "--n-examples",
        "16",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 0  # the checks fail (zero gradients at the quantizer's input), but that is information
    assert "FAIL" in capsys.readouterr().out
    assert main([*argv, "--fail-on-check"]) == 3


def test_every_subcommand_and_flag_has_help_and_examples():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) >= {"train", "attack", "report", "export", "quickstart"}
    for name, sub in subparsers.choices.items():
        assert sub.description, f"{name} has no description"
        assert "examples:" in (sub.epilog or ""), f"{name} has no examples"
        examples = [line for line in sub.epilog.splitlines() if line.strip().startswith("jpeg-robust")]
        assert len(examples) >= 2, f"{name} shows fewer than two examples"
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"


def test_no_terminal_means_one_line_per_epoch(tmp_path, capsys):
    argv = [a for a in TINY_TRAIN if a != "--no-progress"]
    assert main([*argv, "--epochs", "2", "--out", str(tmp_path / "r")]) == 0  # progress on, but no terminal
    err = capsys.readouterr().err
    assert err.count("tiny epoch") == 4  # two arms x two epochs, one line each


def test_outputs_follow_the_umask(tmp_path, trained):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        provenance.atomic_write_text(tmp_path / "f.txt", "x")
        assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
        assert main(["report", "--run", str(trained), "--out", str(tmp_path / "rep")]) == 0
        assert stat.S_IMODE((tmp_path / "rep" / "data").stat().st_mode) == 0o755
        assert stat.S_IMODE((tmp_path / "rep" / "report.md").stat().st_mode) == 0o644
        assert stat.S_IMODE((trained / "jpegdl" / "checkpoint.pt").stat().st_mode) == 0o644
    finally:
        os.umask(previous)


def test_report_refuses_run_names_that_escape_the_output_folder(tmp_path, capsys, trained):
    import shutil

    assert main(["report", "--run", str(trained), "--out", str(tmp_path / "rep")]) == 0
    data = tmp_path / "rep" / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["runs"] = ["../../../../escaped"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    code, err = run_cli(["report", "--run", str(data), "--out", str(tmp_path / "again")], capsys)
    assert code == EXIT_USAGE and "not a safe file name" in one_line(err)
    assert not list(Path(tmp_path).parent.glob("escaped*"))
    shutil.rmtree(tmp_path / "rep")
