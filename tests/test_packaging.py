"""Packaging: project metadata."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pyproject_version() -> str:
    return re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)


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
    (paper,) = cff["references"]
    assert paper["title"] == "JPEG Inspired Deep Learning" and paper["year"] == 2025
    assert [a["family-names"] for a in paper["authors"]] == ["Salamah", "Zheng", "Liu", "Yang"]
    assert "ICLR 2025" in paper["conference"]["name"]
    assert {"type": "other", "value": "arXiv:2410.07081", "description": "arXiv identifier"} in paper["identifiers"]
