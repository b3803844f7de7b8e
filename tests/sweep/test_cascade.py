"""The radius cascade (``AttackSpec.cascade``): at each eps an attack runs only on the images still standing after
the same attack at every smaller eps; each cell then reads "robust at every radius up to eps", and the per-image
worst case is the one the plain sweep gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robustbench_jpeg.attack.spec import AttackSpec, AttackSpecError, SpecFile
from robustbench_jpeg.attack.spec_files import load_spec
from robustbench_jpeg.evaluation import worst_cases
from robustbench_jpeg.runfolder.cell import Setting, attack_name
from robustbench_jpeg.runfolder.store import RunStore
from robustbench_jpeg.sweep import compute as compute_mod
from robustbench_jpeg.sweep import run_sweep
from robustbench_jpeg.sweep.plan import ArmInfo, plan_spec

N = 48
EPS = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
pytestmark = pytest.mark.filterwarnings("ignore::robustbench_jpeg.sweep.SanityCheckWarning")
ARMS = {"baseline": ArmInfo("baseline", "tiny", "cifar100-mini", 0, False)}


def _spec(cascade: bool, name: str, eps=EPS, chain: str | None = None) -> SpecFile:
    common = {"n_examples": N, "batch_size": 20, "cascade": cascade, "chain": chain}
    attacks = [AttackSpec(method="pgd", eps=eps, steps=3, **common)]
    if chain:
        attacks.append(AttackSpec(method="fgsm", eps=eps, **common))
    return SpecFile(name=name, version=1, description="test", attacks=tuple(attacks))


def test_a_cascade_plans_the_radii_upwards_each_cell_on_the_one_below():
    cells = [c for c in plan_spec(_spec(True, "c", eps=(8 / 255, 1 / 255, 2 / 255)), ARMS, 100) if not c.is_clean]
    assert [c.setting.eps for c in cells] == sorted(c.setting.eps for c in cells)
    assert [c.setting.below for c in cells] == ["", cells[0].cell_id, cells[1].cell_id]
    assert all(c.setting.cascade for c in cells)
    plain = [c for c in plan_spec(_spec(False, "p"), ARMS, 100) if not c.is_clean]
    assert not {c.cell_id for c in cells} & {c.cell_id for c in plain}  # a cascade never shares a plain cell's id
    assert all(not c.setting.cascade and not c.setting.below for c in plain)


def test_a_chained_cascade_builds_on_its_chain_and_on_the_radius_below():
    cells = [c for c in plan_spec(_spec(True, "c", chain="aa"), ARMS, 100) if not c.is_clean]
    pgd = {c.setting.eps: c for c in cells if c.setting.attack == "pgd"}
    for c in (c for c in cells if c.setting.attack == "fgsm"):
        assert c.setting.after == pgd[c.setting.eps].cell_id
        smaller = [d for d in cells if d.setting.attack == "fgsm" and d.setting.eps < c.setting.eps]
        assert c.setting.below == (max(smaller, key=lambda d: d.setting.eps).cell_id if smaller else "")


def test_the_cell_record_keeps_the_cascade_through_a_row():
    cell = [c for c in plan_spec(_spec(True, "c"), ARMS, 100) if not c.is_clean][2]
    back = Setting.from_row(cell.row(_result()))
    assert dataclasses.replace(back, source_arm="") == cell.setting  # the row names the source arm itself
    assert (back.cascade, back.below) == (True, cell.setting.below) and back.below
    assert attack_name(cell.setting) == "PGD-3, cascade"


def _result():
    from robustbench_jpeg.runfolder.cell import CellResult

    return CellResult("c", 1.0, 0.5, 1, 2, 1, 0.1, "sha", "2", "-", "cpu", "now")


def test_chain_entries_must_agree_on_the_cascade_and_it_is_a_flag():
    with pytest.raises(AttackSpecError, match="cascade"):
        SpecFile(
            name="x",
            version=1,
            description="",
            attacks=(
                AttackSpec(method="pgd", eps=EPS, chain="aa", cascade=True),
                AttackSpec(method="fgsm", eps=EPS, chain="aa"),
            ),
        )
    with pytest.raises(AttackSpecError, match="cascade"):
        AttackSpec(method="pgd", eps=EPS, cascade="yes")
    # a spec that does not ask for a cascade keeps its hash (what run folders of earlier versions recorded)
    assert "cascade" not in AttackSpec(method="pgd", eps=EPS).identity()


def test_the_autoattack_specs_cascade_every_entry():
    assert all(a.cascade for a in load_spec("autoattack").attacks)


def _stub_fooled(self, cell, restart, first, positions):
    """A deterministic attack (no random start): image i falls at eps >= a threshold of its own, or never."""
    threshold = (np.asarray(positions) * 7919 % 13) / 255
    return threshold <= cell.setting.eps


@pytest.fixture(scope="module")
def both(tmp_path_factory, tiny_state, arm_writer):
    """The same sweep with and without the cascade on one baseline arm, under a deterministic stand-in attack (so
    the two can be compared image by image: a real attack's random start depends on the cell), and the number of
    images each cell attacked."""
    run_dir = tmp_path_factory.mktemp("cascade") / "run"
    arm_writer(run_dir, "baseline", state=tiny_state)
    attacked: dict[str, int] = {}

    def counting(self, cell, restart, first, positions):
        attacked[cell.cell_id] = attacked.get(cell.cell_id, 0) + len(positions)
        return _stub_fooled(self, cell, restart, first, positions)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(compute_mod.Evaluator, "fooled", counting)
    try:
        plain = run_sweep(run_dir, _spec(False, "plain"), progress=False)
        cascade = run_sweep(run_dir, _spec(True, "cascade"), progress=False)
    finally:
        monkey.undo()
    return run_dir, plain, cascade, attacked


def _clean_id(table) -> str:
    return table.loc[(table["attack"] == "clean") & (table["n"] == N), "cell_id"].iloc[0]


def _attack_ids(table) -> list[str]:
    return list(table[table["attack"] != "clean"].sort_values("eps")["cell_id"])


def test_each_cascade_cell_is_robust_at_every_radius_up_to_its_own(both):
    run_dir, plain, cascade, _ = both
    samples = RunStore(run_dir).samples()
    plain_ids, cascade_ids = _attack_ids(plain), _attack_ids(cascade)
    assert len(plain_ids) == len(cascade_ids) == len(EPS)
    up_to = np.ones(N, dtype=bool)
    for plain_id, cascade_id in zip(plain_ids, cascade_ids, strict=True):
        up_to &= samples[plain_id]
        assert np.array_equal(samples[cascade_id], up_to)


def test_a_cascade_attacks_only_the_images_standing_at_the_radius_below(both):
    run_dir, plain, cascade, attacked = both
    samples = RunStore(run_dir).samples()
    clean = samples[_clean_id(cascade)]
    standing = clean.copy()
    for cell_id in _attack_ids(cascade):
        assert attacked.get(cell_id, 0) == standing.sum()  # one restart: each standing image attacked once
        standing = samples[cell_id]
    assert sum(attacked[c] for c in _attack_ids(cascade)) < sum(attacked[c] for c in _attack_ids(plain))


def test_the_worst_case_is_the_plain_sweeps(both):
    run_dir, plain, cascade, _ = both
    samples = RunStore(run_dir).samples()
    curves = [
        {round(w.eps, 10): w.vector for w in worst_cases(t[t["attack"] != "clean"], samples)} for t in (plain, cascade)
    ]
    assert curves[0].keys() == curves[1].keys() and len(curves[0]) == len(EPS)
    for eps, vector in curves[0].items():
        assert np.array_equal(vector, curves[1][eps]), eps


def test_a_real_cascade_is_monotone_and_within_the_clean_images(run_dir):
    table = run_sweep(run_dir, _spec(True, "cascade-pgd"), progress=False, arms=["baseline"])
    samples = RunStore(run_dir).samples()
    previous = samples[_clean_id(table)]
    for cell_id in _attack_ids(table):
        assert not (samples[cell_id] & ~previous).any()  # nothing robust at eps that fell at a smaller eps
        previous = samples[cell_id]
    assert previous.sum() < samples[_attack_ids(table)[0]].sum()


def test_the_monotonicity_check_leaves_cascades_out_and_says_so(run_dir):
    table = run_sweep(run_dir, _spec(True, "cascade-only"), progress=False, arms=["baseline"])
    (check,) = [c for c in table.attrs["checks"] if c["name"] == "monotone_in_eps" and c["arm"] == "baseline"]
    assert check["status"].upper() == "WARN" and "outside a radius cascade" in check["detail"]
