"""The report's inputs, read through the run folder's owner: the right numbers from new runs (one seed, one image set
for both arms, only existing rows of table.csv), stale rows set aside, and a report that never writes into, guesses
at or copies unvalidated files from its input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import bools, cell, single_run, write_run

from robustbench_jpeg.report import ReportInputError, build_report
from robustbench_jpeg.runfolder import ROW_FORMAT, StoreWarning, pack_record

FINGERPRINTS = {"baseline": "b0b0b0b0b0b0b0b0", "jpegdl": "d1d1d1d1d1d1d1d1"}


def binary_run(root: Path, cells: list[dict], fingerprints: dict[str, str] = FINGERPRINTS) -> Path:
    """A hand-made run of the current row format: samples.bin records, and cards and rows carrying fingerprints."""
    write_run(root, cells, extra_arms=tuple(a for a in fingerprints if a not in ("baseline", "jpegdl")))
    table = pd.read_csv(root / "results.csv", dtype={"cell_id": str})
    records = b"".join(
        pack_record(cid, np.load(root / "samples" / f"{cid}.npy", allow_pickle=False)) for cid in table["cell_id"]
    )
    (root / "samples.bin").write_bytes(records)
    shutil.rmtree(root / "samples")
    table["row_format"] = ROW_FORMAT
    table["fingerprint"] = table["arm"].map(fingerprints)
    table["source_fingerprint"] = table["source_arm"].map(fingerprints)
    table.to_csv(root / "results.csv", index=False)
    for arm, fingerprint in fingerprints.items():
        card = json.loads((root / arm / "card.json").read_text())
        (root / arm / "card.json").write_text(json.dumps({**card, "fingerprint": fingerprint}))
    return root


def headline_rows(report: Path) -> list[list[str]]:
    """The rows of the first (headline) table of table.md, as cell texts."""
    block = (report / "table.md").read_text(encoding="utf-8").split("\n\n")
    table = next(b for b in block if b.startswith("| eps"))
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


# --- the numbers ------------------------------------------------------------------------------------------------


def test_one_training_seed_with_an_attack_at_eps_zero_is_one_seed(tmp_path):
    """0.2 counted the eps-0 point twice (the clean cell and the attack at eps 0) and said "2 training seeds"."""
    cells = []
    for arm, clean, at2, at8 in (("baseline", "1111111100", "1100000000", "0000000000"),
                                 ("jpegdl", "1111111110", "1110000000", "1000000000")):  # fmt: skip
        grad = "soft" if arm == "jpegdl" else "none"
        cells.append(cell(arm, "clean", 0, bools(clean)))
        for eps, bits in ((0, clean), (2, at2), (8, at8)):
            cells.append(cell(arm, "pgd", eps, bools(bits), steps=5, grad=grad))
    report = tmp_path / "out"
    build_report([binary_run(tmp_path / "run", cells)], report)
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "training seeds" not in md and "\u00b1" not in (report / "table.md").read_text(encoding="utf-8")
    first = headline_rows(report)[0]
    assert first[:4] == ["0 (clean)", "80.00", "90.00", "+10.00"]
    assert not any(c.endswith("[seeds]") for c in pd.read_csv(report / "table.csv").columns)


def test_headline_compares_both_arms_on_one_image_set(tmp_path):
    """A JPEG-DL cell on 10 images in a run whose attacks cover 20: both arms on the first 10 images."""
    base_clean, jpeg_clean = "1" * 20, "1" * 20
    base_pgd = "0" * 10 + "1" * 10  # 0% on the first 10 images, 50% on 20
    jpeg_pgd = "1" * 5 + "0" * 5 + "1" * 10  # 50% on the first 10, 75% on 20
    cells = [
        cell("baseline", "clean", 0, bools(base_clean)),
        cell("jpegdl", "clean", 0, bools(jpeg_clean)),
        cell("baseline", "pgd", 2, bools(base_pgd), steps=5),
        cell("jpegdl", "pgd", 2, bools(jpeg_pgd), steps=5, grad="soft"),
        cell("jpegdl", "fgsm", 2, bools(jpeg_pgd[:10]), steps=1, grad="soft"),  # only the first 10 images
    ]
    report = tmp_path / "out"
    build_report([binary_run(tmp_path / "run", cells)], report)
    at2 = next(r for r in headline_rows(report) if r[0].startswith("2"))
    assert at2[1:4] == ["0.00", "50.00", "+50.00"]  # 0.2 printed 50.00 vs 50.00 with a difference of +50.00
    paired = pd.read_csv(report / "paired.csv")
    worst = paired[(paired["label"] == "worst case (all attacks)") & (paired["eps"] == 2)]
    assert list(worst["n"]) == [10] and "first 10 test images" in (report / "table.md").read_text(encoding="utf-8")


def test_table_csv_holds_only_the_radii_run_in_each_norm(tmp_path):
    cells = []
    for arm in ("baseline", "jpegdl"):
        cells += [
            cell(arm, "clean", 0, bools("1111111100")),
            cell(arm, "pgd", 2, bools("1111000000"), steps=5),
            cell(arm, "pgd", 51, bools("1100000000"), steps=5),
        ]
    run = binary_run(tmp_path / "run", cells)
    table = pd.read_csv(run / "results.csv")
    table.loc[table["eps_255"] == 51, "norm"] = "l2"
    table.to_csv(run / "results.csv", index=False)
    build_report([run], tmp_path / "out")
    wide = pd.read_csv(tmp_path / "out" / "table.csv")
    assert sorted(zip(wide["norm"], wide["eps"].round(4), strict=True)) == [
        ("l2", 0.0),
        ("l2", 0.2),
        ("linf", 0.0),
        ("linf", 2.0),
    ]


# --- stale rows -------------------------------------------------------------------------------------------------


def _retrained_run(root: Path) -> Path:
    """A run whose JPEG-DL arm was retrained after its attacks: its card holds a new fingerprint."""
    run = binary_run(
        root,
        [
            cell("baseline", "clean", 0, bools("1111111100")),
            cell("jpegdl", "clean", 0, bools("1111111110")),
            cell("baseline", "pgd", 2, bools("1100000000"), steps=5),
            cell("jpegdl", "pgd", 2, bools("1110000000"), steps=5, grad="soft"),
            cell("baseline", "pgd", 2, bools("1110000000"), steps=5, source_arm="jpegdl"),
        ],
    )
    card = json.loads((run / "jpegdl" / "card.json").read_text())
    (run / "jpegdl" / "card.json").write_text(json.dumps({**card, "fingerprint": "e2e2e2e2e2e2e2e2"}))
    return run


def test_report_sets_aside_rows_of_a_retrained_arm_with_a_notice(tmp_path):
    run = _retrained_run(tmp_path / "run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.warns(StoreWarning, match=r"2 row\(s\) of arm jpegdl .*rerun `jpeg-robust attack") as caught:
        build_report([run], tmp_path / "out")
    assert any(
        "1 row(s) of arm baseline were computed from other weights of jpegdl" in str(w.message) for w in caught
    )  # the transfer from the old weights
    data = pd.read_csv(tmp_path / "out" / "data" / "results.csv")
    assert set(data["arm"]) == {"baseline"} and set(data["source_arm"]) == {"baseline"}
    assert "2 row(s) of arm jpegdl" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}  # nothing written into the input


# --- what the report reads, and never writes --------------------------------------------------------------------


def test_report_leaves_a_damaged_samples_bin_in_its_input_as_it_is(tmp_path):
    run = binary_run(tmp_path / "run", [cell(a, "clean", 0, bools("1111111100")) for a in ("baseline", "jpegdl")])
    with open(run / "samples.bin", "ab") as handle:
        handle.write(pack_record("torn", np.ones(64, bool))[:-3])  # an append cut short
    before = (run / "samples.bin").read_bytes()
    with pytest.warns(StoreWarning, match="cut short"):
        build_report([run], tmp_path / "out")
    assert (run / "samples.bin").read_bytes() == before  # 0.2 truncated it


def test_a_folder_holding_a_run_and_a_report_is_refused(tmp_path):
    """report --run B --out V, then attacking V: V/data/manifest.json must not silently stand for V."""
    other = single_run(tmp_path / "B")
    build_report([other], tmp_path / "V")
    single_run(tmp_path / "Vrun")
    for name in ("results.csv", "samples", "baseline", "jpegdl", "config.json"):
        shutil.move(tmp_path / "Vrun" / name, tmp_path / "V" / name)
    with pytest.raises(ReportInputError, match=r"holds both a run .* and a report \(data/manifest.json\)"):
        build_report([tmp_path / "V"], tmp_path / "out")


def test_report_refuses_to_write_into_a_run_folder(tmp_path):
    trained = tmp_path / "trained"
    (trained / "baseline").mkdir(parents=True)
    (trained / "baseline" / "card.json").write_text("{}")
    with pytest.raises(ReportInputError, match="holds a run .*never writes into a run folder"):
        build_report([single_run(tmp_path / "run")], trained)
    assert sorted(p.name for p in trained.iterdir()) == ["baseline"]


@pytest.mark.parametrize("name", ["config.json", "baseline/history.csv", "results.csv", "samples.bin"])
def test_a_symlink_in_a_run_folder_is_refused_and_never_copied(tmp_path, name):
    secret = tmp_path / "secret.key"
    secret.write_text("-----BEGIN PRIVATE KEY----- do not copy\n")
    run = binary_run(tmp_path / "run", [cell(a, "clean", 0, bools("1111111100")) for a in ("baseline", "jpegdl")])
    (run / name).unlink(missing_ok=True)
    os.symlink(secret, run / name)
    with pytest.raises(ReportInputError, match="symbolic link"):
        build_report([run], tmp_path / "out")
    copied = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in copied)
    assert secret.read_text().startswith("-----BEGIN")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("name", ["results.csv", "samples.bin"])
def test_a_fifo_in_a_run_folder_is_refused_without_hanging(tmp_path, name):
    run = binary_run(tmp_path / "run", [cell(a, "clean", 0, bools("1111111100")) for a in ("baseline", "jpegdl")])
    (run / name).unlink()
    os.mkfifo(run / name)
    done = subprocess.run(
        [sys.executable, "-m", "robustbench_jpeg", "report", "--run", str(run), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,  # a guard only: 0.2 blocked here forever
    )
    assert done.returncode == 2 and "is a FIFO" in done.stderr and "Traceback" not in done.stderr


def test_a_damaged_record_names_the_spec_to_rerun(tmp_path):
    run = binary_run(tmp_path / "run", [cell(a, "clean", 0, bools("1111111100")) for a in ("baseline", "jpegdl")])
    data = bytearray((run / "samples.bin").read_bytes())
    data[-1] ^= 0xFF  # the last record fails its CRC
    (run / "samples.bin").write_bytes(bytes(data))
    with pytest.raises(ReportInputError, match=r"missing or damaged: samples.bin record s0c001 .*spec test"):
        build_report([run], tmp_path / "out")


def test_the_cli_prints_each_stale_rows_notice_on_one_line(tmp_path, capsys):
    from robustbench_jpeg.cli import main

    run = _retrained_run(tmp_path / "run")
    assert main(["report", "--run", str(run), "--out", str(tmp_path / "out")]) == 0
    notices = [line for line in capsys.readouterr().err.splitlines() if "set aside" in line]
    assert len(notices) == 2 and all(line.startswith("jpeg-robust report: warning: ") for line in notices)
    assert "2 row(s) of arm jpegdl" in notices[0] and "rerun `jpeg-robust attack" in notices[0]


def test_report_sets_aside_bpda_crafted_through_the_soft_forward_of_a_hard_arm(tmp_path):
    """Version 0.2 crafted `bpda` on the hard-deployed standard-JPEG arm through the soft forward and scored every
    iterate on that never-deployed model: the reader sets those rows aside with a notice (the `bpda-hard` row, hard
    forward and identity backward, stays)."""
    prints = {**FINGERPRINTS, "jpeg-standard": "f3f3f3f3f3f3f3f3"}
    run = binary_run(
        tmp_path / "run",
        [
            cell("baseline", "clean", 0, bools("1111111100")),
            cell("jpegdl", "clean", 0, bools("1111111110")),
            cell("jpeg-standard", "clean", 0, bools("1111111100")),
            cell("jpeg-standard", "pgd", 2, bools("1100000000"), steps=5, grad="bpda"),
            cell("jpeg-standard", "pgd", 2, bools("1000000000"), steps=5, grad="bpda-hard"),
            cell("jpeg-standard", "pgd", 4, bools("1111111100"), steps=5, grad="hard"),  # zero gradients: masked
            cell("jpegdl", "pgd", 2, bools("1110000000"), steps=5, grad="soft"),
            cell("jpegdl", "pgd", 4, bools("1000000000"), steps=5, grad="soft"),
        ],
        prints,
    )
    with pytest.warns(StoreWarning, match=r"1 row\(s\) set aside: bpda/surrogate crafted through the soft forward"):
        build_report([run], tmp_path / "out")
    data = pd.read_csv(tmp_path / "out" / "data" / "results.csv")
    assert set(data.loc[data["arm"] == "jpeg-standard", "grad"]) == {"none", "bpda-hard", "hard"}
    # at 4/255 only the masked hard-gradient attack ran against standard JPEG: the control sentence says so
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "No adaptive attack (BPDA, surrogate, transfer) ran against standard JPEG at eps 4/255" in report
