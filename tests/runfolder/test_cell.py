"""The typed cell record: ids that run folders of 0.2 still find, columns and rows derived from the record, a row
read back as the same setting, and labels made from typed fields."""

from __future__ import annotations

import dataclasses

import pytest

from robustbench_jpeg.attack.spec import AttackSpec
from robustbench_jpeg.runfolder.cell import (
    COLUMNS,
    RESULT_COLUMNS,
    TEXT_COLUMNS,
    Cell,
    CellResult,
    Setting,
    attack_name,
    describe,
    eps_key,
    eps_text,
)
from robustbench_jpeg.sweep.plan import ArmInfo, plan_cells

ARMS = {
    "baseline": ArmInfo("baseline", "tiny", "cifar100-mini", 0, False),
    "jpegdl": ArmInfo("jpegdl", "tiny", "cifar100-mini", 0, True),
}
SPECS = [
    AttackSpec(method="pgd", eps=(2 / 255,), steps=5, grad=("soft", "bpda"), n_examples=100),
    AttackSpec(method="apgd-t", eps=(0.5,), norm="l2", steps=10, params={"target_classes": 3}, n_examples=50),
    AttackSpec(
        method="pgd",
        eps=(1 / 255,),
        steps=5,
        grad=("surrogate",),
        surrogate_alpha=1.0,
        eval_alpha=2.0,
        n_examples=100,
        transfer_from="jpegdl",
    ),
]
# The ids version 0.2 gave these cells (computed with its own plan.Cell): a run folder written by 0.2 is resumed,
# not recomputed, so the record must hash the same key.
IDS_OF_0_2 = {
    ("baseline", "clean", 100, None): "268585875e9bb34c",
    ("jpegdl", "clean", 100, None): "517738869e022f00",
    ("baseline", "pgd", 100, "none"): "5023a2c9e90d3f92",
    ("jpegdl", "pgd", 100, "soft"): "e0ca76556ee821d6",
    ("jpegdl", "pgd", 100, "bpda"): "a242433b04fb0a28",
    ("baseline", "clean", 50, None): "fd4de08f80f38234",
    ("jpegdl", "clean", 50, None): "0248173c68d89c28",
    ("baseline", "apgd-t", 50, "none"): "3a385854f10c17d1",
    ("jpegdl", "apgd-t", 50, "soft"): "46e6acb74022a208",
    ("baseline", "clean", 100, 2.0): "6ce1b5141ed536be",
    ("baseline", "pgd", 100, "surrogate"): "9ef8a3254b469bde",
}


def _key(cell: Cell):
    s = cell.setting
    return (cell.arm, s.attack, cell.n, s.eval_alpha if s.is_clean else s.grad)


def test_cell_ids_are_those_of_0_2():
    cells = [c for spec in SPECS for c in plan_cells(spec, ARMS, 1000)]
    assert {_key(c): c.cell_id for c in cells} == IDS_OF_0_2


def _result() -> CellResult:
    return CellResult("s", 0.5, 0.25, 25, 50, 1, 1.0, "sha", "2", "3.5", "cpu", "now")


def test_columns_and_rows_derive_from_the_record():
    fields = [f.name for f in dataclasses.fields(Setting) if f.metadata.get("column", True)]
    assert all(name in RESULT_COLUMNS for name in fields)  # every field that defines an attack is a column
    assert "chain_grad" not in RESULT_COLUMNS and len(set(RESULT_COLUMNS)) == len(RESULT_COLUMNS)
    assert set(TEXT_COLUMNS) <= set(RESULT_COLUMNS) and {"attack_label", "params", "cell_id"} <= set(TEXT_COLUMNS)
    for cell in plan_cells(SPECS[2], ARMS, 1000):
        row = cell.row(_result())
        assert list(row) == RESULT_COLUMNS == [c.name for c in COLUMNS]
        assert row["cell_id"] == cell.cell_id and row["source_arm"] == cell.source_arm
        assert row["eps_255"] == pytest.approx(cell.setting.eps * 255)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.method)
def test_a_row_reads_back_as_the_same_setting(spec):
    for cell in plan_cells(spec, ARMS, 1000):
        row = {k: ("" if v is None else v) for k, v in cell.row(_result()).items()}  # as a CSV reader sees it
        row = {k: (str(v) if k in TEXT_COLUMNS else v) for k, v in row.items()}
        back = Setting.from_row(row)
        expected = dataclasses.replace(cell.setting, source_arm=cell.source_arm, chain_grad="")
        assert back == expected


def test_rows_written_before_the_label_column_get_the_names_0_2_printed():
    row = {"attack": "fgsm", "norm": "linf", "eps": 1 / 255, "steps": 1, "restarts": 1}
    assert attack_name(Setting.from_row(row)) == "FGSM"
    row = {"attack": "square", "norm": "l2", "eps": 0.5, "steps": 5000, "restarts": 2}
    assert attack_name(Setting.from_row(row)) == "Square-5000, 2 restarts, L2"


