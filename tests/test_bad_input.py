"""The lower items of the bad-input review: each gives one line naming the file or option and the fix, exit status
2, no traceback (or the right behaviour), and nothing is written where it should not be."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from test_cli_errors import TINY_TRAIN, attempt, fgsm_attack, one_line, trained  # noqa: F401  (trained: fixture)

from robustbench_jpeg.cli import EXIT_USAGE


def test_too_many_seeds_are_refused_before_anything_runs(tmp_path, capsys):
    seeds = ",".join(str(s) for s in range(5001))
    code, err = attempt([*TINY_TRAIN, "--seeds", seeds, "--out", str(tmp_path / "r")], capsys)
    assert code == EXIT_USAGE and "--seeds lists 5001 seeds; at most 64" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--eval-alpha", "1e300"], "eval_alpha must be at most 1e+06"),
        (["--eps", "-1"], "eps values must be >= 0, got -1/255"),
        (["--method", "apgd-t", "--param", "target_classes=100000"], "target_classes must be at most 99"),
        (["--method", "square", "--param", "p_init=5"], "p_init must be at most 1"),
    ],
)
def test_attack_options_out_of_range(trained, capsys, argv, message):  # noqa: F811
    before = (trained / "results.csv").read_bytes()
    base = fgsm_attack(trained)
    for i, arg in enumerate(argv[::2]):  # replace an option already in the base command, or add it
        if arg in base:
            base[base.index(arg) + 1] = argv[2 * i + 1]
        else:
            base += [arg, argv[2 * i + 1]]
    code, err = attempt(base, capsys)
    assert code == EXIT_USAGE and message in one_line(err)
    assert (trained / "results.csv").read_bytes() == before


def test_a_config_that_is_not_an_object_is_named(trained, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "config.json").write_text("[1, 2]\n", encoding="utf-8")
    code, err = attempt([*TINY_TRAIN, "--out", str(run), "--resume"], capsys)
    assert code == EXIT_USAGE and f"{run / 'config.json'} must hold a JSON object" in one_line(err)
    code, err = attempt(fgsm_attack(run), capsys)
    assert code == EXIT_USAGE and "config.json: must hold a JSON object" in one_line(err)


def test_a_half_cut_checkpoint_is_named_as_truncated(trained, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "jpegdl" / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code, err = attempt(fgsm_attack(run), capsys)
    line = one_line(err)
    assert code == EXIT_USAGE and f"checkpoint {path} is truncated or damaged" in line and "Errno" not in line


def test_a_results_table_without_n_correct_is_named(trained, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    table = pd.read_csv(run / "results.csv")
    table.drop(columns=["n_correct"]).to_csv(run / "results.csv", index=False)
    code, err = attempt(fgsm_attack(run), capsys)
    assert code == EXIT_USAGE and "results.csv lacks the column(s) n_correct" in one_line(err)
    code, err = attempt(["report", "--run", str(run), "--out", str(tmp_path / "rep")], capsys)
    assert code == EXIT_USAGE and "results.csv" in one_line(err) and "n_correct" in err


def test_a_spec_bomb_never_reaches_the_sweep_state(trained, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    lines = ["version: 1", 'a0: &a0 ["xxxxxxxxxx"]', *(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 25))]
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\nattacks:\n  - {method: fgsm, eps: [1]}\n", encoding="utf-8")
    state = (run / "sweep_state.json").read_bytes()
    argv = ["attack", "--run", str(run), "--spec", str(spec), "--device", "cpu", "--no-progress", "--n-examples", "4"]
    code, err = attempt(argv, capsys)
    assert code == EXIT_USAGE and "bomb.yaml: YAML aliases" in one_line(err)
    assert (run / "sweep_state.json").read_bytes() == state
    code, err = attempt(fgsm_attack(run), capsys)  # a later attack is not poisoned
    assert code in (0, 3), err
    assert json.loads((run / "sweep_state.json").read_text(encoding="utf-8"))


def test_results_record_the_specs_hash_and_path_and_a_shadowing_spec_its_own_name(trained, tmp_path, capsys):  # noqa: F811
    from robustbench_jpeg.attack.spec_files import load_spec
    from robustbench_jpeg.runfolder import read_results

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    mine = tmp_path / "quick.yaml"
    mine.write_text("version: 1\nattacks:\n  - {method: fgsm, eps: [3], n_examples: 4}\n", encoding="utf-8")
    argv = ["attack", "--run", str(run), "--spec", str(mine), "--device", "cpu", "--no-progress"]
    code, err = attempt(argv, capsys)
    assert code in (0, 3), err
    spec = load_spec(str(mine))
    rows = read_results(run)
    rows = rows[rows["spec"] == spec.name]
    assert spec.name.startswith("quick@") and not rows.empty
    assert set(rows["spec_hash"]) == {spec.hash} and set(rows["spec_path"]) == {str(mine)}
