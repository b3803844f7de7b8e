"""Spec files: the packaged ones (``attacks/`` in the repository links to them) and a folder of your own.

``$RBJ_ATTACKS_DIR`` is searched first, then the specs shipped inside the package, so a wheel install finds every
spec the README names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from .spec import AttackSpec, SpecFile
from .spec_values import AttackSpecError

__all__ = ["packaged_specs_dir", "attacks_dir", "list_specs", "load_spec", "as_specfile"]


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
    packaged specs (``paper-pgd``, ``quick``, ...; see :func:`packaged_specs_dir`).

    Raises:
        AttackSpecError: unknown name (the message lists the available specs), unreadable or invalid file.
    """
    import yaml

    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text
    if not looks_like_path:
        folders = _spec_dirs(directory)
        candidates = [folder / f"{text}{ext}" for folder in folders for ext in (".yaml", ".yml")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            looked = ", ".join(str(f) if f.is_dir() else f"{f} (does not exist)" for f in folders)
            raise AttackSpecError(
                f"unknown attack spec {text!r}; available specs: {', '.join(list_specs(directory)) or '(none)'} "
                f"(looked in {looked}; set RBJ_ATTACKS_DIR to a folder of your own specs or pass a path to a .yaml "
                "file)"
            )
        path = found
    if not path.is_file():
        raise AttackSpecError(f"attack spec file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise AttackSpecError(f"attack spec {path} is not UTF-8 text; save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise AttackSpecError(f"attack spec {path} is not valid YAML: {exc}") from None
    return SpecFile.from_mapping(data, name=path.stem, path=str(path))


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
