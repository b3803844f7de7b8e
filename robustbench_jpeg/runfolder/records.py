"""The two record files of a run folder, as bytes in and tables out: ``results.csv`` and ``samples.bin``.

* ``results.csv``: one line per attack cell, appended; the last line of a cell wins. A last line cut short by a
  crash is dropped (and reported); anything else that does not parse is a :class:`RunFormatError`.
* ``samples.bin``: the per-image correctness of every cell as appended records: the 4 bytes ``RBJ1``, the cell id
  (16 ASCII characters, NUL-padded), n (uint32 little endian), the CRC-32 of the packed bits (uint32 LE), then
  ``ceil(n / 8)`` bytes of ``numpy.packbits`` (bit order big). A later record of a cell replaces an earlier one. A
  damaged record (bad header, cut short, CRC mismatch) is skipped and reading resumes at the next intact record, so
  one damaged record never hides the valid ones after it.

:func:`read_samples` is the public reader (``robustbench_jpeg.runfolder.read_samples``).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import read_bytes
from .names import RESULT_COLUMNS, RESULTS_NAME, TEXT_COLUMNS, RunFormatError

__all__ = [
    "ResultsFile",
    "SamplesFile",
    "parse_results",
    "read_results",
    "csv_line",
    "pack_record",
    "parse_samples",
    "read_samples",
]

_MAGIC = b"RBJ1"
_HEADER = struct.Struct("<4s16sII")


# --- results.csv --------------------------------------------------------------------------------------------------


@dataclass
class ResultsFile:
    """A parsed ``results.csv``: the rows (the last line of each cell winning) and what was wrong with the bytes."""

    rows: pd.DataFrame
    torn_tail: bool = False  # the last line was cut short and is dropped
    intact: bytes = b""  # the bytes up to the last complete line


def parse_results(data: bytes | None, where: str | os.PathLike) -> ResultsFile:
    """Rows of the bytes of a results.csv (None: the file is absent, no rows). ``where`` names it in errors."""
    if not data:
        return ResultsFile(pd.DataFrame(columns=RESULT_COLUMNS))
    torn = not data.endswith(b"\n")
    if torn:
        data = data[: data.rfind(b"\n") + 1]
    if not data.strip():
        return ResultsFile(pd.DataFrame(columns=RESULT_COLUMNS), torn, data)
    try:
        text = data.decode("utf-8")
        header = text.split("\n", 1)[0].split(",")
        dtypes = {c: str for c in TEXT_COLUMNS if c in header}
        df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], dtype=dtypes)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise RunFormatError(
            f"{where} is not a readable results table ({' '.join(str(exc).split())}); move it aside to start the "
            "sweep's cells afresh"
        ) from None
    if missing := [c for c in ("cell_id", "n", "n_correct") if c not in df.columns]:
        raise RunFormatError(
            f"{where} lacks the column(s) {', '.join(missing)}: it is not a results.csv written by `jpeg-robust "
            "attack`; restore it, or move it aside to recompute its cells"
        )
    df = df.reindex(columns=RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS])
    try:
        df["row_format"] = df["row_format"].fillna(1).astype(int)  # files older than the column: format 1
    except (TypeError, ValueError, OverflowError):  # a damaged line shifted the fields
        raise RunFormatError(f"{where}: the row_format column holds a non-integer; restore the file") from None
    for col in ("after", "below", "params", "fingerprint", "source_fingerprint"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    df["cell_id"] = df["cell_id"].astype(str)
    df = df.drop_duplicates("cell_id", keep="last").reset_index(drop=True)
    return ResultsFile(df, torn, data)


def read_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """``RUN/results.csv`` as a DataFrame, the last line of each cell winning (empty with the columns if absent).

    Read only: a torn last line is dropped here, never removed from the file (``jpeg-robust attack`` repairs it).
    """
    path = Path(run_dir) / RESULTS_NAME
    return parse_results(read_bytes(path), path).rows


def csv_line(row: Mapping[str, Any], columns: list[str]) -> str:
    return pd.DataFrame([row]).reindex(columns=columns).to_csv(index=False, header=False)


# --- samples.bin --------------------------------------------------------------------------------------------------


def pack_record(cell_id: str, correct: np.ndarray) -> bytes:
    """One samples.bin record of a cell's per-image correctness."""
    if not (isinstance(cell_id, str) and cell_id.isascii() and 0 < len(cell_id) <= 16 and "\0" not in cell_id):
        raise ValueError(f"cell id {cell_id!r} is not 1-16 ASCII characters")
    bits = np.packbits(np.asarray(correct, dtype=bool)).tobytes()
    return _HEADER.pack(_MAGIC, cell_id.encode("ascii"), len(correct), zlib.crc32(bits)) + bits


