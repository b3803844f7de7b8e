"""Output folders of ``report`` and ``export``: they never overwrite what they did not write.

An output folder records what its writer put there in ``jpeg-robust-output.json`` (the writer, the files, whether
the last write finished). Before writing, :func:`claim_output` refuses a folder that holds a run, or files that no
earlier write of the same writer recorded, unless ``force`` is set; a run folder is refused even then (its cards
and results are never overwritten by an export or a report). :func:`finish_output` records the files afterwards.

A write that stopped half-way (kill, full disk) leaves the record marked unfinished; the next write of the same
writer accepts the files it left, and only those: files that were already there and not its own (written under
``force``) stay foreign.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .provenance import atomic_write_json
from .runfolder.names import CARD_NAME, CONFIG_NAME, RESULTS_NAME, STATE_NAME

__all__ = ["OUTPUT_RECORD", "OutputFolderError", "OutputClaim", "claim_output", "finish_output", "release_output"]

OUTPUT_RECORD = "jpeg-robust-output.json"
_MAX_LISTED = 10_000  # files listed in a record; a folder with more is not one of ours
_RUN_MARKERS = (RESULTS_NAME, CONFIG_NAME, STATE_NAME)


class OutputFolderError(ValueError):
    """An output folder that must not be written; the message names it and the fix."""


@dataclass(frozen=True)
class OutputClaim:
    """What a writer found in its output folder before writing.

    Attributes:
        folder: the output folder.
        writer: ``report`` or ``export``.
        ours: files (relative, POSIX) an earlier write of this writer recorded.
        foreign: files that were there and are not ours (only non-empty under ``force``).
        created: the folder did not exist before.
    """

    folder: Path
    writer: str
    ours: tuple[str, ...]
    foreign: tuple[str, ...]
    created: bool = False


def claim_output(folder: Path, writer: str, force: bool = False) -> OutputClaim:
    """Check ``folder`` before ``writer`` writes into it, and mark it as being written (see the module doc).

    Raises:
        OutputFolderError: a file, a run folder, or (without ``force``) a folder holding files ``writer`` did not
            write; a record that cannot be written.
    """
    folder = Path(folder)
    created = not folder.exists()
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"--out {folder} is a file, not a folder; choose a folder")
    present = _files(folder)
    record = _read_record(folder)
    if record is not None and record.get("writer") != writer:
        record = None  # another writer's output is foreign to this one
    ours = set(record.get("files", [])) if record else set()
    ours |= {f for f in present if f.startswith(f".{OUTPUT_RECORD}.") and f.endswith(".tmp")}  # the record's own
    # temporary file (provenance.atomic_write_bytes): a write killed before its first record landed left it
    if record and not record.get("complete", False):  # a write that stopped: what it left is ours
        ours |= present - set(record.get("foreign", []))
    marker = _run_marker(folder, ours)
    if marker is not None:
        raise OutputFolderError(
            f"--out {folder} holds a run ({marker}); {writer} never writes into a run folder: choose another --out"
        )
    foreign = sorted(present - ours)
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputFolderError(
            f"--out {folder} holds files that jpeg-robust {writer} did not write ({shown}); choose a new or empty "
            f"folder, or pass --force to write into it anyway"
        )
    ours = _remove_leftovers(folder, ours & present)
    claim = OutputClaim(folder, writer, ours=tuple(sorted(ours)), foreign=tuple(foreign), created=created)
    _write_record(claim, complete=False, files=claim.ours)
    return claim


def finish_output(claim: OutputClaim) -> None:
    """Record every file now in the folder, except the foreign ones, as written by ``claim.writer``."""
    mine = sorted(_files(claim.folder) - set(claim.foreign))
    _write_record(claim, complete=True, files=tuple(mine))


def release_output(claim: OutputClaim) -> None:
    """After a write that failed: the record as it was if nothing was written (no record and no folder, if the
    folder is new); else the record stays unfinished, so the next write takes over what this one left."""
    if _files(claim.folder) - set(claim.ours) - set(claim.foreign):
        return
    if claim.ours or claim.foreign:
        _write_record(claim, complete=True, files=claim.ours)
        return
    (claim.folder / OUTPUT_RECORD).unlink(missing_ok=True)
    if claim.created:
        try:
            claim.folder.rmdir()  # only if empty
        except OSError:
            pass


def _remove_leftovers(folder: Path, ours: set[str]) -> set[str]:
    """``ours`` without the temporary files and folders (hidden names) a killed write of ours left; they are
    deleted (the writers never publish a hidden name)."""
    leftovers = {f for f in ours if any(part.startswith(".") for part in f.split("/"))}
    for name in sorted(leftovers):
        (folder / name).unlink(missing_ok=True)
    for name in sorted({str(Path(f).parent) for f in leftovers}, key=len, reverse=True):
        parent = folder / name
        while parent != folder and parent.is_dir() and not parent.is_symlink() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return ours - leftovers


def _run_marker(folder: Path, ours: set[str]) -> str | None:
    """The first file that makes ``folder`` a run folder (results, config, sweep state, an arm's card), if any;
    files of ``ours`` (an export's ``<arm>/card.json``) do not count."""
    if not folder.is_dir():
        return None
    candidates = [*_RUN_MARKERS, *(f"{c.name}/{CARD_NAME}" for c in sorted(folder.iterdir()) if c.is_dir())]
    return next((name for name in candidates if name not in ours and (folder / name).exists()), None)


def _files(folder: Path) -> set[str]:
    """Every entry below ``folder`` that is not a folder (files, links, others), relative and in POSIX form."""
    found: set[str] = set()
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            found.add((rel / name).as_posix())
            if len(found) > _MAX_LISTED:
                raise OutputFolderError(
                    f"--out {folder} holds more than {_MAX_LISTED} files; choose a new or empty folder"
                )
    found.discard(OUTPUT_RECORD)
    return found


def _read_record(folder: Path) -> dict | None:
    path = folder / OUTPUT_RECORD
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return record


def _write_record(claim: OutputClaim, complete: bool, files: tuple[str, ...]) -> None:
    record = {
        "writer": claim.writer,
        "complete": complete,
        "files": list(files),
        "foreign": list(claim.foreign),
        "about": f"files written by jpeg-robust {claim.writer}; it overwrites only these",
    }
    try:
        claim.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(claim.folder / OUTPUT_RECORD, record)
    except OSError as exc:
        fix = "free space and run the same command again" if exc.errno == errno.ENOSPC else "choose a writable folder"
        raise OutputFolderError(f"cannot write into --out {claim.folder}: {exc.strerror or exc}; {fix}") from None
