"""The package's imports flow one way: data -> jpeg -> models -> train -> evaluation -> attack -> sweep -> report ->
cli; and every function is short enough to read at a glance.

Every import inside ``robustbench_jpeg`` (module level and inside functions) is read from the source and checked
against the layer order below; the shared foundations (the run folder with its typed cell record, provenance,
devices, statistics, processes) may be imported by everyone and import no layer above data. Rules on top of the
order: the judgement (``evaluation``) imports only the foundations; the report and export read run folders and the
judgement, and never import what an attack is or how it runs (``attack``, ``sweep``) or training; no regex reads a
label.
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
    "outputs": 0,
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
    "sweep": 7,
    "report": 8,
    "export": 8,
    "cli": 9,
    "__main__": 9,
    "__init__": 9,
}
FOUNDATIONS = {name for name, layer in LAYERS.items() if layer == 0}
# what the report and export may not import: what an attack is and how a sweep runs, and training
NOT_FOR_READERS = {"attack", "sweep", "train"}


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
            f"({own_top}): imports must flow data -> jpeg -> models -> train -> evaluation -> attack -> sweep -> "
            "report -> cli"
        )


def _targets(top: str) -> list[tuple[Path, int, tuple[str, ...]]]:
    return [(p, line, t) for p in MODULES if p.relative_to(PACKAGE).parts[0] == top for line, t in _imports(p)]


def test_the_judgement_imports_only_the_foundations():
    """evaluation/ (worst case, comparisons, checks, verdict) imports nothing from attack, sweep, train or report."""
    bad = [
        f"{p.relative_to(PACKAGE)}:{line} imports {'.'.join(t)}"
        for p, line, t in _targets("evaluation")
        if t[0] not in FOUNDATIONS and t[0] != "evaluation"
    ]
    assert not bad, bad


@pytest.mark.parametrize("top", ["report", "export"])
def test_report_and_export_never_import_attacks_sweeps_or_training(top):
    bad = [
        f"{p.relative_to(PACKAGE)}:{line} imports {'.'.join(t)}"
        for p, line, t in _targets(top)
        if t[0] in NOT_FOR_READERS
    ]
    assert not bad, bad


# regular expressions on markup (render, LaTeX) and on run-folder ids are fine; on labels they are not
REGEX_ALLOWED = {"report/render.py", "report/latex.py", "report/load.py"}


MAX_FUNCTION_LINES = 60


def _function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """(name, line, length) of every function and method: its body's lines, the docstring not counted."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            docstring = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
            first = body[1] if docstring and len(body) > 1 else body[0]
            out.append((node.name, node.lineno, node.end_lineno - first.lineno + 1))
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_are_short_enough_to_read(path):
    """No function or method body is longer than about a screen (the module itself may be as long as it needs)."""
    long = [(name, line, n) for name, line, n in _function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(PACKAGE)}: functions over {MAX_FUNCTION_LINES} lines: {long}"
