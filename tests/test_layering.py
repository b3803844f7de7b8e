"""The package's imports flow one way: data -> jpeg -> models -> train -> evaluation -> attack -> report -> cli.

Every import inside ``robustbench_jpeg`` (module level and inside functions) is read from the source and checked
against the layer order below; the shared foundations (run format, provenance, devices, statistics, processes)
may be imported by everyone and import no layer above data. Two rules on top of the order: the judgement
(``evaluation``) imports only the foundations, and the report and export never import attack crafting or training.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustbench_jpeg"
LAYERS = {
    # the foundations
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
    "evaluation": 5,
    "attack": 6,
    "report": 7,
    "export": 7,
    "cli": 8,
    "__main__": 8,
    "__init__": 8,
}
FOUNDATIONS = {name for name, layer in LAYERS.items() if layer == 0}
# what the report and export may not import: how attacks are crafted and run, and training
CRAFTING = {("attack", "crafting"), ("attack", "compute"), ("attack", "sweep"), ("attack", "gradients")}


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
            f"({own_top}): imports must flow data -> jpeg -> models -> train -> evaluation -> attack -> report -> cli"
        )


def _targets(top: str) -> list[tuple[Path, int, tuple[str, ...]]]:
    return [(p, line, t) for p in MODULES if p.relative_to(PACKAGE).parts[0] == top for line, t in _imports(p)]


def test_the_judgement_imports_only_the_foundations():
    """evaluation/ (worst case, comparisons, checks, verdict) imports nothing from attack, train or report."""
    bad = [
        f"{p.relative_to(PACKAGE)}:{line} imports {'.'.join(t)}"
        for p, line, t in _targets("evaluation")
        if t[0] not in FOUNDATIONS and t[0] != "evaluation"
    ]
    assert not bad, bad


@pytest.mark.parametrize("top", ["report", "export"])
def test_report_and_export_never_import_crafting_or_training(top):
    bad = [
        f"{p.relative_to(PACKAGE)}:{line} imports {'.'.join(t)}"
        for p, line, t in _targets(top)
        if t[0] == "train" or t[:2] in CRAFTING or t == ("attack",)
    ]
    assert not bad, bad


def test_no_module_is_too_long_to_read():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
