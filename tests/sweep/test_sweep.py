"""The sweep: files as documented, robust <= clean, eps 0 == clean, resumability, spec changes, bad input, CLI."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustbench_jpeg.attack.spec import AttackSpec, AttackSpecError, SpecFile
from robustbench_jpeg.checkpoint import CheckpointError
from robustbench_jpeg.runfolder import RESULT_COLUMNS, ROW_FORMAT
from robustbench_jpeg.runfolder.store import RunStore, StoreWarning, SweepLockedError, read_results
from robustbench_jpeg.sweep import SpecChangedError, run_sweep
from robustbench_jpeg.sweep import compute as compute_mod
from robustbench_jpeg.sweep.plan import ArmInfo, plan_cells

N = 32
pytestmark = pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.SanityCheckWarning")


def small_spec(name: str = "small", steps: int = 2) -> SpecFile:
    common = {"n_examples": N, "batch_size": 12}  # 3 batches, the last one short
    return SpecFile(
        name=name,
        version=1,
        description="test",
        attacks=(
            AttackSpec(method="fgsm", eps=(0.0, 2 / 255, 8 / 255), **common),
            AttackSpec(method="pgd", eps=(2 / 255, 8 / 255), steps=steps, grad=("soft", "bpda"), **common),
            AttackSpec(method="pgd", eps=(8 / 255,), steps=steps, transfer_from="baseline", **common),
        ),
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_state, arm_writer):
    """One uninterrupted sweep of ``small_spec`` on a baseline + JPEG-DL pair (shared, treat as read-only)."""
    run_dir = tmp_path_factory.mktemp("swept") / "run"
    for arm in ("baseline", "jpegdl"):
        arm_writer(run_dir, arm, state=tiny_state)
    table = run_sweep(run_dir, small_spec(), progress=False)
    return run_dir, table


def _snapshot(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def samples_of(run_dir: Path) -> dict[str, np.ndarray]:
    return RunStore(run_dir).samples()


def test_files_follow_the_run_format(swept):
    run_dir, table = swept
    assert (run_dir / "results.csv").read_text().split("\n", 1)[0].split(",") == RESULT_COLUMNS
    results = read_results(run_dir)
    # clean x2 (first N) + x2 (whole test set), fgsm x3 x2 arms, pgd + bpda + baseline pgd at 2 eps, transfer
    assert len(results) == len(table) == 2 + 2 + 2 * 3 + 3 * 2 + 1
    assert results["cell_id"].is_unique and (results["row_format"] == ROW_FORMAT).all()
    samples = samples_of(run_dir)
    for _, r in results.iterrows():
        arr = samples[r["cell_id"]]
        assert arr.dtype == bool and arr.shape == (r["n"],) and int(arr.sum()) == r["n_correct"]
        assert r["robust_acc"] == pytest.approx(arr.mean())
        assert r["eps_255"] == pytest.approx(r["eps"] * 255)
        assert r["fingerprint"] and len(r["fingerprint"]) == 16
    assert set(results.groupby("arm")["fingerprint"].nunique()) == {1}
    state = json.loads((run_dir / "sweep_state.json").read_text())
    entry = state["specs"]["small"]
    assert entry["hash"] == small_spec().hash and set(entry["cells"]) == set(results["cell_id"]) and entry["finished"]
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    assert set(diagnostics) == {"baseline", "jpegdl"}
    assert "coefficients" in diagnostics["jpegdl"]["gradients"] and "hardness" in diagnostics["jpegdl"]
    checks = json.loads((run_dir / "checks.json").read_text())
    assert checks["verdict"] and checks["checks"] and checks["status"] in ("OK", "WARN", "FAIL")
    assert set(checks["masking"]) == {"jpegdl"}
    assert all(
        set(c) == {"name", "arm", "status", "detail", "meaning", "evidence", "compared"} for c in checks["checks"]
    )
    assert {c["name"] for c in checks["checks"]} >= {"monotone_in_eps", "zero_input_gradients", "square_not_stronger"}
    assert table.attrs["verdict"] == checks["verdict"]


def test_cells_per_arm(swept):
    _, table = swept
    base, jpeg = table[table["arm"] == "baseline"], table[table["arm"] == "jpegdl"]
    assert set(base["grad"]) == {"none"} and set(base["source_arm"]) == {"baseline"}
    assert set(jpeg.loc[jpeg["source_arm"] == "jpegdl", "grad"]) == {"none", "soft", "bpda"}  # none: the clean cell
    transfer = jpeg[jpeg["source_arm"] == "baseline"]
    assert len(transfer) == 1 and transfer.iloc[0]["grad"] == "none"
    assert (table.loc[table["attack"] == "clean", "eps"] == 0).all()
    assert table.loc[table["n"] == N, "clean_acc"].iloc[0] > 0.5  # the over-fitted tiny model: something to break


def test_robust_never_exceeds_clean_even_per_sample(swept):
    run_dir, table = swept
    samples = samples_of(run_dir)
    for arm in ("baseline", "jpegdl"):
        clean_id = table[(table["arm"] == arm) & (table["attack"] == "clean") & (table["n"] == N)]["cell_id"].iloc[0]
        clean = samples[clean_id]
        for _, r in table[(table["arm"] == arm) & (table["n"] == N)].iterrows():
            robust = samples[r["cell_id"]]
            assert not (robust & ~clean).any()
            assert r["robust_acc"] <= r["clean_acc"]
            assert r["clean_acc"] == pytest.approx(clean.mean())


def test_eps_zero_reproduces_clean_accuracy_exactly(swept):
    run_dir, table = swept
    zero = table[(table["attack"] == "fgsm") & (table["eps"] == 0)]
    assert len(zero) == 2
    for _, r in zero.iterrows():
        assert r["robust_acc"] == r["clean_acc"]
        clean_id = table[(table["arm"] == r["arm"]) & (table["attack"] == "clean") & (table["n"] == N)]["cell_id"]
        samples = samples_of(run_dir)
        assert np.array_equal(samples[r["cell_id"]], samples[clean_id.iloc[0]])


def test_attacks_hurt_and_larger_eps_hurts_more(swept):
    _, table = swept
    fgsm = table[(table["attack"] == "fgsm") & (table["arm"] == "baseline")].sort_values("eps")
    assert fgsm["robust_acc"].iloc[-1] < fgsm["robust_acc"].iloc[0]


def test_second_identical_call_does_no_work(swept):
    run_dir, table = swept
    before = _snapshot(run_dir)
    again = run_sweep(run_dir, small_spec(), progress=False)
    assert again.attrs["computed"] == []
    assert _snapshot(run_dir) == before  # not a single file rewritten
    pd.testing.assert_frame_equal(again, table, check_like=False)


def test_interrupted_sweep_resumes_to_the_same_results(make_run, swept, monkeypatch):
    reference_dir, reference = swept
    run_dir = make_run("interrupted")
    real_attack = compute_mod.run_attack
    calls = {"n": 0}

    def flaky_attack(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # in the middle of a cell
            raise KeyboardInterrupt("simulated interruption")
        return real_attack(*args, **kwargs)

    monkeypatch.setattr(compute_mod, "run_attack", flaky_attack)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(run_dir, small_spec(), progress=False)
    partial = read_results(run_dir)
    assert 0 < len(partial) < len(reference)
    state = json.loads((run_dir / "sweep_state.json").read_text())
    assert not state["specs"]["small"].get("finished")
    monkeypatch.setattr(compute_mod, "run_attack", real_attack)
    resumed = run_sweep(run_dir, small_spec(), progress=False)
    assert set(resumed.attrs["computed"]).isdisjoint(set(partial["cell_id"]))
    assert len(resumed.attrs["computed"]) == len(reference) - len(partial)
    cols = ["cell_id", "arm", "attack", "eps", "grad", "source_arm", "robust_acc", "clean_acc", "n_correct"]
    pd.testing.assert_frame_equal(resumed[cols], reference[cols])
    mine, theirs = samples_of(run_dir), samples_of(reference_dir)
    for cid in reference["cell_id"]:
        assert np.array_equal(mine[cid], theirs[cid])


def test_changed_spec_under_the_same_name_is_refused(swept):
    run_dir, _ = swept
    before = _snapshot(run_dir)
    with pytest.raises(SpecChangedError, match="spec 'small' changed"):
        run_sweep(run_dir, small_spec(steps=3), progress=False)
    assert _snapshot(run_dir) == before


def test_cli_named_attacks_get_their_own_spec_names(make_run):
    run_dir = make_run("cli")
    a = run_sweep(run_dir, AttackSpec(method="fgsm", eps=(1 / 255,), n_examples=8), progress=False)
    b = run_sweep(run_dir, AttackSpec(method="fgsm", eps=(2 / 255,), n_examples=8), progress=False)
    assert a.attrs["spec_name"].startswith("cli-") and a.attrs["spec_name"] != b.attrs["spec_name"]
    assert set(read_results(run_dir)["spec"]) == {a.attrs["spec_name"], b.attrs["spec_name"]}


def test_run_folder_without_checkpoints(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no trained arms"):
        run_sweep(tmp_path / "empty", small_spec(), progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        run_sweep(tmp_path / "missing", small_spec(), progress=False)


def test_arms_of_different_datasets(tmp_path, tiny_state, arm_writer):
    arm_writer(tmp_path / "run", "baseline", state=tiny_state, dataset="cifar100-mini")
    arm_writer(tmp_path / "run", "jpegdl", state=tiny_state, dataset="cifar100")
    with pytest.raises(ValueError, match="different data sets"):
        run_sweep(tmp_path / "run", small_spec(), progress=False)


def test_transfer_from_a_missing_arm(make_run):
    run_dir = make_run("only-baseline", arms=("baseline",))
    spec = AttackSpec(method="pgd", eps=(2 / 255,), steps=1, transfer_from="jpegdl", n_examples=8)
    with pytest.raises(AttackSpecError, match="no 'jpegdl' arm"):
        run_sweep(run_dir, spec, progress=False)
    spec = AttackSpec(method="pgd", eps=(2 / 255,), steps=1, transfer_from="baseline", n_examples=8)
    with pytest.raises(AttackSpecError, match="another arm"):
        run_sweep(run_dir, spec, progress=False)


def test_unknown_spec_name(run_dir):
    with pytest.raises(AttackSpecError, match="available specs"):
        run_sweep(run_dir, "no-such-spec", progress=False)


def test_concurrent_sweep_is_refused(swept):
    import fcntl

    run_dir, _ = swept
    with open(run_dir / ".attack.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with pytest.raises(SweepLockedError):
            run_sweep(run_dir, small_spec(), progress=False)


def test_plan_cells_clamps_n_with_a_warning():
    arms = {"baseline": ArmInfo("baseline", "tiny", "cifar100-mini", 0, False)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cells = plan_cells(AttackSpec(method="fgsm", eps=(1 / 255,), n_examples=5000), arms, 1000)
    assert {c.n for c in cells} == {1000} and any("exceeds" in str(w.message) for w in caught)
    ids = [c.cell_id for c in cells]
    assert ids == [c.cell_id for c in plan_cells(AttackSpec(method="fgsm", eps=(1 / 255,)), arms, 1000)]  # stable
    assert all(len(i) == 16 for i in ids)


# --- CLI ----------------------------------------------------------------------------------------------------------


def _parse(argv):
    from robustbench_jpeg.cli import attack_cmd

    parser = argparse.ArgumentParser(prog="jpeg-robust")
    attack_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def test_cli_runs_an_ad_hoc_attack(make_run, capsys):
    run_dir = make_run("cli-run")
    args = _parse(
        [
            "attack",
            "--run",
            str(run_dir),
            "--method",
            "pgd",
            "--eps",
            "0,4",
            "--steps",
            "1",
            "--grad",
            "soft,bpda",
            "--n-examples",
            "8",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "robust" in out and "checks:" in out and "results.csv" in out and "4/255" in out
    assert len(read_results(run_dir)) == 4 + 2 + 2 * 2  # clean x4, baseline 2 eps, jpegdl 2 eps x 2 grads
    assert "attack --run" in (run_dir / "commands.txt").read_text()
    assert args.handler(args) == 0
    assert "0 computed now" in capsys.readouterr().out


def test_an_attack_command_is_recorded_as_it_starts_so_a_killed_sweep_still_names_it(make_run, monkeypatch, tmp_path):
    from robustbench_jpeg import sweep

    run_dir = make_run("cli-killed")
    argv = ["attack", "--run", str(run_dir), "--spec", "quick", "--n-examples", "8", "--device", "cpu"]

    def killed(*args, **kwargs):  # the sweep dies mid-way (a signal): the command must already be in the folder
        assert "--spec quick" in (run_dir / "commands.txt").read_text()
        raise SystemExit(143)

    monkeypatch.setattr(sweep, "run_sweep", killed)
    with pytest.raises(SystemExit):
        _parse(argv).handler(_parse(argv))
    assert (run_dir / "commands.txt").read_text().count("--spec quick") == 1
    stranger = tmp_path / "not-a-run"
    stranger.mkdir()
    with pytest.raises(SystemExit):
        _parse([*argv[:2], str(stranger), *argv[3:]]).handler(_parse([*argv[:2], str(stranger), *argv[3:]]))
    assert not (stranger / "commands.txt").exists()  # nothing is written into a folder that is not a run folder
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SystemExit):
        _parse(argv).handler(_parse(argv))
    assert (run_dir / "commands.txt").read_text().count("--spec quick") == 1  # rank 1 never writes


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--spec", "paper-pgd", "--eps", "1"], "cannot be combined with --spec"),
        (["--spec", "no-such-spec"], "available specs"),
        (["--method", "pgd"], "needs --eps"),
        (["--method", "pgd", "--eps", "-1"], "eps values must be >= 0, got -1/255"),
        (["--method", "fgsm", "--eps", "1", "--step-size", "2"], "fgsm always steps by eps"),
        (["--method", "pgd", "--eps", "1", "--steps", "3", "--step-size", "quick"], "cannot read step size"),
    ],
)
def test_cli_bad_input(run_dir, extra, message):
    from robustbench_jpeg.cli.attack_cmd import specs_from_args

    args = _parse(["attack", "--run", str(run_dir), *extra])
    with pytest.raises(AttackSpecError, match=message):
        specs_from_args(args)


def test_cli_rejects_unknown_method_at_parse_time(run_dir, capsys):
    with pytest.raises(SystemExit):
        _parse(["attack", "--run", str(run_dir), "--method", "cw", "--eps", "1"])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_spec_overrides_rename(run_dir):
    from robustbench_jpeg.cli.attack_cmd import specs_from_args

    spec = specs_from_args(_parse(["attack", "--run", str(run_dir), "--spec", "paper-pgd", "--n-examples", "100"]))
    assert spec.name == "paper-pgd+n100" and {a.n_examples for a in spec.attacks} == {100}


# --- stale, legacy and damaged files ---------------------------------------------------------------------------


def tiny_spec(name: str = "tiny-spec") -> SpecFile:
    return SpecFile(
        name=name, attacks=(AttackSpec(method="fgsm", eps=(2 / 255, 8 / 255), n_examples=16, batch_size=8),)
    )


def test_retrained_checkpoint_makes_its_cells_stale(make_run, arm_writer, tiny_state):
    """The defect: a cell's identity held no checkpoint, so attacking, training further and attacking again
    recomputed nothing and kept the old numbers. Rows now carry the weights' fingerprint; stale ones are set aside
    and recomputed."""
    run_dir = make_run("stale")
    first = run_sweep(run_dir, tiny_spec(), progress=False)
    changed = {k: (v + 0.05 if v.is_floating_point() else v) for k, v in tiny_state.items()}
    arm_writer(run_dir, "jpegdl", state=changed)  # "training went on": new weights for one arm
    with pytest.warns(StoreWarning, match="earlier checkpoint of arm"):
        second = run_sweep(run_dir, tiny_spec(), progress=False)
    recomputed = set(second.attrs["computed"])
    assert recomputed == set(first.loc[first["arm"] == "jpegdl", "cell_id"])  # same cells, new numbers
    results = read_results(run_dir)
    assert results.groupby("arm")["fingerprint"].nunique().eq(1).all()
    assert set(results.loc[results["arm"] == "jpegdl", "fingerprint"]) != set(
        first.loc[first["arm"] == "jpegdl", "fingerprint"]
    )
    stale = pd.read_csv(run_dir / "results-stale.csv")
    assert len(stale) == (first["arm"] == "jpegdl").sum() and "earlier checkpoint" in stale["reason"].iloc[0]


def test_rows_of_the_previous_row_format_are_set_aside(make_run):
    run_dir = make_run("legacy")
    run_sweep(run_dir, tiny_spec(), progress=False)
    legacy = read_results(run_dir)
    legacy = legacy.assign(row_format=1, grad=legacy["grad"].replace("soft", "bpda"))
    legacy.drop(columns=["row_format", "fingerprint", "source_fingerprint"]).to_csv(
        run_dir / "results.csv", index=False
    )
    with pytest.warns(StoreWarning, match="row format"):
        again = run_sweep(run_dir, tiny_spec(), progress=False)
    assert len(again.attrs["computed"]) == len(legacy)
    assert (read_results(run_dir)["row_format"] == ROW_FORMAT).all()


def test_results_csv_grows_by_appending(make_run, monkeypatch):
    """results.csv is appended one line per cell: the bytes a sweep writes grow linearly with the cells."""
    from robustbench_jpeg.runfolder import store as store_mod

    rewrites = []
    real = store_mod.atomic_write_text
    monkeypatch.setattr(
        store_mod, "atomic_write_text", lambda path, text: (rewrites.append(str(path)), real(path, text))[1]
    )
    run_dir = make_run("append")
    table = run_sweep(run_dir, small_spec(), progress=False)
    written = [p for p in rewrites if p.endswith("results.csv")]
    assert len(written) == 1  # the header with the first row; every later cell is one appended line
    assert len((run_dir / "results.csv").read_text().splitlines()) == len(table) + 1


def test_a_cut_short_results_line_is_dropped_and_recomputed(make_run):
    run_dir = make_run("torn")
    table = run_sweep(run_dir, tiny_spec(), progress=False)
    text = (run_dir / "results.csv").read_text()
    (run_dir / "results.csv").write_text(text[: len(text) - 40])  # a crash in the middle of the last line
    with pytest.warns(StoreWarning, match="cut short"):
        again = run_sweep(run_dir, tiny_spec(), progress=False)
    assert again.attrs["computed"] == [table["cell_id"].iloc[-1]]
    pd.testing.assert_frame_equal(again[["cell_id", "robust_acc"]], table[["cell_id", "robust_acc"]])


def test_a_damaged_samples_record_is_recomputed(make_run):
    run_dir = make_run("garbled")
    run_sweep(run_dir, tiny_spec(), progress=False)
    data = bytearray((run_dir / "samples.bin").read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last record
    (run_dir / "samples.bin").write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="CRC"):
        again = run_sweep(run_dir, tiny_spec(), progress=False)
    assert len(again.attrs["computed"]) == 1


def test_a_corrupt_checks_json_is_replaced(make_run):
    run_dir = make_run("checks")
    run_sweep(run_dir, tiny_spec(), progress=False)
    (run_dir / "checks.json").write_text("{not json")
    again = run_sweep(run_dir, tiny_spec(), progress=False)
    assert json.loads((run_dir / "checks.json").read_text())["verdict"] == again.attrs["verdict"]


def test_an_arm_without_a_card_is_named_not_skipped(make_run):
    run_dir = make_run("nocard")
    (run_dir / "jpegdl" / "card.json").unlink()  # e.g. still in its first epoch
    with pytest.raises(CheckpointError, match="jpegdl have a checkpoint but no card.json"):
        run_sweep(run_dir, tiny_spec(), progress=False)
    table = run_sweep(run_dir, tiny_spec(), progress=False, arms=("baseline",))
    assert set(table["arm"]) == {"baseline"}


def test_bpda_rows_crafted_through_the_soft_forward_of_a_hard_arm_are_stale():
    """Version 0.2 recorded bpda and surrogate on the hard-deployed standard-JPEG arm although it crafted them
    through the soft forward; those rows are set aside, the hard-forward ones (bpda-hard, surrogate-hard) kept."""
    from robustbench_jpeg.runfolder.folder import crafted_off_the_deployed_forward

    arms = {
        "baseline": ArmInfo("baseline", "tiny", "cifar100-mini", 0, False),
        "jpegdl": ArmInfo("jpegdl", "tiny", "cifar100-mini", 0, True),
        "jpeg-standard": ArmInfo("jpeg-standard", "tiny", "cifar100-mini", 0, True, deployed="hard"),
    }
    rows = pd.DataFrame(
        [
            ("jpeg-standard", "jpeg-standard", "bpda", "a"),
            ("jpeg-standard", "jpeg-standard", "surrogate", "b"),
            ("jpeg-standard", "", "bpda", "c"),
            ("baseline", "jpeg-standard", "bpda", "d"),  # transfer crafted on the hard arm
            ("jpeg-standard", "jpeg-standard", "bpda-hard", "e"),
            ("jpeg-standard", "jpeg-standard", "surrogate-hard", "f"),
            ("jpeg-standard", "jpeg-standard", "hard", "g"),
            ("jpegdl", "jpegdl", "bpda", "h"),
            ("jpegdl", "jpegdl", "surrogate", "i"),
        ],
        columns=["arm", "source_arm", "grad", "cell_id"],
    )
    hard = {a for a, info in arms.items() if info.deployed == "hard"}
    assert list(crafted_off_the_deployed_forward(rows, hard)["cell_id"]) == ["a", "b", "c", "d"]


def test_a_time_limit_stops_between_cells_and_the_same_call_resumes(make_run, capsys):
    run_dir = make_run("timed")
    first = run_sweep(run_dir, small_spec("timed"), progress=False, time_limit_s=1e-9)
    assert first.attrs["computed"] == [] and first.attrs["paused"] > 0  # past the limit: no cell starts
    rest = run_sweep(run_dir, small_spec("timed"), progress=False)
    assert rest.attrs["paused"] == 0 and len(rest.attrs["computed"]) == first.attrs["paused"]
    from robustbench_jpeg.cli import EXIT_PAUSED, main

    again = make_run("timed-cli")
    argv = ["attack", "--run", str(again), "--method", "fgsm", "--eps", "2", "--n-examples", "8", "--no-progress"]
    assert main([*argv, "--time-limit", "1e-9"]) == EXIT_PAUSED
    assert "stopped by --time-limit" in capsys.readouterr().err
    assert main(argv) == 0
    with pytest.raises(SystemExit) as exit_info:  # not a positive number of minutes: a usage error
        main([*argv, "--time-limit", "0"])
    assert exit_info.value.code == 2
    assert "argument --time-limit: expected a positive number" in capsys.readouterr().err


def test_channels_last_models_give_the_same_cells_and_say_so(make_run):
    """The models held in channels_last layout (the images and their random starts stay NCHW): on these images the
    same per-image results as NCHW, and the rows' device says how they were computed."""
    spec = small_spec("layout")
    plain, last = make_run("nchw"), make_run("channels-last")
    a = run_sweep(plain, spec, progress=False)
    b = run_sweep(last, spec, progress=False, channels_last=True)
    assert list(a["cell_id"]) == list(b["cell_id"])  # the layout is not part of a cell
    samples_a, samples_b = samples_of(plain), samples_of(last)
    for cell_id in a["cell_id"]:
        assert np.array_equal(samples_a[cell_id], samples_b[cell_id]), cell_id
    assert all(d.endswith(", channels_last") for d in b["device"]) and not any(
        "channels_last" in d for d in a["device"]
    )