def test_labels_and_radii_come_from_typed_fields():
    pgd, bpda = [c for c in plan_cells(SPECS[0], ARMS, 1000) if c.arm == "jpegdl" and not c.is_clean]
    assert bpda.label() == "JPEG-DL PGD-5 (bpda) at 2/255 (n=100)"
    transfer = [c for c in plan_cells(SPECS[2], ARMS, 1000) if not c.is_clean][0]
    assert transfer.label() == "baseline PGD-5 (surrogate) from jpegdl at 1/255 [eval alpha 2] (n=100)"
    row = transfer.row(_result())
    assert describe(Setting.from_row(row), row["arm"], row["n"]) == transfer.label().removeprefix("baseline ")
    assert eps_text(4 / 3 / 255, "linf") == "1.333/255" and eps_text(0.5, "l2") == "0.5 (L2)"
    assert eps_key("linf", 4 / 3 / 255) == 1.3333 and eps_key("l2", 0.5) == 0.5
    assert pgd.setting.eps_key == 2.0 and Setting.clean().eps_key == 0.0


def test_a_hard_deployed_arm_records_the_hard_forward_modes():
    arms = {"jpeg-standard": ArmInfo("jpeg-standard", "tiny", "cifar100-mini", 0, True, deployed="hard")}
    spec = AttackSpec(method="pgd", eps=(2 / 255,), steps=2, grad=("soft", "bpda", "surrogate"), surrogate_alpha=1.0)
    grads = [c.setting.grad for c in plan_cells(spec, arms, 100) if not c.is_clean]
    assert grads == ["hard", "bpda-hard", "surrogate-hard"]
    assert [c.setting.surrogate_alpha for c in plan_cells(spec, arms, 100) if not c.is_clean] == [None, None, 1.0]


def test_the_record_needs_neither_torch_nor_the_attack_engine():
    """cell.py imports the standard library and the run format only, so the report can read cells without torch."""
    import ast
    import sys

    from robustbench_jpeg.runfolder import cell

    tree = ast.parse(open(cell.__file__, encoding="utf-8").read())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
    relative = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
    assert modules - {"__future__"} <= set(sys.stdlib_module_names), modules
    assert relative == {"names"}, relative


def test_the_method_kind_is_stored_in_each_row_and_read_back():
    """What the judgement needs to know of a method (single-step, iterative, targeted, gradient-free) comes from the
    method's file into the row; rows written before the column existed get the kind of their method's name."""
    from robustbench_jpeg.attack.methods import get_method
    from robustbench_jpeg.runfolder.cell import MethodKind

    expected = {
        "fgsm": MethodKind.SINGLE_STEP,
        "pgd": MethodKind.ITERATIVE,
        "apgd-ce": MethodKind.ITERATIVE,
        "apgd-t": MethodKind.TARGETED,
        "fab-t": MethodKind.TARGETED,
        "square": MethodKind.GRADIENT_FREE,
    }
    for name, kind in expected.items():
        assert get_method(name).kind == kind, name
    cells = plan_cells(SPECS[1], ARMS, test_size=100)
    assert {c.setting.method_kind for c in cells if not c.is_clean} == {MethodKind.TARGETED}
    row = cells[-1].row(_result())
    assert row["method_kind"] == "targeted"
    assert Setting.from_row(row).method_kind == MethodKind.TARGETED
    legacy = {k: v for k, v in row.items() if k not in ("method_kind", "attack_label")}
    assert Setting.from_row(legacy).method_kind == MethodKind.TARGETED
    assert Setting.from_row({**legacy, "attack": "fgsm", "steps": 1}).method_kind == MethodKind.SINGLE_STEP


def test_two_engines_never_share_a_cell():
    """A cell planned under the optional torchattacks engine records it, gets its own id and label; the default
    engine (AutoAttack's reference code) keeps 0.2's ids; clean cells do not depend on the engine."""
    from robustbench_jpeg.attack.methods import use_engine

    default = plan_cells(SPECS[0], ARMS, test_size=100)
    with use_engine("torchattacks"):
        other = plan_cells(SPECS[0], ARMS, test_size=100)
    for d, o in zip(default, other, strict=True):
        if d.is_clean:
            assert d.cell_id == o.cell_id
            continue
        assert o.setting.engine == "torchattacks" and d.setting.engine == ""
        assert o.cell_id != d.cell_id
        assert attack_name(o.setting).endswith("[torchattacks]")
        assert Setting.from_row(o.row(_result())).engine == "torchattacks"


def test_settings_that_differ_only_in_the_named_fields_share_their_grouping_key():
    pgd = Setting("pgd", "PGD-20", "linf", 2 / 255, steps=20, step_size=2.5 * 2 / 255 / 20, step_rule="2.5*eps/steps")
    wider = dataclasses.replace(pgd, eps=8 / 255, step_size=2.5 * 8 / 255 / 20, attack_seed=3, below="y")
    assert pgd.same_except("eps") == wider.same_except("eps")  # its step size, seed and cascade link go with it
    assert pgd.same_except("eps") != wider.same_except("steps")
    assert pgd.same_except("eps") == dataclasses.replace(pgd, eps=0.0313725490196).same_except("eps")
    for other in (
        dataclasses.replace(pgd, surrogate_alpha=1.0),
        dataclasses.replace(pgd, engine="torchattacks"),
        dataclasses.replace(pgd, cascade=True),
        dataclasses.replace(pgd, after="chain"),  # a chained cell is never grouped with an unchained one
        dataclasses.replace(pgd, step_rule="absolute", step_size=0.01),
    ):
        assert other.same_except("eps") != pgd.same_except("eps"), other
    absolute = dataclasses.replace(pgd, step_rule="absolute", step_size=0.01)
    assert dataclasses.replace(absolute, step_size=0.02).same_except("eps") != absolute.same_except("eps")
    with pytest.raises(ValueError, match="epsilon"):
        pgd.same_except("epsilon")
