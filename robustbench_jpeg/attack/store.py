"""The attack side of a run folder: ``results.csv``, the per-sample records, the sweep state, the lock.

* ``results.csv`` gets one appended line per finished cell (a rerun of a cell appends a newer line, which wins;
  :meth:`RunStore.compact` rewrites the file once without the superseded lines). A line cut short by a crash is
  dropped on the next read, with a warning, and its cell is recomputed.
* ``samples.bin`` holds the per-sample correctness of every cell as appended records (below); the per-cell
  ``samples/<cell_id>.npy`` files of row format 1 are still read.
* ``sweep_state.json`` (:class:`SweepState`) remembers each spec's hash, so a changed spec under an old name is
  refused, and ``diagnostics.json`` the per-arm gradient statistics.

A ``samples.bin`` record: the 4 bytes ``RBJ1``, the cell id (16 ASCII hex digits), n (uint32 little endian), the
CRC-32 of the packed bits (uint32 LE), then ``ceil(n / 8)`` bytes of ``numpy.packbits`` (bit order big). A later
record of the same cell replaces an earlier one; a record cut short or failing its CRC is ignored (and reported).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..provenance import atomic_write_bytes, atomic_write_text, exclusive_lock, now_iso, read_json_file
from ..run_format import (
    ATTACK_LOCK,
    CHECKS_NAME,
    DIAGNOSTICS_NAME,
    LEGACY_SAMPLES_DIR,
    RESULT_COLUMNS,
    RESULTS_NAME,
    ROW_FORMAT,
    SAMPLES_NAME,
    STATE_NAME,
    TEXT_COLUMNS,
    RunFormatError,
    dumps_json,
)

__all__ = [
    "RunStore",
    "SweepState",
    "SpecEntry",
    "StoreWarning",
    "SweepLockedError",
    "read_results",
    "read_samples_file",
    "pack_record",
]

_MAGIC = b"RBJ1"
_HEADER = struct.Struct("<4s16sII")
STATE_FORMAT = 2


class StoreWarning(UserWarning):
    """A run-folder file was damaged or stale; what could be recovered was, and the warning says what."""


class SweepLockedError(RuntimeError):
    """Another attack sweep holds the run folder."""


# --- results.csv --------------------------------------------------------------------------------------------------


def read_results(run_dir: str | os.PathLike, repair: bool = False) -> pd.DataFrame:
    """``RUN/results.csv`` as a DataFrame, the last line of each cell winning (empty with the columns if absent).

    A last line cut short by a crash is dropped with a :class:`StoreWarning` (and, with ``repair``, removed from
    the file). Anything else that does not parse is a :class:`RunFormatError` naming the file and line.
    """
    path = Path(run_dir) / RESULTS_NAME
    if not path.is_file():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        warnings.warn(
            f"{path}: the last line was cut short (an interrupted write); it is dropped and its cell will be "
            "recomputed",
            StoreWarning,
            stacklevel=2,
        )
        data = data[:cut]
        if repair:
            atomic_write_bytes(path, data)
    if not data.strip():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    try:
        text = data.decode("utf-8")
        header = text.split("\n", 1)[0].split(",")
        dtypes = {c: str for c in TEXT_COLUMNS if c in header}
        df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], dtype=dtypes)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise RunFormatError(
            f"{path} is not a readable results table ({' '.join(str(exc).split())}); move it aside to start afresh"
        ) from None
    if missing := [c for c in ("cell_id", "n", "n_correct") if c not in df.columns]:
        raise RunFormatError(
            f"{path} lacks the column(s) {', '.join(missing)}: restore it, or move it aside to recompute its cells"
        )
    df = df.reindex(columns=RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS])
    try:
        df["row_format"] = df["row_format"].fillna(1).astype(int)  # files written before the column existed: format 1
    except (ValueError, TypeError, OverflowError):  # a damaged line shifted the fields
        raise RunFormatError(f"{path}: a row_format value is not an integer; restore it, or move it aside") from None
    for col in ("after", "params", "fingerprint", "source_fingerprint"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    df = df.drop_duplicates("cell_id", keep="last").reset_index(drop=True)
    return df


def _csv_line(row: Mapping[str, Any], columns: list[str]) -> str:
    return pd.DataFrame([row]).reindex(columns=columns).to_csv(index=False, header=False)


# --- samples ------------------------------------------------------------------------------------------------------


def pack_record(cell_id: str, correct: np.ndarray) -> bytes:
    if not (isinstance(cell_id, str) and cell_id.isascii() and 0 < len(cell_id) <= 16 and "\0" not in cell_id):
        raise ValueError(f"cell id {cell_id!r} is not 1-16 ASCII characters")
    bits = np.packbits(np.asarray(correct, dtype=bool)).tobytes()
    return _HEADER.pack(_MAGIC, cell_id.encode("ascii"), len(correct), zlib.crc32(bits)) + bits


def read_samples_file(path: Path) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """Records of a ``samples.bin``: ``(vectors by cell id, bytes of the intact prefix, problems found)``."""
    data = path.read_bytes() if path.is_file() else b""
    out: dict[str, np.ndarray] = {}
    problems: list[str] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < _HEADER.size:
            problems.append(f"a record cut short at byte {pos}")
            break
        magic, raw_id, n, crc = _HEADER.unpack_from(data, pos)
        size = (n + 7) // 8
        bits = data[pos + _HEADER.size : pos + _HEADER.size + size]
        if magic != _MAGIC:
            problems.append(f"unreadable bytes at {pos} (not a record)")
            break
        if len(bits) < size:
            problems.append(f"a record cut short at byte {pos}")
            break
        pos += _HEADER.size + size
        if zlib.crc32(bits) != crc:
            problems.append(f"a damaged record of cell {raw_id.decode('ascii', 'replace')} (CRC mismatch)")
            continue
        out[raw_id.rstrip(b"\0").decode("ascii", "replace")] = np.unpackbits(
            np.frombuffer(bits, np.uint8), count=n
        ).astype(bool)
    return out, pos, problems


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
        if not path.is_file():
            return cls()
        raw = read_json_file(
            path,
            fix="it only remembers spec hashes; delete it to start the bookkeeping afresh "
            "(a changed spec would then go unnoticed once)",
        )
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


class RunStore:
    """Reads and writes the attack files of one run folder. Only one process (rank 0) writes."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.results_path = self.run_dir / RESULTS_NAME
        self.samples_path = self.run_dir / SAMPLES_NAME
        self.state_path = self.run_dir / STATE_NAME
        self.checks_path = self.run_dir / CHECKS_NAME
        self.diagnostics_path = self.run_dir / DIAGNOSTICS_NAME
        self._samples: dict[str, np.ndarray] | None = None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with exclusive_lock(
            self.run_dir / ATTACK_LOCK,
            busy=SweepLockedError(f"another attack sweep is running on {self.run_dir}; wait for it to finish"),
        ):
            yield

    # results
    def results(self) -> pd.DataFrame:
        return read_results(self.run_dir, repair=True)

    def append_row(self, row: Mapping[str, Any]) -> None:
        """Append one row (fsynced). A file in another column layout (row format 1) is rewritten once first."""
        if not self.results_path.is_file() or self.results_path.stat().st_size == 0:
            atomic_write_text(self.results_path, ",".join(RESULT_COLUMNS) + "\n" + _csv_line(row, RESULT_COLUMNS))
            return
        with open(self.results_path, encoding="utf-8") as handle:
            header = handle.readline().rstrip("\n").split(",")
        if header != RESULT_COLUMNS:
            self._rewrite(self.results())
        with open(self.results_path, "a", encoding="utf-8") as handle:
            handle.write(_csv_line(row, RESULT_COLUMNS))
            handle.flush()
            os.fsync(handle.fileno())

    def _rewrite(self, df: pd.DataFrame) -> None:
        cols = RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS]
        atomic_write_text(self.results_path, df.reindex(columns=cols).to_csv(index=False))

    def compact(self) -> None:
        """Rewrite results.csv without superseded lines, if it has any."""
        if not self.results_path.is_file():
            return
        with open(self.results_path, encoding="utf-8") as handle:
            lines = sum(1 for _ in handle) - 1
        df = self.results()
        if lines != len(df):
            self._rewrite(df)

    def set_aside(self, stale: pd.DataFrame, why: str) -> Path:
        """Move rows out of results.csv into ``results-stale.csv`` (appended), keeping them for the record."""
        target = self.run_dir / "results-stale.csv"
        previous = pd.read_csv(target, dtype=str, keep_default_na=False) if target.is_file() else None
        moved = stale.assign(set_aside=now_iso(), reason=why).astype(str)
        both = moved if previous is None else pd.concat([previous, moved], ignore_index=True)
        atomic_write_text(target, both.to_csv(index=False))
        keep = self.results()
        self._rewrite(keep[~keep["cell_id"].isin(set(stale["cell_id"]))])
        return target

    def set_aside_stale(self, fingerprints: Mapping[str, str]) -> tuple[pd.DataFrame, str]:
        """Move rows of an older row format, or of another checkpoint than ``fingerprints[arm]`` (the current
        weights), to results-stale.csv; returns them and why (empty when nothing was stale)."""
        results = self.results()
        if results.empty:
            return results, ""
        same = np.array(
            [
                fingerprints.get(a) in (None, f) and fingerprints.get(s) in (None, sf)
                for a, f, s, sf in zip(
                    results["arm"],
                    results["fingerprint"],
                    results["source_arm"],
                    results["source_fingerprint"],
                    strict=True,
                )
            ],
            dtype=bool,
        )
        stale = results[~((results["row_format"] == ROW_FORMAT).to_numpy() & same)]
        if stale.empty:
            return stale, ""
        old = int((stale["row_format"] != ROW_FORMAT).sum())
        parts = []
        if old:
            parts.append(
                f"{old} row(s) of row format {sorted(set(stale['row_format']) - {ROW_FORMAT})} (an older "
                "version: PGD scored at its last iterate, bpda = hard-rounding forward)"
            )
        if len(stale) > old:
            parts.append(
                f"{len(stale) - old} row(s) computed from an earlier checkpoint of arm(s) "
                f"{', '.join(sorted(set(stale['arm'])))}"
            )
        why = "; ".join(parts)
        self.set_aside(stale, why)
        return stale, why

    # samples
    def samples(self) -> dict[str, np.ndarray]:
        """Per-sample vectors of every cell: ``samples.bin`` records (later ones win) over legacy ``.npy`` files."""
        if self._samples is None:
            found, good, problems = read_samples_file(self.samples_path)
            if problems:
                warnings.warn(
                    f"{self.samples_path}: {'; '.join(problems)}; the cells concerned will be recomputed",
                    StoreWarning,
                    stacklevel=2,
                )
                if good < self.samples_path.stat().st_size and "cut short" in " ".join(problems):
                    with open(self.samples_path, "r+b") as handle:  # drop the torn tail so appends stay readable
                        handle.truncate(good)
            legacy = {}
            folder = self.run_dir / LEGACY_SAMPLES_DIR
            if folder.is_dir():
                for file in folder.glob("*.npy"):
                    with contextlib.suppress(ValueError, OSError):
                        arr = np.load(file, allow_pickle=False)
                        if arr.dtype == bool and arr.ndim == 1:
                            legacy[file.stem] = arr
            self._samples = {**legacy, **found}
        return self._samples

    def save_samples(self, cell_id: str, correct: np.ndarray) -> None:
        with open(self.samples_path, "ab") as handle:
            handle.write(pack_record(cell_id, correct))
            handle.flush()
            os.fsync(handle.fileno())
        self.samples()[cell_id] = np.asarray(correct, dtype=bool).copy()

    def done(self, results: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """Per-sample vectors of the cells that are complete: a current-format row and a matching vector."""
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
        if not self.diagnostics_path.is_file():
            return {}
        try:
            return read_json_file(self.diagnostics_path, fix="delete it; it is recomputed")
        except RunFormatError as exc:
            warnings.warn(f"{exc}; recomputing it", StoreWarning, stacklevel=2)
            return {}

    def write_diagnostics(self, data: Mapping[str, Any]) -> None:
        atomic_write_text(self.diagnostics_path, dumps_json(dict(data)))

    def write_checks(self, payload: Mapping[str, Any]) -> None:
        """checks.json is derived data: a damaged one is simply replaced."""
        text = dumps_json(dict(payload))
        if not self.checks_path.is_file() or self.checks_path.read_bytes() != text.encode("utf-8"):
            atomic_write_text(self.checks_path, text)
