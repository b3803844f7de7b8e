"""``jpeg-robust export``: RobustBench-style entries, quantization tables (JSON, cjpeg text, a real .jpg) and
safetensors weights with a model card, from a small run trained and attacked here."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from run_helpers import write_arm

from robustbench_jpeg import JpegConfig, create_model, load_model
from robustbench_jpeg.cli import main
from robustbench_jpeg.export import ExportError, export_run
from robustbench_jpeg.jpeg.tables import ZIGZAG

# RobustBench's model_info/*/{Linf,L2}/*.json (188 entries): these fields always, with these types, never null ...
ROBUSTBENCH_TYPES = {"link": str, "name": str, "authors": str, "additional_data": bool, "number_forward_passes": int,
                     "dataset": str, "venue": str, "architecture": str, "eps": str, "clean_acc": str, "reported": str,
                     "autoattack_acc": str}  # fmt: skip
# ... and these when present (footnote may be null)
ROBUSTBENCH_OPTIONAL = {"footnote": (str, type(None)), "external": str, "unreliable": bool}
PERCENT = re.compile(r"\d{1,3}\.\d\d")


def assert_robustbench_types(entry: dict, leaderboard: bool = True) -> None:
    required = dict(ROBUSTBENCH_TYPES)
    if not leaderboard:  # an extra entry has no AutoAttack number unless AutoAttack ran
        required.pop("autoattack_acc") if "autoattack_acc" not in entry else None
    for field, kind in required.items():
        assert isinstance(entry.get(field), kind) and not (kind is int and isinstance(entry[field], bool)), field
    for field, kinds in ROBUSTBENCH_OPTIONAL.items():
        assert field not in entry or isinstance(entry[field], kinds), field
    for field in ("clean_acc", "reported", "autoattack_acc", "external"):
        assert field not in entry or PERCENT.fullmatch(entry[field]), (field, entry[field])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny baseline / JPEG-DL pair trained for one epoch on 256 cifar100-mini images, attacked with PGD-2."""
    root = tmp_path_factory.mktemp("export") / "tiny-run"
    train = ["train", "--model", "tiny", "--dataset", "cifar100-mini", "--epochs", "1", "--train-subset", "256",
             "--device", "cpu", "--no-progress", "--out", str(root)]  # fmt: skip
    assert main(train) == 0
    attack = ["attack", "--run", str(root), "--method", "pgd", "--eps", "2,8", "--steps", "2", "--grad", "soft,bpda",
              "--n-examples", "32", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(attack) in (0, 3)
    return root


def test_weights_reload_into_create_model_with_the_same_logits(run, tmp_path):
    from safetensors.torch import load_file

    written, _ = export_run(run, "weights", tmp_path / "w")
    assert {p.name for p in written} == {"model.safetensors", "card.json", "README.md"}
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for arm in ("baseline", "jpegdl"):
        card = json.loads((tmp_path / "w" / arm / "card.json").read_text())
        jpeg = JpegConfig.from_dict(card["jpeg"]) if card.get("jpeg") else None
        model = create_model(card["model"], num_classes=card["num_classes"], jpeg=jpeg)
        model.load_state_dict(load_file(tmp_path / "w" / arm / "model.safetensors"))
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x), load_model(run / arm)(x)), arm
        readme = (tmp_path / "w" / arm / "README.md").read_text()
        front = readme.split("---\n")[1]
        meta = yaml.safe_load(front)
        assert meta["license"] == "mit" and meta["pipeline_tag"] == "image-classification"
        assert meta["datasets"] == ["uoft-cs/cifar100"]
        (result,) = meta["model-index"][0]["results"]
        assert result["dataset"]["type"] == "uoft-cs/cifar100" and result["dataset"]["name"] == "cifar100-mini"
        robust = [m for m in result["metrics"] if "args" in m]
        assert robust and all(set(m["args"]) >= {"threat_model", "eps", "n"} for m in robust)
        assert all(m["args"]["n"] > 0 and 0 < m["args"]["eps"] <= 1 for m in robust)
        assert all(str(m["args"]["eps"]) not in m["name"] for m in robust)  # the radius is an arg, not in the name
        assert 'load_file("model.safetensors")' in readme and "## Robustness" in readme
        for section in ("## Intended use", "## Limitations", "## Citation", "arXiv:2410.07081"):
            assert section in readme, section


