"""`jpeg-robust --help` / `--version` answer without importing torch (benchmarks/cli_startup.py times them)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from robustbench_jpeg.cli import SUBCOMMANDS, build_parser

_NO_TORCH = """
import contextlib, io, sys
from robustbench_jpeg.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit:
        pass
heavy = sorted(name for name in ("torch", "torchvision", "torchattacks", "matplotlib", "pandas") if name in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["report", "--help"], ["export", "--help"]])
def test_help_and_version_do_not_import_torch(argv):
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH.format(argv=argv)], capture_output=True, text=True, check=True
    )
    assert "torch" not in result.stdout.strip().split(","), result.stdout


def test_import_robustbench_jpeg_does_not_import_torch_until_a_model_is_asked_for():
    code = (
        "import sys, robustbench_jpeg as r; a = 'torch' in sys.modules; r.create_model; "
        "print(a, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {choice.dest: choice.help for choice in subparsers._choices_actions}


def test_top_level_summaries_are_the_ones_each_command_registers():
    full = _summaries(build_parser())  # every command module imported
    assert full == {command: summary for command, (_, summary) in SUBCOMMANDS.items()}
    assert _summaries(build_parser(["--help"])) == full


def test_the_chosen_command_is_built_in_full():
    parser = build_parser(["export", "x"])
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert subparsers.choices["export"]._actions[1:]  # its own options, not a one-line entry
    assert len(subparsers.choices["train"]._actions) == 1  # -h only


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_command_help_shows_plain_refilled_text(command, capsys):
    from robustbench_jpeg.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert "``" not in text, "reStructuredText markup in --help"
    assert len(description.split()) > 10 and all(len(line) <= 80 for line in description.splitlines())
    if command == "quickstart":  # its description is its module docstring, refilled
        assert description.startswith("Trains a small baseline") and "`" not in description
