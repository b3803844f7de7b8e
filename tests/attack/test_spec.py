"""Attack specs: units, validation, step-size rules, spec files, hashing."""

from __future__ import annotations

import dataclasses

import pytest

from robustbench_jpeg.attack.spec import (
    AttackSpec,
    AttackSpecError,
    SpecFile,
    parse_step_size,
    resolve_step_size,
)
from robustbench_jpeg.attack.spec_files import list_specs, load_spec, packaged_specs_dir

SHIPPED = (
    "paper-fgsm",
    "paper-pgd",
    "paper-as-run",
    "standard-linf",
    "strong-pgd",
    "l2",
    "adaptive",
    "autoattack",
    "autoattack-bpda",
    "autoattack-l2",
    "square",
    "quick",
)

# The hash of the `quick` spec as it was built in Python before it became specs/quick.yaml, obtained at commit
# 7ce37a0 with `python -c "from robustbench_jpeg.attack.spec import _quick_spec; print(_quick_spec().hash)"`.
# Runs that swept `quick` store this hash in sweep_state.json; a different one would refuse to resume them.
QUICK_HASH_BEFORE_YAML = "055a8249bbf817f6f5048a4e78c4cbfdb3b32cb2"


def test_linf_eps_are_in_255_units_and_l2_absolute():
    a = AttackSpec.from_dict({"method": "pgd", "eps": [1, 8]})
    assert a.eps == (1 / 255, 8 / 255)
    b = AttackSpec.from_dict({"method": "pgd", "norm": "l2", "eps": [0.5]})
    assert b.eps == (0.5,)


def test_linspace_form_matches_the_paper_grid():
    a = AttackSpec.from_dict({"method": "fgsm", "eps": {"linspace": [1, 4, 10]}})
    expected = [1 + 3 * i / 9 for i in range(10)]
    assert [e * 255 for e in a.eps] == pytest.approx(expected, abs=1e-12)
    assert a.eps[0] == 1 / 255 and a.eps[-1] == 4 / 255


def test_defaults_per_method():
    fgsm = AttackSpec(method="fgsm", eps=(4 / 255,))
    assert (fgsm.steps, fgsm.step_size, fgsm.random_start, fgsm.restarts) == (1, "eps", False, 1)
    pgd = AttackSpec(method="pgd", eps=(4 / 255,))
    assert (pgd.steps, pgd.step_size, pgd.random_start) == (20, "2.5*eps/steps", True)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"method": "cw", "eps": [1]}, "unknown attack method"),
        ({"method": "pgd", "eps": [1], "norm": "l1"}, "unknown norm"),
        ({"method": "pgd", "eps": [-1]}, "eps values must be >= 0, got -1/255"),
        ({"method": "pgd", "eps": [300]}, r"outside \[0, 255\]/255"),
        ({"method": "pgd", "eps": [0.5], "norm": "l2", "steps": 0}, "steps must be an integer >= 1"),
        ({"method": "pgd", "eps": [1], "grad": ["soft", "eot"]}, "unknown grad mode"),
        ({"method": "pgd", "eps": [1], "restarts": 0}, "restarts"),
        ({"method": "pgd", "eps": [1], "restarts": 3, "random_start": False}, "without a random start"),
        ({"method": "pgd", "eps": [1], "transfer_from": "teacher"}, "transfer_from"),
        ({"method": "pgd", "eps": [1], "n_examples": 0}, "n_examples"),
        ({"method": "pgd", "eps": [1], "step_size": "fast"}, "cannot read step size"),
        ({"method": "pgd", "eps": [1], "step_size": -2}, "positive"),
        ({"method": "pgd", "eps": [1, 1]}, "duplicate"),
        ({"method": "pgd", "eps": []}, "at least one"),
        ({"method": "fgsm", "eps": [1], "restarts": 2}, "deterministic"),
        ({"method": "fgsm", "eps": [1], "steps": 5}, "exactly one step"),
        ({"method": "fgsm", "eps": [1], "random_start": True}, "no random start"),
        ({"method": "fgsm", "eps": [0.5], "norm": "l2"}, "supports norm linf only"),
        ({"method": "pgd", "eps": [1], "stepz": 3}, "unknown field"),
        ({"method": "pgd", "eps": [128], "norm": "l2"}, "l2 radii are absolute"),
    ],
)
def test_validation_errors_are_clear(fields, message):
    with pytest.raises(AttackSpecError, match=message):
        AttackSpec.from_dict(fields)