def _dqt_tables(data: bytes) -> dict[int, list[int]]:
    """The quantization tables stored in a JPEG's DQT segments, converted from zigzag to natural order."""
    tables, i = {}, 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDB:
            seg, j = data[i + 4 : i + 2 + length], 0
            while j < len(seg):
                assert seg[j] >> 4 == 0, "8-bit tables"
                natural = [0] * 64
                for k, index in enumerate(ZIGZAG):
                    natural[index] = seg[j + 1 + k]
                tables[seg[j] & 15] = natural
                j += 65
        if marker == 0xDA:
            break
        i += 2 + length
    return tables


def test_tables_json_cjpeg_text_and_a_real_jpeg_agree(run, tmp_path):
    from PIL import Image

    written, warnings = export_run(run, "tables", tmp_path / "t")
    folder = tmp_path / "t" / "jpegdl"
    payload = json.loads((folder / "qtables.json").read_text())
    luma, chroma = np.array(payload["luma_int"]), np.array(payload["chroma_int"])
    layer = load_model(run / "jpegdl").jpeg
    assert np.allclose(payload["luma"], layer.q_luma.detach().numpy())
    assert luma.min() >= 1 and luma.max() <= 255
    text = re.sub(r"#.*", "", (folder / "qtables.txt").read_text())
    values = [int(v) for v in text.split()]
    assert values == luma.ravel().tolist() + chroma.ravel().tolist()  # cjpeg: 64 values per table, natural order
    jpg = (folder / "example.jpg").read_bytes()
    image = Image.open(io.BytesIO(jpg))
    assert image.format == "JPEG" and image.size == (32, 32)
    assert [list(image.quantization[k]) for k in (0, 1)] == [luma.ravel().tolist(), chroma.ravel().tolist()]
    assert _dqt_tables(jpg) == {0: luma.ravel().tolist(), 1: chroma.ravel().tolist()}  # natural order in the file
    assert any("chroma_offset 0.5" in w for w in warnings)
    assert not (tmp_path / "t" / "baseline").exists()  # no JPEG layer, no tables


def test_steps_below_one_are_clipped_with_a_warning(tmp_path):
    run = tmp_path / "hand"
    model = create_model("tiny", jpeg=JpegConfig(chroma_offset=0.0))
    luma = torch.full((8, 8), 3.4)
    luma[0, :3] = torch.tensor([0.3, 0.7, 1.2])
    model.jpeg.set_quantization_tables(luma, torch.full((8, 8), 5.0))
    write_arm(run, "jpegdl", model=model)
    _, warnings = export_run(run, "tables", tmp_path / "t")
    payload = json.loads((tmp_path / "t" / "jpegdl" / "qtables.json").read_text())
    assert payload["luma_int"][0][:4] == [1, 1, 1, 3]
    assert any("2 learned step(s) below 1 (smallest 0.3) clipped to 1" in w for w in warnings)
    assert not any("chroma_offset" in w for w in warnings)  # offset 0 is standard JPEG