@dataclass
class SamplesFile:
    """A parsed ``samples.bin``: the vectors of the intact records (later ones win) and the damage found."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    damaged_ids: set[str] = field(default_factory=set)  # cells whose (last) record was damaged, where readable
    torn_tail: bool = False  # the file ends in a record cut short (an interrupted append)

    def packed(self) -> bytes:
        """The intact records again: what the file holds once healed."""
        return b"".join(pack_record(c, v) for c, v in self.vectors.items())


def _record_at(data: bytes, pos: int) -> tuple[str, np.ndarray, int] | str:
    """The record at ``pos`` as (cell id, vector, end), or a description of what is wrong with it."""
    if len(data) - pos < _HEADER.size:
        return "cut short"
    magic, raw_id, n, crc = _HEADER.unpack_from(data, pos)
    if magic != _MAGIC:
        return "not a record"
    bits = data[pos + _HEADER.size : pos + _HEADER.size + (n + 7) // 8]
    if len(bits) < (n + 7) // 8:
        return "cut short"
    try:
        cell_id = raw_id.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        return "a damaged header"
    if zlib.crc32(bits) != crc:
        return f"cell {cell_id}: CRC mismatch"
    vector = np.unpackbits(np.frombuffer(bits, np.uint8), count=n).astype(bool)
    return cell_id, vector, pos + _HEADER.size + len(bits)


def parse_samples(data: bytes) -> SamplesFile:
    """Every intact record of the bytes of a samples.bin; damage is skipped up to the next intact record."""
    out = SamplesFile()
    pos = 0
    while pos < len(data):
        found = _record_at(data, pos)
        if not isinstance(found, str):
            cell_id, vector, pos = found
            out.vectors[cell_id] = vector
            out.damaged_ids.discard(cell_id)
            continue
        following = data.find(_MAGIC, pos + 1)
        if found.startswith("cell "):
            out.damaged_ids.add(found.split(":")[0].removeprefix("cell "))
        if following < 0 and found == "cut short":
            out.torn_tail = True
            out.problems.append(f"a record cut short at byte {pos}")
            break
        detail = "a damaged record (" + found + ")" if found.startswith("cell ") else f"unreadable bytes ({found})"
        out.problems.append(f"{detail} at byte {pos}")
        if following < 0:
            break
        pos = following
    return out


def read_samples(path: str | os.PathLike, skip_damaged: bool = False) -> dict[str, np.ndarray]:
    """The per-image correctness of every cell in a ``samples.bin``: cell id -> boolean vector (True: the image
    was classified correctly under that cell's attack). ``path`` may be the file or its run folder.

    Raises:
        RunFormatError: the file does not exist, is not a regular file, or holds a damaged record (with
            ``skip_damaged`` the intact records are returned instead).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "samples.bin"
    data = read_bytes(path)
    if data is None:
        raise RunFormatError(f"{path}: no such file (a run folder's per-image records are in RUN/samples.bin)")
    parsed = parse_samples(data)
    if parsed.problems and not skip_damaged:
        raise RunFormatError(
            f"{path}: {'; '.join(parsed.problems)}; pass skip_damaged=True to read the intact records, or rerun "
            "`jpeg-robust attack` on the run folder to recompute the damaged cells"
        )
    return parsed.vectors
