"""Packaging: a built wheel carries the attack specs and runs an attack outside the repository; project metadata."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# Every spec the README and docs/attacks.md name; all must ship inside the wheel.
README_SPECS = (
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
# The `quick` spec's hash before it became a YAML file (how it was obtained: tests/attack/test_spec.py).
QUICK_HASH_BEFORE_YAML = "055a8249bbf817f6f5048a4e78c4cbfdb3b32cb2"
# Not needed to build, and large or machine-specific (see .gitignore).
_NOT_SOURCE = (".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
               ".devdata", ".whl", "gpu_out", "reports")  # fmt: skip


def _pyproject_version() -> str:
    return re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RBJ_ATTACKS_DIR", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env or _clean_env(), capture_output=True, text=True, timeout=300)
    shown = " ".join(map(str, cmd))
    assert result.returncode == 0, f"{shown} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _dependency_dirs() -> list[str]:
    """Where the running interpreter finds the installed dependencies (torch, torchattacks, ...)."""
    paths = sysconfig.get_paths()
    dirs = [paths["purelib"], paths["platlib"], *site.getsitepackages()]
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


@pytest.mark.slow
def test_wheel_ships_the_specs_and_attacks_outside_the_repo(tmp_path):
    if importlib.util.find_spec("venv") is None or importlib.util.find_spec("pip") is None:
        pytest.skip("needs the venv module and pip in the running interpreter to build and install a wheel")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert REPO not in outside.resolve().parents

    # 1. build the wheel from a copy of the worktree (a stale build/ folder in the worktree could leak into it)
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."], src)
    (wheel,) = wheels.glob("robustbench_jpeg-*.whl")
    assert wheel.name.startswith(f"robustbench_jpeg-{_pyproject_version()}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for spec in README_SPECS:
        assert f"robustbench_jpeg/attack/specs/{spec}.yaml" in names
    assert any(n.startswith("robustbench_jpeg/data/cifar100_mini/") for n in names)

    # 2. a fresh venv with only the wheel installed; the dependencies come from this interpreter's site-packages
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    venv_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          outside).stdout.strip())  # fmt: skip
    (venv_site / "_rbj_test_deps.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], outside)  # fmt: skip
    cli = str(bindir / "jpeg-robust")

    # 3. the installed package (not the repo) lists and loads every spec the README names
    assert _run([cli, "--version"], outside).stdout.strip() == f"jpeg-robust {_pyproject_version()}"
    probe = (
        "import json, robustbench_jpeg\n"
        "from robustbench_jpeg.attack.spec_files import list_specs, load_spec\n"
        f"names = {list(README_SPECS)!r}\n"
        "print(json.dumps({'package': robustbench_jpeg.__file__, 'listed': list_specs(),\n"
        "                  'loaded': {n: [load_spec(n).path, load_spec(n).hash] for n in names}}))\n"
    )
    info = json.loads(_run([str(python), "-c", probe], outside).stdout)
    installed = venv_site / "robustbench_jpeg"
    assert Path(info["package"]).resolve() == (installed / "__init__.py").resolve()
    assert set(README_SPECS) <= set(info["listed"])
    for name, (path, _hash) in info["loaded"].items():
        assert Path(path).resolve() == (installed / "attack" / "specs" / f"{name}.yaml").resolve()
    assert info["loaded"]["quick"][1] == QUICK_HASH_BEFORE_YAML
    help_text = _run([cli, "attack", "--help"], outside, env={**_clean_env(), "COLUMNS": "2000"}).stdout
    assert all(name in help_text for name in README_SPECS)  # (wide: argparse would wrap at hyphens)

    # 4. a tiny pair trained with the source package, attacked with the wheel's CLI
    run = tmp_path / "run"
    source_env = {**_clean_env(), "PYTHONPATH": str(REPO)}
    _run([sys.executable, "-m", "robustbench_jpeg", "train", "--model", "tiny", "--dataset", "cifar100-mini",
          "--epochs", "1", "--train-subset", "256", "--device", "cpu", "--no-progress", "--out", str(run)],
         outside, env=source_env)  # fmt: skip
    _run([cli, "attack", "--run", str(run), "--spec", "paper-pgd", "--n-examples", "20", "--device", "cpu",
          "--no-progress"], outside)  # fmt: skip
    state = json.loads((run / "sweep_state.json").read_text())
    entry = state["specs"]["paper-pgd+n20"]
    assert Path(entry["path"]).resolve() == (installed / "attack" / "specs" / "paper-pgd.yaml").resolve()
    rows = (run / "results.csv").read_text().splitlines()
    # header, a clean cell per arm on the 20 images and on the whole test set, PGD-5 at 10 radii per arm
    assert len(rows) == 1 + 2 * 2 + 2 * 10


def test_license_is_mit_as_pyproject_says():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the robustbench-jpeg authors" in text
    assert re.search(r'^license = \{ text = "MIT" \}', (REPO / "pyproject.toml").read_text(), re.M)


def test_citation_cff_is_valid_yaml_with_the_project_version():
    from robustbench_jpeg import __version__

    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["title"] == "robustbench-jpeg" and cff["license"] == "MIT" and cff["authors"]
    assert cff["version"] == _pyproject_version() == __version__
    assert isinstance(cff["abstract"], str) and "\n" not in cff["abstract"].strip()
    paper = cff["references"][0]  # the JPEG-DL paper first, then the works the toolkit builds on (tests/test_docs.py)
    assert paper["title"] == "JPEG Inspired Deep Learning" and paper["year"] == 2025
    assert [a["family-names"] for a in paper["authors"]] == ["Salamah", "Zheng", "Liu", "Yang"]
    assert "ICLR 2025" in paper["conference"]["name"]
    assert {"type": "other", "value": "arXiv:2410.07081", "description": "arXiv identifier"} in paper["identifiers"]


def test_ci_runs_the_readme_commands_and_installs_without_pins_to_lift():
    readme = (REPO / "README.md").read_text()
    install_and_run, test_command = re.search(r"## Quickstart\n\n```bash\n(.*?)```", readme, re.S).group(1).splitlines()
    assert install_and_run.split(" && ") == ["pip install -e .", "jpeg-robust quickstart"]
    assert test_command.split(" && ") == ['pip install -e ".[test]"', "pytest"]
    ci = (REPO / ".ci" / "run").read_text()
    ci_steps = [line for line in ci.splitlines() if line.startswith("pip install")][-1].split(" && ")
    remaining = iter(ci_steps)
    assert all(step in remaining for step in test_command.split(" && ")), ci_steps  # same steps, same order
    assert ci_steps[-1] == "pytest" and "pip check" in ci.splitlines()
    assert "requests" not in ci


def test_default_install_leaves_torchattacks_and_requests_to_the_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=~!\[ ]", requirement, maxsplit=1)[0] for requirement in project["dependencies"]]
    assert "pyautoattack" in names and "torchattacks" not in names and "requests" not in names
    assert any(r.startswith("torchattacks") for r in project["optional-dependencies"]["torchattacks"])
    assert any(r.startswith("torchattacks") for r in project["optional-dependencies"]["test"])
