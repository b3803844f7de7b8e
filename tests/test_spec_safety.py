"""Spec files are read within limits: size, YAML aliases, nesting depth, duplicate keys, a bounded description; a
user's folder may add specs but not silently replace a packaged one; method parameters out of range are refused."""

from __future__ import annotations

import pytest

from robustbench_jpeg.attack.spec import AttackSpec
from robustbench_jpeg.attack.spec_files import MAX_SPEC_BYTES, load_spec, packaged_specs_dir
from robustbench_jpeg.attack.spec_values import AttackSpecError

GOOD = "version: 1\ndescription: fine\nattacks:\n  - {method: fgsm, eps: [1]}\n"


def write(tmp_path, text: str, name: str = "mine.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_spec_still_loads(tmp_path):
    spec = load_spec(str(write(tmp_path, GOOD)))
    assert (spec.name, spec.description, spec.attacks[0].method) == ("mine", "fine", "fgsm")


def test_nested_aliases_are_refused_before_they_expand(tmp_path):
    """The 498-byte bomb of issue 20: each level doubles the last; expanded, it would fill the memory."""
    lines = ["version: 1", 'a0: &a0 ["xxxxxxxxxx"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    text = "\n".join(lines) + "\nattacks:\n  - {method: fgsm, eps: [1]}\n"
    with pytest.raises(AttackSpecError, match=r"mine\.yaml: YAML aliases \(\*a0\) are not accepted"):
        load_spec(str(write(tmp_path, text)))


def test_an_alias_in_the_description_is_refused(tmp_path):
    text = "version: 1\nx: &d hello\ndescription: *d\nattacks:\n  - {method: fgsm, eps: [1]}\n"
    with pytest.raises(AttackSpecError, match="aliases"):
        load_spec(str(write(tmp_path, text)))


@pytest.mark.parametrize("depth", [40, 20_000])
def test_deep_nesting_is_one_error_not_a_recursion_error(tmp_path, depth):
    text = "version: 1\ndescription: " + "[" * depth + "]" * depth + "\nattacks:\n  - {method: fgsm, eps: [1]}\n"
    if len(text) > MAX_SPEC_BYTES:
        with pytest.raises(AttackSpecError, match="larger than"):
            load_spec(str(write(tmp_path, text)))
    else:
        with pytest.raises(AttackSpecError, match="nested deeper than"):
            load_spec(str(write(tmp_path, text)))


def test_deep_nesting_within_the_size_limit(tmp_path):
    text = "version: 1\nattacks:\n  - {method: fgsm, eps: " + "[" * 5000 + "1" + "]" * 5000 + "}\n"
    with pytest.raises(AttackSpecError, match="nested deeper than"):
        load_spec(str(write(tmp_path, text)))


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path):
    text = GOOD + "#" * (MAX_SPEC_BYTES + 10) + "\n"
    with pytest.raises(AttackSpecError, match=r"mine\.yaml is larger than 64 KiB"):
        load_spec(str(write(tmp_path, text)))


@pytest.mark.parametrize(
    "text, key",
    [
        ("version: 1\nattacks:\n  - {method: fgsm, eps: [1], eps: [8]}\n", "'eps'"),
        (
            "version: 1\nattacks:\n  - {method: fgsm, eps: [1]}\nattacks:\n  - {method: pgd, eps: [8]}\n",
            "'attacks'",
        ),
        ("version: 1\nversion: 2\nattacks:\n  - {method: fgsm, eps: [1]}\n", "'version'"),
    ],
)
def test_duplicate_keys_are_refused(tmp_path, text, key):
    with pytest.raises(AttackSpecError, match=f"key {key} appears twice"):
        load_spec(str(write(tmp_path, text)))


@pytest.mark.parametrize("description", ["[1, 2]", "{a: 1}", "12", "'" + "x" * 2001 + "'"])
def test_the_description_must_be_bounded_text(tmp_path, description):
    text = f"version: 1\ndescription: {description}\nattacks:\n  - {{method: fgsm, eps: [1]}}\n"
    with pytest.raises(AttackSpecError, match="'description' must be text of at most 2000 characters"):
        load_spec(str(write(tmp_path, text)))


def test_the_description_is_stored_as_given(tmp_path):
    text = "version: 1\ndescription: 'PGD: 8/255,  two  spaces'\nattacks:\n  - {method: fgsm, eps: [1]}\n"
    assert load_spec(str(write(tmp_path, text))).description == "PGD: 8/255,  two  spaces"


def test_a_huge_linspace_is_refused(tmp_path):
    text = "version: 1\nattacks:\n  - {method: fgsm, eps: {linspace: [1, 8, 100000000]}}\n"
    with pytest.raises(AttackSpecError, match="at most 256"):
        load_spec(str(write(tmp_path, text)))


def test_a_user_spec_named_like_a_packaged_one_needs_its_path(tmp_path, monkeypatch):
    mine = write(tmp_path, "version: 1\nattacks:\n  - {method: fgsm, eps: [3]}\n", "quick.yaml")
    write(tmp_path, GOOD, "extra.yaml")
    monkeypatch.setenv("RBJ_ATTACKS_DIR", str(tmp_path))
    with pytest.raises(AttackSpecError, match=r"has the name of the packaged spec 'quick'; rename the file, or pass"):
        load_spec("quick")
    assert load_spec("extra").name == "extra"  # adding specs is fine
    by_path = load_spec(str(mine))  # the explicit choice: its path
    assert by_path.name == f"quick@{by_path.hash[:8]}" and by_path.path == str(mine)
    assert load_spec(str(packaged_specs_dir() / "quick.yaml")).name == "quick"


def test_a_verbatim_copy_of_a_packaged_spec_keeps_its_name(tmp_path):
    copy = write(tmp_path, (packaged_specs_dir() / "paper-pgd.yaml").read_text(encoding="utf-8"), "paper-pgd.yaml")
    assert load_spec(str(copy)).name == "paper-pgd"


@pytest.mark.parametrize(
    "method, params, message",
    [
        ("apgd-t", {"target_classes": 100000}, "target_classes must be at most 99"),
        ("fab-t", {"target_classes": 100}, "target_classes must be at most 99"),
        ("square", {"p_init": 5}, "p_init must be at most 1"),
    ],
)
def test_method_parameters_out_of_range_are_refused_not_clamped(method, params, message):
    with pytest.raises(AttackSpecError, match=message):
        AttackSpec.from_dict({"method": method, "eps": [8], "params": params})
    assert AttackSpec.from_dict({"method": method, "eps": [8]}).params  # the defaults stay valid
