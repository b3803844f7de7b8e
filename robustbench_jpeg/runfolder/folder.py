"""``RunFolder``: the one reader of a run folder (docs/run-format.md).

It is the only code that knows the folder's file names. It tells a run folder from a report's ``data/`` folder
(and refuses a folder that looks like both), discovers the arms, reads each model card as a :class:`ModelCard`,
reads the results and the per-image records, and checks every row against the cards on every read: a row whose
``fingerprint`` is not its arm's current card fingerprint, or whose ``source_fingerprint`` is not its source arm's,
was computed from other weights. Such rows are *stale*: they are set aside (:attr:`RunFolder.stale`) with one
warning per arm naming the number of rows and the fix (rerun the attack). Reading never writes: repairs are the
attack's (:class:`~robustbench_jpeg.runfolder.store.RunStore`).
"""

from __future__ import annotations

import enum
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import check_entry, is_folder, read_bytes
from .names import (
    ARMS,
    CARD_NAME,
    CHECKPOINT_NAME,
    CHECKS_NAME,
    COMMANDS_NAME,
    CONFIG_NAME,
    DIAGNOSTICS_NAME,
    HISTORY_NAME,
    LEGACY_SAMPLES_DIR,
    MANIFEST_NAME,
    RESULTS_NAME,
    SAMPLES_NAME,
    CardError,
    ModelCard,
    RunFormatError,
    arm_order,
)
from .records import SamplesFile, parse_results, parse_samples

__all__ = ["FolderKind", "RunFolder", "StoreWarning", "folder_kind", "stale_rows", "crafted_off_the_deployed_forward"]

REPORT_DATA_DIR = "data"


class StoreWarning(UserWarning):
    """A run-folder file was damaged or stale; what could be recovered was, and the warning says what."""


class FolderKind(enum.Enum):
    RUN = "run folder"
    REPORT_DATA = "report data folder"
    REPORT = "report folder"
    NEITHER = "neither"


def _run_markers(path: Path) -> list[str]:
    found = [name for name in (RESULTS_NAME, CONFIG_NAME) if check_entry(path / name)]
    for arm in ARMS:
        if is_folder(path / arm) and any(check_entry(path / arm / f) for f in (CARD_NAME, CHECKPOINT_NAME)):
            found.append(f"{arm}/")
    return found


