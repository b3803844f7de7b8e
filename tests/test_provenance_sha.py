"""The code sha is marked dirty when the package differs from the commit, not when a report or run is written."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from robustbench_jpeg import provenance


@pytest.fixture
def repo(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "robustbench_jpeg").mkdir()
    (tmp_path / "robustbench_jpeg" / "code.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "_REPO_ROOT", tmp_path)
    monkeypatch.delenv("RBJ_GIT_SHA", raising=False)
    return tmp_path


def test_reports_do_not_make_the_sha_dirty_but_code_does(repo):
    clean = provenance.git_sha()
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (repo / "reports").mkdir()
    (repo / "reports" / "report.md").write_text("# new report\n")
    assert provenance.git_sha() == clean
    (repo / "robustbench_jpeg" / "code.py").write_text("x = 2\n")
    assert provenance.git_sha() == clean + "-dirty"
