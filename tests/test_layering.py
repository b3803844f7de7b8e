"""The package's imports flow one way: data -> jpeg -> models -> train -> attack -> sweep -> report -> cli.

Every import inside ``robustbench_jpeg`` (module level and inside functions) is read from the source and checked
against the layer order below; the shared foundations (run format, the run folder's records, provenance, devices,
statistics, processes) may be imported by everyone and import no layer above data. Report and export read what a
sweep wrote; they never import how a sweep runs (``sweep/``) or how an attack crafts (``FORBIDDEN``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustbench_jpeg"
LAYERS = {
    # the foundations
    "run_format": 0,
    "runfolder": 0,
    "provenance": 0,
    "device": 0,
    "stats": 0,
    "distributed": 0,
    # the data flow
    "data": 1,
    "jpeg": 2,
    "models": 3,
    "config": 3,
    "checkpoint": 3,
    "train": 4,
    "attack": 5,
    "sweep": 6,
    "report": 7,
    "export": 7,
    "cli": 8,
    "__main__": 8,
    "__init__": 8,
}
# (importing package, imported module prefix) pairs the layer order alone would allow
FORBIDDEN = [
    (top, banned)
    for top in ("report", "export")
    for banned in (("sweep",), ("attack", "crafting"), ("attack", "gradients"), ("attack", "compute"))
]


def _layer(parts: tuple[str, ...]) -> tuple[str, int]:
    top = parts[0] if parts else "__init__"
    if top == "__version__":  # package metadata, not a module
        return top, 0
    return top, LAYERS[top]


def _imports(path: Path) -> list[tuple[int, tuple[str, ...]]]:
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = rel[: len(rel) - node.level]
                target = base + tuple((node.module or "").split(".")) if node.module else base
            elif node.module and node.module.startswith("robustbench_jpeg"):
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            names = [a.name for a in node.names]
            if not node.module and names:  # "from . import x"
                target = target + (names[0],)
            out.append((node.lineno, tuple(p for p in target if p)))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("robustbench_jpeg."):
                    out.append((node.lineno, tuple(alias.name.split(".")[1:])))
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    own_top, own = _layer(path.relative_to(PACKAGE).with_suffix("").parts)
    if own_top == "__init__":
        return  # the package's public API may gather anything
    for line, target in _imports(path):
        top, layer = _layer(target)
        assert layer <= own or top == own_top, (
            f"{path.relative_to(PACKAGE)}:{line} imports {'.'.join(target)} ({top}, layer {layer}) from layer {own} "
            f"({own_top}): imports must flow data -> jpeg -> models -> train -> attack -> sweep -> report -> cli"
        )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_report_and_export_never_import_the_sweep_or_crafting(path):
    own_top = path.relative_to(PACKAGE).parts[0]
    for line, target in _imports(path):
        for top, banned in FORBIDDEN:
            assert not (own_top == top and target[: len(banned)] == banned), (
                f"{path.relative_to(PACKAGE)}:{line} imports {'.'.join(target)}: {top}/ reads run folders and the "
                "judgement, never how a sweep runs or how an attack crafts"
            )


def test_the_run_folder_records_import_no_layer():
    for path in sorted((PACKAGE / "runfolder").rglob("*.py")):
        for line, target in _imports(path):
            assert _layer(target)[1] == 0, f"{path.relative_to(PACKAGE)}:{line} imports {'.'.join(target)}"


# regular expressions on markup (render, LaTeX) and on run-folder ids are fine; on labels they are not
REGEX_ALLOWED = {"report/render.py", "report/latex.py", "report/load.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_label_is_parsed(path):
    """Tables, figures and exports group, pair and order cells by typed columns; no regex reads a label."""
    rel = str(path.relative_to(PACKAGE))
    if rel.split("/")[0] not in ("report", "export", "sweep", "runfolder") or rel in REGEX_ALLOWED:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "re" not in imported, f"{rel} uses regular expressions; use the typed columns of the cell record"


def test_no_module_is_too_long_to_read():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
