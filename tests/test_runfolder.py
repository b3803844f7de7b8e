"""The run folder's owner: what a folder is, safe file access, the per-image records (public reader, healing once),
cards as ModelCard, and rows checked against the cards on every read (report and attack alike)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from run_helpers import write_arm

from robustbench_jpeg.attack.spec import AttackSpec, SpecFile
from robustbench_jpeg.checkpoint import load_model, read_card, weights_fingerprint, write_card
from robustbench_jpeg.runfolder import (
    FolderKind,
    ModelCard,
    RunFolder,
    RunFormatError,
    RunStore,
    StoreWarning,
    UnsafeFileError,
    folder_kind,
    pack_record,
    read_results,
    read_samples,
)
from robustbench_jpeg.runfolder.records import parse_samples
from robustbench_jpeg.sweep import run_sweep

pytestmark = pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.protocol.SanityCheckWarning")

VECTORS = {"aaaa": np.array([1, 0, 1], bool), "bbbb": np.array([0, 1, 1, 1], bool), "cccc": np.ones(9, bool)}


def write_records(path: Path, damage: str | None = None) -> None:
    """Three records; ``damage`` spoils the middle one's magic, CRC or length field."""
    records = [bytearray(pack_record(c, v)) for c, v in VECTORS.items()]
    if damage == "magic":
        records[1][0:4] = b"XXXX"
    elif damage == "crc":
        records[1][-1] ^= 0xFF
    elif damage == "length":
        records[1][20:24] = (10**6).to_bytes(4, "little")
    path.write_bytes(b"".join(bytes(r) for r in records))


# --- the public per-image reader --------------------------------------------------------------------------------


def test_read_samples_takes_a_str_a_path_or_the_run_folder(tmp_path):
    write_records(tmp_path / "samples.bin")
    for given in (str(tmp_path / "samples.bin"), tmp_path / "samples.bin", tmp_path, str(tmp_path)):
        got = read_samples(given)
        assert set(got) == set(VECTORS) and all((got[c] == v).all() for c, v in VECTORS.items())


def test_read_samples_names_a_missing_or_damaged_file(tmp_path):
    with pytest.raises(RunFormatError, match="no such file"):
        read_samples(tmp_path / "samples.bin")
    write_records(tmp_path / "samples.bin", damage="crc")
    with pytest.raises(RunFormatError, match="CRC mismatch.*skip_damaged=True"):
        read_samples(tmp_path / "samples.bin")
    assert set(read_samples(tmp_path / "samples.bin", skip_damaged=True)) == {"aaaa", "cccc"}


def test_the_documented_per_image_table(tmp_path):
    """docs/run-format.md: a pandas table of per-image results in three lines."""
    write_records(tmp_path / "samples.bin")
    pd.DataFrame(
        {
            "cell_id": list(VECTORS),
            "arm": ["baseline", "jpegdl", "jpegdl"],
            "n": [v.size for v in VECTORS.values()],
            "n_correct": [int(v.sum()) for v in VECTORS.values()],
        }
    ).to_csv(tmp_path / "results.csv", index=False)
    run = tmp_path
    samples = read_samples(run)  # cell id -> per-image correctness
    rows = [(cell, image, bool(ok)) for cell, vector in samples.items() for image, ok in enumerate(vector)]
    per_image = pd.DataFrame(rows, columns=["cell_id", "image", "correct"]).merge(read_results(run), on="cell_id")
    assert len(per_image) == sum(v.size for v in VECTORS.values())
    assert per_image.groupby("cell_id")["correct"].sum().to_dict() == {c: int(v.sum()) for c, v in VECTORS.items()}


# --- damaged records heal once ----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["magic", "crc", "length"])
def test_records_after_a_damaged_one_are_kept(tmp_path, damage):
    """0.2 discarded every record after a damaged header, so their cells were recomputed on every rerun."""
    write_records(tmp_path / "samples.bin", damage=damage)
    parsed = parse_samples((tmp_path / "samples.bin").read_bytes())
    assert set(parsed.vectors) == {"aaaa", "cccc"} and parsed.problems
    assert (parsed.vectors["cccc"] == VECTORS["cccc"]).all()


def test_the_attack_heals_a_damaged_samples_bin_once_and_reading_never_writes(tmp_path):
    write_records(tmp_path / "samples.bin", damage="magic")
    before = (tmp_path / "samples.bin").read_bytes()
    with pytest.warns(StoreWarning, match="not a record"):
        assert set(RunFolder(tmp_path).samples()) == {"aaaa", "cccc"}
    assert (tmp_path / "samples.bin").read_bytes() == before  # a reader never repairs
    with pytest.warns(StoreWarning):
        assert set(RunStore(tmp_path).samples()) == {"aaaa", "cccc"}
    healed = parse_samples((tmp_path / "samples.bin").read_bytes())
    assert not healed.problems and set(healed.vectors) == {"aaaa", "cccc"}


# --- what a folder is, and safe access --------------------------------------------------------------------------


def test_folder_kinds(tmp_path):
    (tmp_path / "empty").mkdir()
    assert folder_kind(tmp_path / "empty") == FolderKind.NEITHER
    (tmp_path / "run" / "baseline").mkdir(parents=True)
    (tmp_path / "run" / "baseline" / "card.json").write_text("{}")
    assert folder_kind(tmp_path / "run") == FolderKind.RUN
    (tmp_path / "report" / "data").mkdir(parents=True)
    (tmp_path / "report" / "data" / "manifest.json").write_text("{}")
    (tmp_path / "report" / "data" / "results.csv").write_text("cell_id\n")  # a data folder's own results table
    assert folder_kind(tmp_path / "report") == FolderKind.REPORT
    assert folder_kind(tmp_path / "report" / "data") == FolderKind.REPORT_DATA
    (tmp_path / "report" / "results.csv").write_text("cell_id\n")
    with pytest.raises(RunFormatError, match="ambiguous"):
        folder_kind(tmp_path / "report")


