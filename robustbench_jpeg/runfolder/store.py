"""The attack's side of a run folder: ``RunStore`` writes ``results.csv``, the per-image records, the sweep state.

:class:`RunStore` is a :class:`~robustbench_jpeg.runfolder.folder.RunFolder` that may also write, and it is the only
code that repairs a run folder:

* ``results.csv`` gets one appended line per finished cell (a rerun of a cell appends a newer line, which wins;
  :meth:`RunStore.compact` rewrites the file once without the superseded lines). A line cut short by a crash is
  dropped on the next read, with a warning, and its cell is recomputed.
* ``samples.bin`` holds the per-image correctness of every cell (format: :mod:`.records`). A damaged record is
  healed once: the file is rewritten with the intact records only (those after the damage included), so the
  damaged cells lack a record and are recomputed by this attack, once.
* Rows of an older row format, or whose fingerprints are not the arms' current weights, are moved to
  ``results-stale.csv`` (:meth:`RunStore.set_aside_stale`).
* ``sweep_state.json`` (:class:`SweepState`) remembers each spec's hash, so a changed spec under an old name is
  refused, and ``diagnostics.json`` the per-arm gradient statistics.

Appends never follow a link (:mod:`.files`); new files are written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..provenance import atomic_write_bytes, atomic_write_text, exclusive_lock, now_iso
from .files import append_bytes, read_bytes
from .folder import RunFolder, StoreWarning, stale_rows
from .names import (
    ATTACK_LOCK,
    CHECKS_NAME,
    DIAGNOSTICS_NAME,
    RESULT_COLUMNS,
    ROW_FORMAT,
    STATE_NAME,
    RunFormatError,
    dumps_json,
)
from .records import csv_line, pack_record, parse_results, read_results

__all__ = [
    "RunStore",
    "SweepState",
    "SpecEntry",
    "StoreWarning",
    "SweepLockedError",
    "read_results",
    "pack_record",
]

STATE_FORMAT = 2
STALE_NAME = "results-stale.csv"


class SweepLockedError(RuntimeError):
    """Another attack sweep holds the run folder."""


# --- sweep state --------------------------------------------------------------------------------------------------


@dataclass
class SpecEntry:
    """What a run folder remembers about one spec."""

    hash: str
    version: int
    description: str
    path: str | None
    attacks: list[dict[str, Any]]
    cells: list[str]
    finished: bool = False
    created: str = ""
    updated: str = ""


@dataclass
class SweepState:
    """``sweep_state.json``: each spec's hash and cells (docs/run-format.md)."""

    specs: dict[str, SpecEntry] = field(default_factory=dict)
    format: int = STATE_FORMAT

    @classmethod
    def read(cls, path: Path) -> SweepState:
        data = read_bytes(path)
        if data is None:
            return cls()
        fix = "it only remembers spec hashes; delete it to start the bookkeeping afresh (a changed spec would then go "
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFormatError(f"{path} is not valid JSON ({exc}); {fix}unnoticed once)") from None
        if not isinstance(raw, dict):
            raise RunFormatError(f"{path} does not hold a JSON object; {fix}unnoticed once)")
        try:
            specs = {
                name: SpecEntry(**{k: v for k, v in entry.items() if k in _ENTRY_FIELDS})
                for name, entry in raw.get("specs", {}).items()
            }
        except (TypeError, AttributeError) as exc:
            raise RunFormatError(
                f"{path}: a spec entry is malformed ({exc}); delete the file to start the bookkeeping afresh"
            ) from None
        return cls(specs=specs)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "specs": {k: dataclasses.asdict(v) for k, v in self.specs.items()}}


_ENTRY_FIELDS = {f.name for f in dataclasses.fields(SpecEntry)}


# --- the store ----------------------------------------------------------------------------------------------------


