"""The repository speaks of the project: no tracked file narrates how it was built or where its machine time came
from, and every document a Markdown file links to is in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TELLTALES = re.compile(
    r"\bsessions?\b|\bleases?\b|\blent\b|device machine|this project's machines?|how (?:it|the toolkit) was built"
    r"|design notes|used to be built|GPU time was obtained",
    re.IGNORECASE,
)
# legitimate uses of the words above: pytest's fixture scope, a POSIX process session
ALLOWED = ('scope="session"', "a session of their own")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    """Files git tracks (git-ignored ones never are), read as text where they are text."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def telltales(text: str) -> list[str]:
    for allowed in ALLOWED:
        text = text.replace(allowed, "")
    return [match.group(0) for match in TELLTALES.finditer(text)]


def test_no_tracked_file_narrates_how_the_toolkit_was_built():
    found = {}
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue
        text = _text(path)
        hits = telltales(text) if text is not None else []
        if hits:
            found[str(path.relative_to(ROOT))] = sorted(set(hits))
    assert not found, found


def test_the_word_list_catches_narration_and_spares_the_allowed_uses():
    assert telltales("No GPU was lent to the session that built it.") == ["lent", "session"]
    assert telltales("On this project's machines it works; see the design notes.") == [
        "this project's machines",
        "design notes",
    ]
    assert telltales('@pytest.fixture(scope="session")') == []


def test_relative_links_in_markdown_resolve():
    broken = []
    for path in tracked_files():
        if path.suffix != ".md":
            continue
        for target in LINK.findall(_text(path) or ""):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same file
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_citation_names_its_authors_and_the_works_it_builds_on():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert (
        cff["cff-version"] == "1.2.0"
        and cff["authors"]
        and all(a.get("name") or a.get("family-names") for a in cff["authors"])
    )
    titles = " | ".join(ref["title"] for ref in cff["references"])
    for work in (
        "JPEG Inspired Deep Learning",
        "ensemble of diverse parameter-free attacks",
        "RobustBench",
        "Torchattacks",
    ):
        assert work in titles, work
    assert all(ref["authors"] and ref["year"] for ref in cff["references"])
