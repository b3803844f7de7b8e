"""The package's imports flow one way: data -> jpeg -> models -> train -> attack -> report -> cli.

Every import inside ``robustbench_jpeg`` (module level and inside functions) is read from the source and checked
against the layer order below; the shared foundations (run format, provenance, devices, statistics, processes)
may be imported by everyone and import no layer above data.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustbench_jpeg"
LAYERS = {
    # the foundations
    "run_format": 0,
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
    "attack": 5,
    "report": 6,
    "export": 6,
    "cli": 7,
    "__main__": 7,
    "__init__": 7,
}


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
            f"({own_top}): imports must flow data -> jpeg -> models -> train -> attack -> report -> cli"
        )


def test_no_module_is_too_long_to_read():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
