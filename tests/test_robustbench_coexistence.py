"""Installed beside RobustBench 1.1.1, the toolkit changes none of RobustBench's (or AutoAttack's) files, and pip
resolves the two together without a conflict or a pinned requests.

torchattacks 3.5.1, the attack engine before 0.2, ships a top-level ``robustbench/`` of its own and overwrote
RobustBench's ``__init__.py``; the same check is run on it to show that it would catch that. Needs PyPI (skipped
with a reason when offline); slow (about a minute, mostly pip's resolver).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROBUSTBENCH = "robustbench==1.1.1"
NEIGHBOURS = (ROBUSTBENCH, "pyautoattack==0.2.0")
OLD_ENGINE = "torchattacks==3.5.1"
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs", "reports")


def _pip(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def installed_files(site: Path) -> dict[str, dict[str, str]]:
    """Per installed distribution (``name-version``): each file its RECORD lists with a hash -> the file's hash now
    (``missing`` when the file is gone)."""
    out: dict[str, dict[str, str]] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        files: dict[str, str] = {}
        for line in record.read_text().splitlines():
            path, recorded_hash, _size = line.rsplit(",", 2)
            if recorded_hash:
                target = site / path
                files[path] = _record_hash(target) if target.is_file() else "missing"
        out[record.parent.name.removesuffix(".dist-info")] = files
    return out


def changed_files(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    """``dist: path`` of every file of a distribution installed before whose content changed or vanished."""
    return [
        f"{dist}: {path}"
        for dist, files in before.items()
        for path, digest in files.items()
        if after.get(dist, {}).get(path, "missing") != digest
    ]


def _toolkit_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    built = _pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "wheels"), "."], src)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("robustbench_jpeg-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path) -> tuple[Path, Path]:
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    probe = [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    site = Path(subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip())
    return python, site


@pytest.mark.slow
def test_toolkit_leaves_robustbench_intact_and_resolves_with_it(tmp_path):
    if importlib.util.find_spec("venv") is None or importlib.util.find_spec("pip") is None:
        pytest.skip("needs the venv module and pip in the running interpreter")
    downloads = tmp_path / "downloads"
    fetched = _pip(["download", "--no-deps", "-q", "-d", str(downloads), *NEIGHBOURS, OLD_ENGINE], tmp_path, 300)
    if fetched.returncode != 0:
        pytest.skip(f"PyPI not reachable (pip download {ROBUSTBENCH} failed): {fetched.stderr.strip()[-200:]}")
    wheel = _toolkit_wheel(tmp_path)
    python, site = _fresh_venv(tmp_path)

    def install(*requirements: str) -> None:
        args = ["--python", str(python), "install", "--no-deps", "--no-index", "-q", "--find-links", str(downloads)]
        done = _pip([*args, *requirements], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]

    install(*NEIGHBOURS)
    before = installed_files(site)
    assert any(d.startswith("robustbench-1.1.1") for d in before) and changed_files(before, before) == []
    install(str(wheel))
    after = installed_files(site)
    assert changed_files(before, after) == []
    name, toolkit = next((dist, files) for dist, files in after.items() if dist.startswith("robustbench_jpeg-"))
    top_level = {path.split("/")[0] for path in toolkit} - {f"{name}.dist-info", ".."}  # "..": the console script
    assert top_level == {"robustbench_jpeg"}
    others = {path for dist, files in after.items() if not dist.startswith("robustbench_jpeg-") for path in files}
    assert not others & set(toolkit)  # no file that another distribution also claims

    # the check can fail: torchattacks 3.5.1 (the engine before 0.2) overwrites RobustBench's files
    install(OLD_ENGINE)
    assert any(
        change.startswith("robustbench-1.1.1: robustbench/") for change in changed_files(after, installed_files(site))
    )

    # pip resolves RobustBench and the toolkit's full dependency tree together: no conflict, no torchattacks,
    # requests chosen freely (not the 2.25 pin torchattacks imposed)
    report = tmp_path / "resolution.json"
    resolved = _pip(["install", "--dry-run", "--ignore-installed", "-q", "--report", str(report), ROBUSTBENCH,
                     str(wheel)], tmp_path)  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    versions = {
        i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]
    }
    assert versions["robustbench"] == "1.1.1" and "torchattacks" not in versions and "pyautoattack" in versions
    if "requests" in versions:
        assert not versions["requests"].startswith("2.25.")