def test_cards_are_read_as_model_cards_and_must_match_their_folder(tmp_path):
    card = {"model": "tiny", "arm": "jpegdl", "dataset": "cifar100-mini", "num_classes": 100, "fingerprint": "f"}
    (tmp_path / "jpegdl").mkdir()
    (tmp_path / "jpegdl" / "card.json").write_text(json.dumps(card))
    cards = RunFolder(tmp_path).cards()
    assert isinstance(cards["jpegdl"], ModelCard) and cards["jpegdl"].to_dict() == card  # the same fields back
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "card.json").write_text(json.dumps(card))
    with pytest.raises(RunFormatError, match="says arm='jpegdl' but lives in folder 'baseline'"):
        RunFolder(tmp_path).cards()


def test_appends_never_follow_a_link(tmp_path):
    """0.2 appended rows and records to the target of a symlinked results.csv / samples.bin."""
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("keep me\n")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(victim, run / "samples.bin")
    os.symlink(victim, run / "results.csv")
    store = RunStore(run)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        store.save_samples("aaaa", np.ones(3, bool))
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        store.append_row({"cell_id": "aaaa"})
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        RunFolder(run).results()
    assert victim.read_text() == "keep me\n"


# --- stale rows in the attack -----------------------------------------------------------------------------------


def _fingerprinted_arm(run: Path, arm: str, seed: int) -> str:
    torch.manual_seed(seed)
    write_arm(run, arm)
    fingerprint = weights_fingerprint(load_model(run / arm))
    write_card(run / arm, {**read_card(run / arm), "fingerprint": fingerprint})
    return fingerprint


def test_attacking_one_arm_sets_aside_the_rows_of_a_retrained_other_arm(tmp_path):
    """0.2 checked only the attacked arms' rows: after retraining the baseline, `attack --arms jpegdl` kept the
    baseline's old rows."""
    run = tmp_path / "run"
    old = _fingerprinted_arm(run, "baseline", seed=1)
    _fingerprinted_arm(run, "jpegdl", seed=2)
    spec = SpecFile(name="one", attacks=(AttackSpec(method="fgsm", eps=(8 / 255,), n_examples=8, batch_size=8),))
    run_sweep(run, spec, progress=False)
    assert set(read_results(run).loc[lambda t: t["arm"] == "baseline", "fingerprint"]) == {old}
    new = _fingerprinted_arm(run, "baseline", seed=3)  # retrained
    assert new != old
    with pytest.warns(StoreWarning, match=r"earlier checkpoint of arm\(s\) baseline"):
        again = run_sweep(run, spec, progress=False, arms=["jpegdl"])
    assert again.attrs["computed"] == []  # JPEG-DL's rows are current
    assert "baseline" not in set(read_results(run)["arm"])
    assert set(pd.read_csv(run / "results-stale.csv")["fingerprint"]) == {old}


def test_a_damaged_record_is_recomputed_once_by_the_attack(tmp_path):
    """0.2 stopped reading at a damaged header: every rerun recomputed the same cells and appended them again."""
    run = tmp_path / "run"
    _fingerprinted_arm(run, "baseline", seed=1)
    _fingerprinted_arm(run, "jpegdl", seed=2)
    spec = SpecFile(name="one", attacks=(AttackSpec(method="fgsm", eps=(8 / 255,), n_examples=8, batch_size=8),))
    first = run_sweep(run, spec, progress=False)
    data = bytearray((run / "samples.bin").read_bytes())
    data[0:4] = b"XXXX"  # the first record's header
    (run / "samples.bin").write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="not a record"):
        second = run_sweep(run, spec, progress=False)
    assert len(second.attrs["computed"]) == 1 and len(first) > 1  # only the damaged cell
    size = (run / "samples.bin").stat().st_size
    third = run_sweep(run, spec, progress=False)
    assert third.attrs["computed"] == [] and (run / "samples.bin").stat().st_size == size


def test_the_attack_refuses_a_report_or_an_ambiguous_folder(tmp_path):
    run = tmp_path / "run"
    _fingerprinted_arm(run, "baseline", seed=1)
    (run / "data").mkdir()
    (run / "data" / "manifest.json").write_text("{}")  # a report written into the run folder
    spec = SpecFile(name="one", attacks=(AttackSpec(method="fgsm", eps=(8 / 255,), n_examples=8, batch_size=8),))
    with pytest.raises(RunFormatError, match="ambiguous"):
        run_sweep(run, spec, progress=False)
    with pytest.raises(RunFormatError, match="is a report data folder, not a run folder"):
        run_sweep(run / "data", spec, progress=False)
    assert not (run / "results.csv").exists()


def test_the_attack_warns_when_a_checkpoint_is_not_the_weights_its_card_describes(tmp_path):
    run = tmp_path / "run"
    _fingerprinted_arm(run, "baseline", seed=1)
    write_card(run / "baseline", {**read_card(run / "baseline"), "fingerprint": "0000000000000000"})
    spec = SpecFile(name="one", attacks=(AttackSpec(method="fgsm", eps=(8 / 255,), n_examples=8, batch_size=8),))
    with pytest.warns(StoreWarning, match="checkpoint holds other weights .* than the card describes"):
        run_sweep(run, spec, progress=False)