def test_robustbench_export_marks_cifar100_mini_as_extra_and_holds_the_worst_case(run, tmp_path):
    from robustbench_jpeg.report import build_report

    written, warnings = export_run(run, "robustbench", tmp_path / "rb")
    assert not (tmp_path / "rb" / "cifar100-mini").exists()  # no leaderboard folder for a dataset without one
    entry = json.loads((tmp_path / "rb" / "extra" / "cifar100-mini" / "Linf" / "tiny_jpegdl_tiny-run.json").read_text())
    assert_robustbench_types(entry, leaderboard=False)
    assert "autoattack_acc" not in entry and "external" not in entry  # PGD only: no AutoAttack number to claim
    ours = entry["robustbench_jpeg"]
    assert ours["leaderboard"] is False and "cifar100-mini" in ours["extra_because"][0]
    assert None not in ours.values()
    assert entry["eps"] == "8/255" and entry["reported"] == ours["worst_case_acc"]
    assert ours["worst_case_attacks"] == ["PGD-2 (soft) at 2/255", "PGD-2 (bpda) at 2/255", "PGD-2 (soft) at 8/255",
                                          "PGD-2 (bpda) at 8/255"]  # fmt: skip
    assert any("not a leaderboard entry" in w for w in warnings)
    build_report([run], tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "table.csv").set_index("eps")
    assert float(ours["worst_case_acc"]) == pytest.approx(
        100 * table.loc[8, "JPEG-DL: worst case (all attacks)"], abs=0.005
    )
    assert "not affiliated with RobustBench" in (tmp_path / "rb" / "README.md").read_text()


def _chain_rows(arm: str, grad: str, eps: float, n: int, accs: list[float], engine: str = "not used") -> list[dict]:
    """The results rows of one autoattack chain (APGD-CE, APGD-T, FAB-T, Square) written by hand."""
    rows, after = [], ""
    for (method, steps, params), acc in zip(
        [("apgd-ce", 100, ""), ("apgd-t", 100, "target_classes=9"), ("fab-t", 100, "target_classes=9"),
         ("square", 5000, "p_init=0.8")], accs, strict=True
    ):  # fmt: skip
        cell = hashlib.sha1(f"{arm}-{grad}-{method}-{engine}".encode()).hexdigest()[:16]
        rows.append({"arm": arm, "source_arm": arm, "norm": "linf", "eps": eps, "eval_alpha": float("nan"),
                     "attack": method, "steps": steps, "params": params, "restarts": 1, "after": after,
                     "grad": "none" if method == "square" else grad, "torchattacks": engine, "cell_id": cell,
                     "n": n, "robust_acc": acc})  # fmt: skip
        after = cell
    return rows


def test_autoattack_acc_only_from_the_reference_chain_on_the_deployed_model():
    from robustbench_jpeg.export.common import WorstPoint
    from robustbench_jpeg.export.robustbench import entry, extra_reasons, reference_autoattack

    eps = 8 / 255
    results = pd.DataFrame(
        _chain_rows("jpegdl", "bpda", eps, 10_000, [0.30, 0.28, 0.27, 0.26])  # BPDA: not the deployed gradient
        + _chain_rows("jpegdl", "soft", eps, 10_000, [0.25, 0.24, 0.24, 0.23], engine="3.5.1")  # torchattacks
        + _chain_rows("baseline", "none", eps, 10_000, [0.21, 0.20, 0.20, 0.19])
    )
    assert reference_autoattack(results, "jpegdl", eps) is None
    baseline = reference_autoattack(results, "baseline", eps)
    assert baseline is not None and (baseline.acc, baseline.n) == (0.19, 10_000)
    results = pd.concat([results, pd.DataFrame(_chain_rows("jpegdl", "soft", eps, 10_000, [0.33, 0.31, 0.3, 0.29]))])
    reference = reference_autoattack(results, "jpegdl", eps)
    assert reference is not None and reference.acc == 0.29

    point = WorstPoint("jpegdl", "linf", eps, 8.0, 0.21, 10_000, ("APGD-CE-100 (bpda) at 8/255",), 0.55, 10_000)
    assert extra_reasons("cifar100", point, reference) == []
    card = {"model": "resnet56", "dataset": "cifar100", "jpeg": {"quality": 50}, "seed": 0}
    leaderboard = entry(card, "jpegdl", point, "masked", "r56", reference, [])
    assert_robustbench_types(leaderboard)
    assert leaderboard["autoattack_acc"] == "29.00" and leaderboard["external"] == leaderboard["reported"] == "21.00"
    assert leaderboard["unreliable"] is True and leaderboard["eps"] == "8/255"
    # RobustBench's generator sorts by external when present, else autoattack_acc
    assert float(leaderboard.get("external", leaderboard["autoattack_acc"])) == 21.0
    assert "unreliable" not in entry(card, "jpegdl", point, "unchecked", "r56", reference, [])

    small = dataclasses.replace(reference, n=1000)
    assert extra_reasons("cifar100", point, small) == ["AutoAttack ran on 1000 of the 10,000 test images"]
    assert "did not run" in extra_reasons("cifar100", point, None)[0]
    assert "no cifar10 Linf" not in extra_reasons("cifar100", point, None)[0]
    at_4 = dataclasses.replace(point, eps=4 / 255, eps_key=4.0)
    assert "radius is 8/255" in extra_reasons("cifar100", at_4, reference)[0]
    l2 = dataclasses.replace(point, norm="l2", eps=0.5, eps_key=0.5)
    assert extra_reasons("cifar100", l2, None) == ["RobustBench has no cifar100 L2 leaderboard"]


