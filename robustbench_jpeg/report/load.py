"""Read run folders (docs/run-format.md) or a published report's ``data/`` folder into memory, and validate them.

Accepted inputs for each path:

* a run folder: ``RUN/results.csv``, ``RUN/samples/<cell_id>.npy``, ``RUN/{baseline,jpegdl}/card.json``,
  ``RUN/checks.json``, ``RUN/commands.txt``, ``RUN/config.json``;
* a report's data folder ``REPORT/data`` (it holds ``manifest.json`` and ``runs/<name>/`` run folders), or the
  report folder itself. Each ``runs/<name>`` is expanded into one run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ARMS = ("baseline", "jpegdl")
MANIFEST = "manifest.json"
DATA_FORMAT = "robustbench_jpeg report data"

REQUIRED_COLUMNS = (
    "model", "arm", "dataset", "train_seed", "attack", "norm", "eps", "steps", "restarts",
    "grad", "source_arm", "n", "n_correct", "cell_id",
)  # fmt: skip
OPTIONAL_DEFAULTS = {"step_rule": "", "random_start": True, "attack_seed": -1, "spec": ""}


class ReportInputError(ValueError):
    """The report's inputs are missing, malformed or inconsistent; the message says which file and why."""


class ReportFileNotFoundError(ReportInputError, FileNotFoundError):
    """A file the report needs does not exist."""


@dataclass
class Run:
    """One run folder held in memory: everything the report reads from it."""

    name: str
    path: Path
    results: pd.DataFrame
    samples: dict[str, np.ndarray]
    cards: dict[str, dict] = field(default_factory=dict)
    checks: dict | None = None
    commands: list[str] | None = None
    config: dict | None = None
    histories: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    raw_results: bytes = b""

    @property
    def model(self) -> str:
        return str(self.results["model"].iloc[0])

    @property
    def dataset(self) -> str:
        return str(self.results["dataset"].iloc[0])

    @property
    def seed(self) -> int:
        return int(self.results["train_seed"].iloc[0])


def expand_inputs(paths) -> list[tuple[str, Path]]:
    """Turn run folders, report data folders and report folders into (name, run folder) pairs, names unique."""
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise ReportFileNotFoundError(f"{path}: no such folder (expected a run folder or a report's data/ folder)")
        data = path if (path / MANIFEST).is_file() else path / "data" if (path / "data" / MANIFEST).is_file() else None
        if data is not None:
            manifest = _read_json(data / MANIFEST)
            names = manifest.get("runs") or sorted(p.name for p in (data / "runs").iterdir() if p.is_dir())
            found.extend((name, data / "runs" / name) for name in names)
        elif (path / "results.csv").is_file():
            found.append((path.resolve().name, path))
        else:
            raise ReportFileNotFoundError(
                f"{path}: no results.csv, so this is not a run folder (see docs/run-format.md) "
                f"and no {MANIFEST}, so it is not a report data folder either; run `jpeg-robust attack` on it first"
            )
    names: dict[str, int] = {}
    unique = []
    for name, path in found:
        names[name] = names.get(name, 0) + 1
        unique.append((name if names[name] == 1 else f"{name}_{names[name]}", path))
    return unique


def load_runs(paths) -> list[Run]:
    """Load and validate every run; raise :class:`ReportInputError` naming the file and run on any problem."""
    runs = [load_run(name, path) for name, path in expand_inputs(paths)]
    if not runs:
        raise ReportInputError("no runs given")
    _check_same_dataset(runs)
    _check_distinct_seeds(runs)
    return runs


def load_run(name: str, path: Path) -> Run:
    results = _read_results(name, path / "results.csv")
    run = Run(name=name, path=path, results=results, samples={}, raw_results=(path / "results.csv").read_bytes())
    run.samples = _read_samples(run)
    for arm in ARMS:
        card_path = path / arm / "card.json"
        if card_path.is_file():
            run.cards[arm] = _read_json(card_path)
        elif arm in set(results["arm"]):
            run.warnings.append(f"run {name}: {arm}/card.json is missing (no recipe or provenance for that arm)")
        history = path / arm / "history.csv"
        if history.is_file():
            run.histories[arm] = history.read_bytes()
    if (path / "checks.json").is_file():
        run.checks = _read_json(path / "checks.json")
    if (path / "commands.txt").is_file():
        run.commands = [line for line in (path / "commands.txt").read_text(encoding="utf-8").splitlines() if line]
    if (path / "config.json").is_file():
        run.config = _read_json(path / "config.json")
    if results["model"].nunique() != 1 or results["train_seed"].nunique() != 1:
        raise ReportInputError(
            f"run {name}: results.csv mixes models {sorted(results['model'].unique())} or train seeds "
            f"{sorted(results['train_seed'].unique())}; a run folder holds one trained pair"
        )
    return run


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: not valid JSON ({err})") from err