def test_step_size_rules():
    assert parse_step_size("2.5 * eps / steps") == "2.5*eps/steps"
    assert resolve_step_size("2.5*eps/steps", 8 / 255, 5, "linf") == (pytest.approx(4 / 255), "2.5*eps/steps")
    assert resolve_step_size("eps/4", 8 / 255, 20, "linf")[0] == pytest.approx(2 / 255)
    assert resolve_step_size("eps", 0.5, 20, "l2")[0] == pytest.approx(0.5)
    # a number is in eps units: 1/255 for linf, absolute for l2
    assert resolve_step_size(parse_step_size("2"), 8 / 255, 20, "linf") == (pytest.approx(2 / 255), "absolute")
    assert resolve_step_size(parse_step_size(0.1), 0.5, 20, "l2") == (pytest.approx(0.1), "absolute")


@pytest.mark.parametrize("name", list_specs())
def test_shipped_specs_load_and_take_overrides(name):
    spec = load_spec(name)
    assert spec.name == name and spec.version >= 1 and spec.description and spec.attacks
    smaller = spec.with_overrides(n_examples=7, seed=3, batch_size=5)  # re-validates every normalised attack
    assert {a.n_examples for a in smaller.attacks} == {7} and smaller.attacks[0].method == spec.attacks[0].method


def test_shipped_spec_contents():
    pgd = load_spec("paper-pgd").attacks[0]
    assert (pgd.method, pgd.steps, pgd.random_start, pgd.step_size) == ("pgd", 5, True, "2.5*eps/steps")
    assert len(pgd.eps) == 10 and pgd.eps[0] == 1 / 255 and pgd.eps[-1] == 4 / 255
    assert resolve_step_size(pgd.step_size, pgd.eps[3], pgd.steps, "linf")[0] == pytest.approx(pgd.eps[3] / 2)
    strong = load_spec("strong-pgd").attacks[0]
    assert (strong.steps, strong.restarts) == (100, 5)
    adaptive = load_spec("adaptive")
    assert {a.transfer_from for a in adaptive.attacks} == {None, "baseline"}
    assert "bpda" in adaptive.attacks[0].grad and "soft" in adaptive.attacks[0].grad
    assert max(load_spec("standard-linf").attacks[1].eps) >= 32 / 255
    assert load_spec("l2").attacks[0].norm == "l2"
    quick = load_spec("quick")
    assert {a.n_examples for a in quick.attacks} == {500}
    assert quick.attacks[1].steps == 5 and "bpda" in quick.attacks[1].grad


def test_quick_yaml_keeps_the_hash_of_the_former_python_spec():
    quick = load_spec("quick")
    assert quick.hash == QUICK_HASH_BEFORE_YAML
    assert quick.path == str(packaged_specs_dir() / "quick.yaml")
    assert quick.description.startswith("Quickstart smoke sweep: FGSM and PGD-5")


def test_specs_are_package_data_and_the_repo_attacks_folder_links_to_them():
    packaged = packaged_specs_dir()
    assert packaged.parent.name == "attack" and packaged.parent.parent.name == "robustbench_jpeg"
    assert sorted(p.stem for p in packaged.glob("*.yaml")) == sorted(SHIPPED)
    repo_link = packaged.parents[2] / "attacks"
    if repo_link.exists() or repo_link.is_symlink():  # a source checkout (not an installed wheel)
        assert repo_link.is_symlink() and repo_link.resolve() == packaged


def test_unknown_spec_lists_available():
    with pytest.raises(AttackSpecError, match="available specs: .*paper-pgd"):
        load_spec("no-such-spec")