class RunStore(RunFolder):
    """Reads and writes the attack files of one run folder. Only one process (rank 0) writes."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        super().__init__(run_dir)
        self.run_dir = self.path
        self.state_path = self.file(STATE_NAME)
        self.checks_path = self.file(CHECKS_NAME)
        self.diagnostics_path = self.file(DIAGNOSTICS_NAME)
        self._vectors: dict[str, np.ndarray] | None = None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with exclusive_lock(
            self.file(ATTACK_LOCK),
            busy=SweepLockedError(f"another attack sweep is running on {self.run_dir}; wait for it to finish"),
        ):
            yield

    # results
    def results(self) -> pd.DataFrame:
        """Every row of results.csv (a torn last line is dropped from the file); stale rows are set aside by
        :meth:`set_aside_stale`, which the sweep calls first."""
        parsed = parse_results(read_bytes(self.results_path), self.results_path)
        if parsed.torn_tail:
            self._notice(
                f"{self.results_path}: the last line was cut short (an interrupted write); it is dropped and its cell "
                "will be recomputed"
            )
            atomic_write_bytes(self.results_path, parsed.intact)
        return parsed.rows

    def append_row(self, row: Mapping[str, Any]) -> None:
        """Append one row (fsynced). A file in another column layout (row format 1) is rewritten once first."""
        data = read_bytes(self.results_path)
        if not data:
            atomic_write_text(self.results_path, ",".join(RESULT_COLUMNS) + "\n" + csv_line(row, RESULT_COLUMNS))
            return
        if data.split(b"\n", 1)[0].decode("utf-8", "replace").split(",") != RESULT_COLUMNS:
            self._rewrite(self.results())
        append_bytes(self.results_path, csv_line(row, RESULT_COLUMNS).encode("utf-8"))

    def _rewrite(self, df: pd.DataFrame) -> None:
        cols = RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS]
        atomic_write_text(self.results_path, df.reindex(columns=cols).to_csv(index=False))

    def compact(self) -> None:
        """Rewrite results.csv without superseded lines, if it has any."""
        data = read_bytes(self.results_path)
        if data is None:
            return
        df = self.results()
        if data.count(b"\n") - 1 != len(df):
            self._rewrite(df)

    def set_aside(self, stale: pd.DataFrame, why: str) -> Path:
        """Move rows out of results.csv into ``results-stale.csv`` (appended), keeping them for the record."""
        target = self.file(STALE_NAME)
        old = read_bytes(target)
        previous = pd.read_csv(io.BytesIO(old), dtype=str, keep_default_na=False) if old else None
        moved = stale.assign(set_aside=now_iso(), reason=why).astype(str)
        both = moved if previous is None else pd.concat([previous, moved], ignore_index=True)
        atomic_write_text(target, both.to_csv(index=False))
        keep = self.results()
        self._rewrite(keep[~keep["cell_id"].isin(set(stale["cell_id"]))])
        return target

    def set_aside_stale(self, fingerprints: Mapping[str, str]) -> tuple[pd.DataFrame, str]:
        """Move rows of an older row format, or of other weights than the arms' current ones (``fingerprints`` of
        the attacked arms, the cards' for every other arm), to results-stale.csv; returns them and why (empty when
        nothing was stale)."""
        results = self.results()
        if results.empty:
            return results, ""
        current = {**{a: f for a, f in self.fingerprints().items() if f}, **fingerprints}
        old_format = (results["row_format"] != ROW_FORMAT).to_numpy()
        stale = results[old_format | stale_rows(results, current)]
        if stale.empty:
            return stale, ""
        old = int(old_format.sum())
        parts = []
        if old:
            parts.append(
                f"{old} row(s) of row format {sorted(set(stale['row_format']) - {ROW_FORMAT})} (an older "
                "version: PGD scored at its last iterate, bpda = hard-rounding forward)"
            )
        if len(stale) > old:
            arms = sorted(set(stale.loc[stale["row_format"] == ROW_FORMAT, "arm"]))
            parts.append(f"{len(stale) - old} row(s) computed from an earlier checkpoint of arm(s) {', '.join(arms)}")
        why = "; ".join(parts)
        self.set_aside(stale, why)
        return stale, why

    # samples
    def samples(self) -> dict[str, np.ndarray]:
        """Per-image vectors of every cell. A damaged samples.bin is healed once: rewritten with its intact records,
        so the damaged cells are recomputed (and appended) once."""
        if self._vectors is None:
            parsed = self.samples_file()
            if parsed.problems:
                atomic_write_bytes(self.samples_path, parsed.packed())
            self._vectors = {**self._legacy_samples(), **parsed.vectors}
        return self._vectors

    def save_samples(self, cell_id: str, correct: np.ndarray) -> None:
        append_bytes(self.samples_path, pack_record(cell_id, correct))
        self.samples()[cell_id] = np.asarray(correct, dtype=bool).copy()

    def done(self, results: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """Per-image vectors of the cells that are complete: a current-format row and a matching vector."""
        results = self.results() if results is None else results
        samples = self.samples()
        out = {}
        for r in results[results["row_format"] == ROW_FORMAT].itertuples(index=False):
            vec = samples.get(str(r.cell_id))
            if vec is not None and vec.size == int(r.n) and int(vec.sum()) == int(r.n_correct):
                out[str(r.cell_id)] = vec
        return out

    # state, checks, diagnostics
    def state(self) -> SweepState:
        return SweepState.read(self.state_path)

    def write_state(self, state: SweepState) -> None:
        atomic_write_text(self.state_path, dumps_json(state.to_dict()))

    def diagnostics(self) -> dict[str, Any]:
        try:
            data = self.read_json(DIAGNOSTICS_NAME)
        except RunFormatError as exc:
            self._notice(f"{exc}; recomputing it")
            return {}
        return data if isinstance(data, dict) else {}

    def write_diagnostics(self, data: Mapping[str, Any]) -> None:
        atomic_write_text(self.diagnostics_path, dumps_json(dict(data)))

    def write_checks(self, payload: Mapping[str, Any]) -> None:
        """checks.json is derived data: a damaged one is simply replaced."""
        text = dumps_json(dict(payload))
        try:
            same = read_bytes(self.checks_path) == text.encode("utf-8")
        except RunFormatError:
            same = False
        if not same:
            atomic_write_text(self.checks_path, text)