def _read_results(name: str, path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ReportFileNotFoundError(f"run {name}: {path} does not exist")
    try:
        df = pd.read_csv(path, dtype={"cell_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ReportInputError(f"run {name}: {path} is not a readable CSV ({err})") from err
    missing = [col for col in REQUIRED_COLUMNS if col not in df.columns]
    if missing:
        raise ReportInputError(f"run {name}: {path} lacks required columns: {', '.join(missing)}")
    if df.empty:
        raise ReportInputError(f"run {name}: {path} has no rows (no attack cell finished yet)")
    for col, default in OPTIONAL_DEFAULTS.items():
        df[col] = df[col].fillna(default) if col in df.columns else default
    bad = df[df[list(REQUIRED_COLUMNS)].isna().any(axis=1)]
    if not bad.empty:
        row = int(bad.index[0])
        empty = [c for c in REQUIRED_COLUMNS if pd.isna(bad.iloc[0][c])]
        raise ReportInputError(f"run {name}: {path} row {row + 2} has empty required fields: {', '.join(empty)}")
    df["norm"] = df["norm"].astype(str).str.lower()
    df["attack"] = df["attack"].astype(str).str.lower()
    for col in ("n", "n_correct", "steps", "restarts", "train_seed"):
        df[col] = df[col].astype(int)
    df["eps"] = df["eps"].astype(float)
    return df.reset_index(drop=True)


def _read_samples(run: Run) -> dict[str, np.ndarray]:
    missing, out = [], {}
    for row in run.results.itertuples(index=False):
        file = run.path / "samples" / f"{row.cell_id}.npy"
        if not file.is_file():
            missing.append(f"samples/{row.cell_id}.npy ({row.arm} {row.attack} eps={row.eps:g})")
            continue
        try:
            arr = np.load(file, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ReportInputError(f"run {run.name}: {file} is not a readable .npy file ({err})") from err
        if arr.dtype != bool and not (np.issubdtype(arr.dtype, np.integer) and np.isin(arr, (0, 1)).all()):
            raise ReportInputError(f"run {run.name}: {file} holds {arr.dtype}, expected a bool array")
        arr = arr.astype(bool).ravel()
        if arr.size != row.n or int(arr.sum()) != row.n_correct:
            raise ReportInputError(
                f"run {run.name}: {file} has {arr.size} samples with {int(arr.sum())} correct, but results.csv "
                f"says n={row.n}, n_correct={row.n_correct}"
            )
        out[row.cell_id] = arr
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ReportFileNotFoundError(
            f"run {run.name} ({run.path}): per-sample files referenced by results.csv are missing: "
            f"{'; '.join(missing[:5])}{more}"
        )
    return out


def _check_same_dataset(runs: list[Run]) -> None:
    seen: dict[str, str] = {}
    for run in runs:
        datasets = set(run.results["dataset"].astype(str))
        datasets |= {str(c["dataset"]) for c in run.cards.values() if "dataset" in c}
        for ds in sorted(datasets):
            seen.setdefault(ds, run.name)
    if len(seen) > 1:
        detail = ", ".join(f"{run!r} uses {ds!r}" for ds, run in seen.items())
        raise ReportInputError(f"runs of different datasets cannot share one report: {detail}")


def _check_distinct_seeds(runs: list[Run]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for run in runs:
        key = (run.model, run.seed)
        if key in seen:
            raise ReportInputError(
                f"runs {seen[key]!r} and {run.name!r} are both model {key[0]} with train seed {key[1]}; "
                "seeds of one experiment must differ (was the same run given twice?)"
            )
        seen[key] = run.name