def test_spec_by_path_and_env_dir(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text("version: 2\ndescription: x\nattacks:\n  - {method: pgd, eps: [2], steps: 3}\n")
    assert load_spec(str(path)).name == "mine"
    monkeypatch.setenv("RBJ_ATTACKS_DIR", str(tmp_path))
    assert "mine" in list_specs()
    assert load_spec("mine").version == 2
    assert set(SHIPPED) <= set(list_specs())  # the packaged specs stay available beside the user's folder
    assert load_spec("paper-pgd").path == str(packaged_specs_dir() / "paper-pgd.yaml")


def test_user_folder_is_searched_first_but_shadows_a_packaged_spec_only_when_chosen(tmp_path, monkeypatch):
    (tmp_path / "paper-pgd.yaml").write_text("version: 7\ndescription: mine\nattacks:\n  - {method: fgsm, eps: [3]}\n")
    monkeypatch.setenv("RBJ_ATTACKS_DIR", str(tmp_path))
    with pytest.raises(AttackSpecError, match="has the name of the packaged spec"):
        load_spec("paper-pgd")
    mine = load_spec("paper-pgd", directory=tmp_path)  # an explicit folder is a choice; the name says it is another
    assert (mine.version, mine.path, mine.name) == (7, str(tmp_path / "paper-pgd.yaml"), f"paper-pgd@{mine.hash[:8]}")
    assert load_spec("paper-pgd", directory=packaged_specs_dir()).version == 1  # an explicit folder wins over env
    monkeypatch.setenv("RBJ_ATTACKS_DIR", str(tmp_path / "missing"))
    assert load_spec("quick").hash == QUICK_HASH_BEFORE_YAML
    with pytest.raises(AttackSpecError, match=r"missing \(does not exist\)"):
        load_spec("no-such-spec")


@pytest.mark.parametrize(
    "text, message",
    [
        ("attacks:\n  - {method: pgd, eps: [2]}\n", "version"),
        ("version: 1\n", "attacks"),
        ("version: 1\nattacks: []\n", "attacks"),
        ("version: 1\ncolour: red\nattacks:\n  - {method: pgd, eps: [2]}\n", "unknown top-level"),
        ("version: 1\nattacks:\n  - {method: pgd, eps: [-2]}\n", "attack 1"),
        ("version: [1\n", "not valid YAML"),
    ],
)
def test_bad_spec_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(AttackSpecError, match=message):
        load_spec(str(path))


def test_hash_tracks_content_not_batch_size_or_description():
    a = AttackSpec(method="pgd", eps=(2 / 255,), steps=3)
    base = SpecFile(name="s", attacks=(a,))
    assert dataclasses.replace(base, description="other").hash == base.hash
    assert SpecFile(name="s", attacks=(dataclasses.replace(a, batch_size=7),)).hash == base.hash
    assert SpecFile(name="s", attacks=(dataclasses.replace(a, steps=4),)).hash != base.hash
    assert SpecFile(name="s", attacks=(a,), version=2).hash != base.hash


def test_overrides_rename_only_when_cells_change():
    spec = load_spec("paper-pgd")
    assert spec.with_overrides(batch_size=64).name == "paper-pgd"
    assert spec.with_overrides(seed=0).name == "paper-pgd"  # the spec's own seed: nothing changes
    renamed = spec.with_overrides(n_examples=500, seed=1)
    assert renamed.name == "paper-pgd+n500+seed1" and renamed.hash != spec.hash


# --- units, booleans, methods and their parameters ------------------------------------------------------------------


def test_linf_radii_as_fractions_or_in_1_255_units():
    assert AttackSpec.from_dict({"method": "pgd", "eps": ["8/255", 4]}).eps == pytest.approx((8 / 255, 4 / 255))
    assert AttackSpec.from_dict({"method": "pgd", "eps": "1, 2, 8/255"}).eps == pytest.approx(
        (1 / 255, 2 / 255, 8 / 255)
    )
    assert AttackSpec.from_dict({"method": "pgd", "eps": ["0.25/255"]}).eps == pytest.approx((0.25 / 255,))
    assert AttackSpec.from_dict({"method": "pgd", "eps": ["1/2"], "norm": "l2"}).eps == (0.5,)


@pytest.mark.parametrize("written", [0.031, "0.031", 0.1, [0.3]])
def test_torchattacks_style_linf_radius_is_refused_with_the_likely_meaning(written):
    with pytest.raises(AttackSpecError, match=r"1/255 units.*8/255|1/255 units.*/255") as err:
        AttackSpec.from_dict({"method": "fgsm", "eps": written})
    if written in (0.031, "0.031"):
        assert "7.9" in str(err.value) and "8/255" in str(err.value)


@pytest.mark.parametrize("value", ["no", "false", "yes", 1, 0])
def test_booleans_must_be_real_booleans(value):
    with pytest.raises(AttackSpecError, match="true or false"):
        AttackSpec.from_dict({"method": "pgd", "eps": [2], "random_start": value})


def test_yaml_booleans_and_strings(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text('version: 1\nattacks:\n  - {method: pgd, eps: [2], random_start: "no"}\n')
    with pytest.raises(AttackSpecError, match="random_start must be true or false"):
        load_spec(str(path))
    path.write_text("version: 1\nattacks:\n  - {method: pgd, eps: [2], random_start: no}\n")
    assert load_spec(str(path)).attacks[0].random_start is False


def test_methods_have_their_own_defaults_and_parameters():
    from robustbench_jpeg.attack.methods import METHODS

    assert {"fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square"} <= set(METHODS)
    apgd_t = AttackSpec.from_dict({"method": "apgd-t", "eps": [8]})
    assert (apgd_t.steps, dict(apgd_t.params), apgd_t.random_start) == (100, {"target_classes": 9}, True)
    square = AttackSpec.from_dict({"method": "square", "eps": [8], "params": {"p_init": 0.5}})
    assert (square.steps, dict(square.params)) == (5000, {"p_init": 0.5})
    assert AttackSpec.from_dict({"method": "fab-t", "eps": [0.5], "norm": "l2"}).norm == "l2"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"method": "apgd-t", "eps": [8], "params": {"targets": 9}}, "has no parameter"),
        ({"method": "apgd-t", "eps": [8], "params": {"target_classes": 0}}, ">= 1"),
        ({"method": "apgd-t", "eps": [8], "params": {"target_classes": 2.5}}, "integer"),
        ({"method": "apgd-ce", "eps": [8], "step_size": "eps/4"}, "chooses its own step size"),
        ({"method": "apgd-ce", "eps": [8], "random_start": False}, "always starts from a random point"),
        ({"method": "square", "eps": [8], "transfer_from": "baseline"}, "needs no gradient"),
        ({"method": "pgd", "eps": [8], "grad": 5}, "grad must name"),
        ({"method": "pgd", "eps": [8], "grad": ["surrogate"]}, "needs surrogate_alpha"),
        ({"method": "pgd", "eps": [8], "surrogate_alpha": 1.0}, "only used with grad 'surrogate'"),
        ({"method": "pgd", "eps": [8], "eval_alpha": -1}, "eval_alpha must be a positive"),
        ({"method": "pgd", "eps": [8], "params": [1]}, "params must be a mapping"),
    ],
)
def test_method_parameters_are_validated(fields, message):
    with pytest.raises(AttackSpecError, match=message):
        AttackSpec.from_dict(fields)


def test_chains_must_share_their_cells_definition():
    first = AttackSpec(method="apgd-ce", eps=(8 / 255,), chain="aa")
    with pytest.raises(AttackSpecError, match="same eps"):
        SpecFile(name="s", attacks=(first, AttackSpec(method="square", eps=(4 / 255,), chain="aa")))
    with pytest.raises(AttackSpecError, match="same grad"):
        SpecFile(
            name="s", attacks=(first, AttackSpec(method="apgd-t", eps=(8 / 255,), chain="aa", grad=("soft", "bpda")))
        )
    assert SpecFile(name="s", attacks=(first, AttackSpec(method="square", eps=(8 / 255,), chain="aa"))).attacks


def test_spec_hashes_are_unchanged_by_the_new_optional_fields():
    """Specs that use no new field keep the hash they had before the fields existed (computed with the previous
    spec.py at commit 7ce37a0), so run folders do not refuse an unchanged spec."""
    assert load_spec("paper-pgd").hash == "752009478ca0d551219ca772cd6669ed051e1d15"
    assert load_spec("paper-fgsm").hash == "7b192a12b796db7f4276aa9fbdde8cdfad7639cc"
