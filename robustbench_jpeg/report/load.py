"""Read run folders (docs/run-format.md) or a published report's ``data/`` folder into memory, and validate them.

Accepted inputs for each path:

* a run folder: ``RUN/results.csv``, the per-sample records (``RUN/samples.bin``, or ``RUN/samples/<cell_id>.npy``
  of row format 1), ``RUN/<arm>/card.json``, ``RUN/checks.json``, ``RUN/diagnostics.json``, ``RUN/commands.txt``,
  ``RUN/config.json``;
* a report's data folder ``REPORT/data`` (it holds ``manifest.json`` and ``runs/<name>/`` run folders), or the
  report folder itself. Each ``runs/<name>`` is expanded into one run.

Rows of row format 1 (written before 0.2) are read with their meaning then: their ``bpda`` was the hard-rounding
BPDA, now called ``bpda-hard``. A run whose rows mix row formats, or whose rows of one arm come from different
checkpoints (fingerprints), is refused: its numbers would describe different models.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..attack.store import RunStore, StoreWarning, read_results
from ..run_format import ARMS, MANIFEST_NAME, RunFormatError, safe_name

MANIFEST = MANIFEST_NAME
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
    diagnostics: dict | None = None
    checks_now: list | None = None  # the checks recomputed from this run's data (see build_report)

    @property
    def row_format(self) -> int:
        return int(self.results["row_format"].iloc[0])

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
            names = manifest.get("runs") if isinstance(manifest, dict) else None
            if names is None:
                names = sorted(p.name for p in (data / "runs").iterdir() if p.is_dir())
            for name in names:
                try:
                    safe_name(name, f"run name in {data / MANIFEST}")
                except RunFormatError as exc:
                    raise ReportInputError(str(exc)) from None
                found.append((name, data / "runs" / name))
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
    _check_consistent(run)
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
    if (path / "diagnostics.json").is_file():
        run.diagnostics = _read_json(path / "diagnostics.json")
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
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ReportInputError(f"run {name}: {path} is not a readable CSV ({err})") from err
    missing = [col for col in REQUIRED_COLUMNS if col not in header]
    if missing:
        raise ReportInputError(f"run {name}: {path} lacks required columns: {', '.join(missing)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", StoreWarning)
            df = read_results(path.parent)
    except (RunFormatError, StoreWarning) as err:
        raise ReportInputError(f"run {name}: {err}") from None
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
    bad_ids = [c for c in df["cell_id"].astype(str) if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", c)]
    if bad_ids:
        raise ReportInputError(f"run {name}: {path} holds cell ids that are not plain names, e.g. {bad_ids[0]!r}")
    legacy = df["row_format"] < 2
    df.loc[legacy & (df["grad"] == "bpda"), "grad"] = "bpda-hard"  # format 1: bpda was the hard-rounding forward
    for col in ("n", "n_correct", "steps", "restarts", "train_seed"):
        df[col] = df[col].astype(int)
    df["eps"] = df["eps"].astype(float)
    return df.reset_index(drop=True)


def _check_consistent(run: Run) -> None:
    """One row format per run and, in format 2, one checkpoint fingerprint per arm."""
    df = run.results
    formats = sorted(set(df["row_format"]))
    if len(formats) > 1:
        raise ReportInputError(
            f"run {run.name}: results.csv mixes row formats {formats} (rows from different versions of the toolkit "
            "mean different things); rerun the attacks with this version, which sets the old rows aside"
        )
    if formats[0] >= 2:
        for arm, fps in df.groupby("arm")["fingerprint"]:
            if fps.nunique() > 1:
                specs = sorted(set(df.loc[df["arm"] == arm, "spec"].astype(str)))
                raise ReportInputError(
                    f"run {run.name}: the rows of arm {arm} come from {fps.nunique()} different checkpoints "
                    f"(fingerprints {', '.join(sorted(fps.unique()))}; specs {', '.join(specs)}); rerun "
                    "`jpeg-robust attack` on the run folder: it sets stale rows aside and recomputes them"
                )


def _read_samples(run: Run) -> dict[str, np.ndarray]:
    missing, out = [], {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StoreWarning)
        stored = RunStore(run.path).samples()
    for w in caught:
        run.warnings.append(f"run {run.name}: {w.message}")
    for row in run.results.itertuples(index=False):
        arr = stored.get(row.cell_id)
        if arr is None:
            where = "samples/" + f"{row.cell_id}.npy" if row.row_format < 2 else f"samples.bin record {row.cell_id}"
            missing.append(f"{where} ({row.arm} {row.attack} eps={row.eps:g})")
            continue
        if arr.size != row.n or int(arr.sum()) != row.n_correct:
            raise ReportInputError(
                f"run {run.name}: the per-sample record of cell {row.cell_id} has {arr.size} samples with "
                f"{int(arr.sum())} correct, but results.csv says n={row.n}, n_correct={row.n_correct}"
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