def folder_kind(path: str | os.PathLike) -> FolderKind:
    """What ``path`` holds: a run (results, config or arm folders), a report's data folder (a manifest), a report
    folder (``data/manifest.json``), or neither. A folder with both a run's files and a report's is refused."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder (expected a run folder or a report's data/ folder)")
    run = _run_markers(path)
    if check_entry(path / MANIFEST_NAME):  # a data folder holds a results.csv of its own (all runs concatenated)
        kind, report, mixed = FolderKind.REPORT_DATA, MANIFEST_NAME, [m for m in run if m != RESULTS_NAME]
    elif is_folder(path / REPORT_DATA_DIR) and check_entry(path / REPORT_DATA_DIR / MANIFEST_NAME):
        kind, report, mixed = FolderKind.REPORT, f"{REPORT_DATA_DIR}/{MANIFEST_NAME}", run
    else:
        return FolderKind.RUN if run else FolderKind.NEITHER
    if mixed:
        raise RunFormatError(
            f"{path} holds both a run ({', '.join(mixed)}) and a report ({report}), so it is ambiguous; move the "
            "report's files out of the run folder (a report belongs in a folder of its own)"
        )
    return kind


def stale_rows(results: pd.DataFrame, fingerprints: dict[str, str | None]) -> np.ndarray:
    """True for each row computed from other weights than ``fingerprints[arm]`` (or, for its source arm,
    ``fingerprints[source_arm]``). An arm without a known fingerprint (an older card) is not checked."""
    if results.empty:
        return np.zeros(0, dtype=bool)

    def differs(arm: Any, recorded: Any) -> bool:
        known = fingerprints.get(str(arm))
        return bool(known) and str(recorded) != known

    sources = results["source_arm"].astype(object).where(results["source_arm"].notna(), results["arm"])
    return np.array(
        [
            differs(a, f) or differs(s, sf)
            for a, f, s, sf in zip(
                results["arm"], results["fingerprint"], sources, results["source_fingerprint"], strict=True
            )
        ],
        dtype=bool,
    )


OFF_DEPLOYED_REASON = (
    "bpda/surrogate crafted through the soft forward of an arm deployed with hard rounding and scored on that "
    "never-deployed model (version 0.2; such an arm now gets bpda-hard/surrogate-hard)"
)


def crafted_off_the_deployed_forward(results: pd.DataFrame, hard_arms: set[str]) -> pd.DataFrame:
    """The rows whose ``bpda`` or ``surrogate`` examples were crafted on an arm deployed with hard rounding
    (``hard_arms``): version 0.2 ran those through the soft forward and scored every iterate on that soft model,
    which is never deployed, so their numbers are not about the deployed model."""
    if results.empty:
        return results
    source = results["source_arm"].fillna("").astype(str)
    source = source.where(source != "", results["arm"].astype(str))
    return results[results["grad"].isin(["bpda", "surrogate"]) & source.isin(hard_arms)]


class RunFolder:
    """Read access to one run folder. Every file is read through :mod:`.files` (regular files only, no links)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.stale = pd.DataFrame()
        self.torn = False  # results.csv ends in a line cut short (dropped when read)
        self.notices: list[str] = []
        self._cards: dict[str, ModelCard] | None = None
        self._samples: SamplesFile | None = None

    # --- what is where -------------------------------------------------------------------------------------------
    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    @property
    def results_path(self) -> Path:
        return self.file(RESULTS_NAME)

    @property
    def samples_path(self) -> Path:
        return self.file(SAMPLES_NAME)

    def kind(self) -> FolderKind:
        return folder_kind(self.path)

    def arms(self) -> list[str]:
        """The arms with a model card, in registry order."""
        return [
            a for a in sorted(ARMS, key=arm_order) if is_folder(self.file(a)) and check_entry(self.file(a, CARD_NAME))
        ]

    def trained_arms(self) -> tuple[dict[str, Path], tuple[str, ...]]:
        """(arm -> folder of every arm with a card and a checkpoint, the arms with a checkpoint but no card yet)."""
        complete, incomplete = {}, []
        for arm in ARMS:
            if not is_folder(self.file(arm)) or not check_entry(self.file(arm, CHECKPOINT_NAME)):
                continue
            if check_entry(self.file(arm, CARD_NAME)):
                complete[arm] = self.file(arm)
            else:
                incomplete.append(arm)
        return complete, tuple(incomplete)

    # --- cards and small files -----------------------------------------------------------------------------------
    def card(self, arm: str) -> ModelCard:
        path = self.file(arm, CARD_NAME)
        data = read_bytes(path) if is_folder(self.file(arm)) else None
        if data is None:
            raise CardError(f"{path}: no model card (is {self.path} a run folder made by `jpeg-robust train`?)")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CardError(f"{path}: not valid JSON ({exc}); restore it from a backup or retrain the arm") from None
        card = ModelCard.from_dict(raw, where=str(path))
        if card.arm != arm:
            raise CardError(f"{path} says arm={card.arm!r} but lives in folder {arm!r}; restore the card")
        return card

    def cards(self) -> dict[str, ModelCard]:
        """Arm -> its validated card, every arm with one (read once per RunFolder)."""
        if self._cards is None:
            self._cards = {arm: self.card(arm) for arm in self.arms()}
        return self._cards

    def fingerprints(self) -> dict[str, str | None]:
        return {arm: card.fingerprint for arm, card in self.cards().items()}

    def read_json(self, name: str) -> Any:
        """A JSON file of the folder (None when absent); a damaged one is a :class:`RunFormatError` naming it."""
        data = read_bytes(self.file(name))
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFormatError(f"{self.file(name)} is not valid JSON ({exc}); restore or delete it") from None

    def config(self) -> dict | None:
        value = self.read_json(CONFIG_NAME)
        if value is not None and not isinstance(value, dict):
            raise RunFormatError(f"{self.file(CONFIG_NAME)}: must hold a JSON object; restore it")
        return value

    def checks(self) -> Any:
        return self.read_json(CHECKS_NAME)

    def diagnostics(self) -> Any:
        return self.read_json(DIAGNOSTICS_NAME)

    def commands(self) -> list[str] | None:
        data = read_bytes(self.file(COMMANDS_NAME))
        if data is None:
            return None
        return [line for line in data.decode("utf-8", "replace").splitlines() if line]

    def history(self, arm: str) -> bytes | None:
        """``<arm>/history.csv`` if it is a readable CSV table, else None (never copied unread)."""
        data = read_bytes(self.file(arm, HISTORY_NAME)) if is_folder(self.file(arm)) else None
        if data is None:
            return None
        try:
            table = pd.read_csv(io.BytesIO(data))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            return None
        return data if "epoch" in table.columns else None

    # --- results and per-image records ---------------------------------------------------------------------------
    def raw_results(self) -> bytes:
        return read_bytes(self.results_path) or b""

    def all_results(self) -> pd.DataFrame:
        """Every row of results.csv (the last line of each cell winning), stale or not; a torn last line is
        dropped with a warning."""
        parsed = parse_results(read_bytes(self.results_path), self.results_path)
        self.torn = parsed.torn_tail
        if parsed.torn_tail:
            self._notice(
                f"{self.results_path}: the last line was cut short (an interrupted write); it is dropped and its cell "
                "will be recomputed"
            )
        return parsed.rows

    def results(self) -> pd.DataFrame:
        """The current rows: every row whose fingerprints match the cards; the others go to :attr:`stale`."""
        rows = self.all_results()
        stale = stale_rows(rows, self.fingerprints())
        self.stale = rows[stale].reset_index(drop=True)
        prints = self.fingerprints()
        for arm, group in self.stale.groupby("arm", sort=False):
            changed = {str(arm)} if any(str(f) != prints.get(str(arm)) for f in group["fingerprint"]) else set()
            changed |= {str(s) for s, f in zip(group["source_arm"], group["source_fingerprint"], strict=True)
                        if prints.get(str(s)) and str(f) != prints.get(str(s))}  # fmt: skip
            self._notice(
                f"{self.path}: {len(group)} row(s) of arm {arm} were computed from other weights of "
                f"{' and '.join(sorted(changed))} than its {CARD_NAME} holds now (retrained since); they are set "
                f"aside; rerun `jpeg-robust attack --run {self.path}` to recompute them"
            )
        current = rows[~stale].reset_index(drop=True)
        hard = {a for a, arm in ARMS.items() if arm.deployed_quantizer == "hard"}
        off = crafted_off_the_deployed_forward(current, hard)
        if not off.empty:
            self.stale = pd.concat([self.stale, off], ignore_index=True)
            self._notice(
                f"{self.path}: {len(off)} row(s) set aside: {OFF_DEPLOYED_REASON}; rerun `jpeg-robust attack --run "
                f"{self.path}` with the same spec to compute them on the deployed model"
            )
            current = current.drop(index=off.index).reset_index(drop=True)
        return current

    def samples_file(self) -> SamplesFile:
        """The parsed samples.bin (read once per RunFolder); damage is a notice, never repaired here."""
        if self._samples is None:
            self._samples = parse_samples(read_bytes(self.samples_path) or b"")
            if self._samples.problems:
                self._notice(
                    f"{self.samples_path}: {'; '.join(self._samples.problems)}; the intact records are kept and the "
                    "cells concerned are recomputed by the next `jpeg-robust attack` on the run"
                )
        return self._samples

    def samples(self) -> dict[str, np.ndarray]:
        """Per-image vectors of every cell: samples.bin records over the legacy ``samples/<cell_id>.npy`` files."""
        return {**self._legacy_samples(), **self.samples_file().vectors}

    def _legacy_samples(self) -> dict[str, np.ndarray]:
        folder = self.file(LEGACY_SAMPLES_DIR)
        out: dict[str, np.ndarray] = {}
        if not is_folder(folder):
            return out
        for file in sorted(folder.glob("*.npy")):
            data = read_bytes(file)
            try:
                arr = np.load(io.BytesIO(data or b""), allow_pickle=False)
            except (ValueError, OSError, EOFError):
                continue
            if arr.dtype == bool and arr.ndim == 1:
                out[file.stem] = arr
        return out

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        warnings.warn(text, StoreWarning, stacklevel=3)
