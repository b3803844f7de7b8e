"""Spec files: the packaged ones (``attacks/`` in the repository links to them) and a folder of your own.

``$RBJ_ATTACKS_DIR`` is searched first, then the specs shipped inside the package, so a wheel install finds every
spec the README names. A file there may add specs but not silently replace a packaged one: a name that would shadow a
packaged spec is refused unless the file is given by its path (or its folder passed explicitly), and such a spec then
runs under the name ``<name>@<hash8>`` so its results never carry the packaged name.

Spec files are read defensively (:func:`read_spec_yaml`): at most :data:`MAX_SPEC_BYTES`, no YAML aliases or anchors,
at most :data:`MAX_SPEC_DEPTH` levels of nesting, no duplicate keys.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .spec import AttackSpec, SpecFile
from .spec_values import AttackSpecError

__all__ = [
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "packaged_specs_dir",
    "attacks_dir",
    "list_specs",
    "load_spec",
    "read_spec_yaml",
    "as_specfile",
]

MAX_SPEC_BYTES = 64 * 1024  # the largest packaged spec is under 2 KiB
MAX_SPEC_DEPTH = 16  # levels of nested mappings and lists (a spec needs 4)


def packaged_specs_dir() -> Path:
    """The spec files shipped inside the package (``robustbench_jpeg/attack/specs``; ``attacks/`` in the repo is a
    symlink to it)."""
    return Path(__file__).resolve().parent / "specs"


def attacks_dir() -> Path:
    """The first folder searched for spec files: ``$RBJ_ATTACKS_DIR`` when set, else the packaged specs."""
    env = os.environ.get("RBJ_ATTACKS_DIR")
    return Path(env).expanduser() if env else packaged_specs_dir()


def _spec_dirs(directory: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched in order: ``directory`` (else ``$RBJ_ATTACKS_DIR``), if any, then the packaged specs."""
    first = Path(directory).expanduser() if directory is not None else attacks_dir()
    packaged = packaged_specs_dir()
    return [first] if first.resolve() == packaged else [first, packaged]


def list_specs(directory: str | os.PathLike | None = None) -> list[str]:
    """Names of the spec files in ``directory`` (else ``$RBJ_ATTACKS_DIR``) and in the packaged specs, sorted."""
    names: set[str] = set()
    for folder in _spec_dirs(directory):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
            names.update(p.stem for p in folder.glob("*.yml"))
    return sorted(names)


def load_spec(name_or_path: str | os.PathLike, directory: str | os.PathLike | None = None) -> SpecFile:
    """Load a spec by name or by file path.

    A name resolves to ``<name>.yaml`` (or ``.yml``) in ``directory`` (else ``$RBJ_ATTACKS_DIR``) first, then in the
    packaged specs (``paper-pgd``, ``quick``, ...; see :func:`packaged_specs_dir`). A file of ``$RBJ_ATTACKS_DIR``
    named like a packaged spec is refused (give its path, or rename it); a file given by path or found in an
    explicit ``directory`` that bears a packaged name but differs from it is named ``<name>@<hash8>``.

    Raises:
        AttackSpecError: unknown name (the message lists the available specs), unreadable or invalid file.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text
    if not looks_like_path:
        path = _find_by_name(text, directory)
    if not path.is_file():
        raise AttackSpecError(f"attack spec file {path} does not exist")
    spec = SpecFile.from_mapping(read_spec_yaml(path), name=path.stem, path=str(path))
    return _distinct_from_packaged(spec, path)


def _find_by_name(name: str, directory: str | os.PathLike | None) -> Path:
    folders = _spec_dirs(directory)
    candidates = [folder / f"{name}{ext}" for folder in folders for ext in (".yaml", ".yml")]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        looked = ", ".join(str(f) if f.is_dir() else f"{f} (does not exist)" for f in folders)
        raise AttackSpecError(
            f"unknown attack spec {name!r}; available specs: {', '.join(list_specs(directory)) or '(none)'} "
            f"(looked in {looked}; set RBJ_ATTACKS_DIR to a folder of your own specs or pass a path to a .yaml "
            "file)"
        )
    packaged = packaged_specs_dir()
    shadowed = any((packaged / f"{name}{ext}").is_file() for ext in (".yaml", ".yml"))
    if directory is None and shadowed and found.resolve().parent != packaged:
        raise AttackSpecError(
            f"{found} (in RBJ_ATTACKS_DIR) has the name of the packaged spec {name!r}; rename the file, or pass its "
            f"path (--spec {found}) to run it under the name {name}@<hash>"
        )
    return found


def _distinct_from_packaged(spec: SpecFile, path: Path) -> SpecFile:
    """``spec``, renamed ``<name>@<hash8>`` if it bears a packaged spec's name but is another file with other cells."""
    packaged = packaged_specs_dir()
    twin = next(
        (packaged / f"{spec.name}{ext}" for ext in (".yaml", ".yml") if (packaged / f"{spec.name}{ext}").is_file()),
        None,
    )
    if twin is None or path.resolve() == twin.resolve():
        return spec
    original = SpecFile.from_mapping(read_spec_yaml(twin), name=twin.stem, path=str(twin))
    if original.hash == spec.hash:
        return spec
    return dataclasses.replace(spec, name=f"{spec.name}@{spec.hash[:8]}")


def read_spec_yaml(path: Path) -> Any:
    """The YAML document of spec file ``path``, read within the limits (size, no aliases, depth, unique keys).

    Raises:
        AttackSpecError: too large, not UTF-8, not valid YAML, or outside the limits; the message names the file.
    """
    import yaml

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise AttackSpecError(f"attack spec {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise AttackSpecError(
            f"attack spec {path} is larger than {MAX_SPEC_BYTES // 1024} KiB; a spec lists a few attacks, split it"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AttackSpecError(f"attack spec {path} is not UTF-8 text; save it as UTF-8") from None
    try:
        loader = _SpecLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _SpecLimitError as exc:
        raise AttackSpecError(f"attack spec {path}: {exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise AttackSpecError(f"attack spec {path} is not valid YAML: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def as_specfile(specs: SpecFile | AttackSpec | Sequence[AttackSpec] | str, name: str = "cli") -> SpecFile:
    """A :class:`SpecFile` from a spec file object, a name or path, or attacks (named ``name``; the default ``cli``
    becomes ``cli-<hash8>``, so different ad-hoc calls never share a spec name)."""
    if isinstance(specs, SpecFile):
        return specs
    if isinstance(specs, str):
        return load_spec(specs)
    attacks = (specs,) if isinstance(specs, AttackSpec) else tuple(specs)
    spec = SpecFile(name=name, attacks=attacks, version=1, description="")
    return dataclasses.replace(spec, name=f"cli-{spec.hash[:8]}") if name == "cli" else spec


# --- a YAML loader within limits ----------------------------------------------------------------------------------


class _SpecLimitError(ValueError):
    """A spec file outside the reader's limits (alias, depth, duplicate key)."""


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags that run code) that also refuses aliases, deep nesting and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _SpecLimitError(
                f"YAML aliases (*{self.peek_event().anchor}) are not accepted in spec files; write the values out"
            )
        self._depth += 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                raise _SpecLimitError(f"nested deeper than {MAX_SPEC_DEPTH} levels; a spec needs four")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise _SpecLimitError(f"a mapping key must be a plain value, got {key!r}") from None
            if duplicate:
                raise _SpecLimitError(
                    f"key {key!r} appears twice in one mapping (line {key_node.start_mark.line + 1}); keep one"
                )
        return super().construct_mapping(node, deep=deep)