def test_names_that_become_paths_are_validated(run, tmp_path):
    bad = tmp_path / "bad name"
    shutil.copytree(run, bad)
    with pytest.raises(ExportError, match="not a safe file name"):
        export_run(bad, "robustbench", tmp_path / "out")
    with pytest.raises(ExportError, match=r"holds a run \(results.csv\); export never writes into a run folder"):
        export_run(run, "tables", run)
    with pytest.raises(ExportError, match="unknown export format"):
        export_run(run, "onnx", tmp_path / "out")


def test_cli(run, tmp_path, capsys):
    assert main(["export", str(run), "--format", "tables", "--out", str(tmp_path / "t"), "--arms", "jpegdl"]) == 0
    out = capsys.readouterr()
    assert "example.jpg" in out.out and "warning:" in out.err
    assert main(["export", str(tmp_path / "missing"), "--format", "weights", "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0]
    with pytest.raises(SystemExit):
        main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "x")])


def test_cli_takes_the_run_as_option_or_positional(run, tmp_path, capsys):
    assert (
        main(["export", "--run", str(run), "--format", "tables", "--out", str(tmp_path / "o"), "--arms", "jpegdl"]) == 0
    )
    assert main(["export", str(run), "--format", "tables", "--out", str(tmp_path / "p"), "--arms", "jpegdl"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").rglob("*")) == sorted(p.name for p in (tmp_path / "p").rglob("*"))
    capsys.readouterr()
    assert main(["export", "--format", "tables", "--out", str(tmp_path / "q")]) == 2
    assert "--run RUN" in capsys.readouterr().err
    assert main(["export", str(run), "--run", str(tmp_path), "--format", "tables", "--out", str(tmp_path / "r")]) == 2
    assert "give one" in capsys.readouterr().err


def test_load_model_given_a_run_folder_lists_its_arm_folders(run):
    from robustbench_jpeg.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="run folder, not an arm folder") as caught:
        load_model(run)
    assert str(run / "baseline") in str(caught.value) and str(run / "jpegdl") in str(caught.value)


def test_a_cascaded_autoattack_chain_is_reported_and_says_so():
    from robustbench_jpeg.export.common import WorstPoint
    from robustbench_jpeg.export.robustbench import entry, reference_autoattack

    eps = 8 / 255
    plain = pd.DataFrame(_chain_rows("baseline", "none", eps, 10_000, [0.21, 0.20, 0.20, 0.19]))
    assert reference_autoattack(plain, "baseline", eps).cascade is False
    cascaded = plain.assign(below=[f"below{i}" for i in range(len(plain))])  # each cell built on the radius below
    reference = reference_autoattack(cascaded, "baseline", eps)
    assert reference is not None and reference.cascade and reference.acc == 0.19
    point = WorstPoint("baseline", "linf", eps, 8.0, 0.19, 10_000, ("Square-5000 at 8/255",), 0.55, 10_000)
    card = {"model": "resnet56", "dataset": "cifar100", "jpeg": None, "seed": 0}
    document = entry(card, "baseline", point, "not detected", "r56", reference, [])
    assert_robustbench_types(document)
    assert document["autoattack_acc"] == "19.00" and document["robustbench_jpeg"]["autoattack_cascade"] is True
    assert "radius cascade" in document["footnote"]
