"""Read run folders (docs/run-format.md) or a published report's ``data/`` folder into memory, and validate them.

Every file is read through :class:`~robustbench_jpeg.runfolder.RunFolder` (regular files only, never written): rows
computed from other weights than their arm's current card are set aside with a notice, and a folder that holds both
a run and a report is refused. Accepted inputs for each path:

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

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..runfolder import ARMS, MANIFEST_NAME, RESULTS_NAME, ModelCard, RunFormatError, safe_name
from ..runfolder.files import check_entry, is_folder
from ..runfolder.folder import FolderKind, RunFolder, StoreWarning, folder_kind

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
    cards: dict[str, ModelCard] = field(default_factory=dict)
    checks: dict | None = None
    commands: list[str] | None = None
    config: dict | None = None
    histories: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    raw_results: bytes = b""
    diagnostics: dict | None = None
    checks_now: list | None = None  # the checks recomputed from this run's data (see build_report)
    stale: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows set aside: computed from other weights

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
        try:
            kind = folder_kind(path)
        except FileNotFoundError as exc:
            raise ReportFileNotFoundError(str(exc)) from None
        except RunFormatError as exc:
            raise ReportInputError(str(exc)) from None
        if kind in (FolderKind.REPORT_DATA, FolderKind.REPORT):
            found += _data_runs(path if kind == FolderKind.REPORT_DATA else path / "data")
        elif kind == FolderKind.RUN and check_entry(path / RESULTS_NAME):
            found.append((path.resolve().name, path))
        else:
            raise ReportFileNotFoundError(
                f"{path}: no results.csv, so this is not an attacked run folder (see docs/run-format.md) "
                f"and no {MANIFEST}, so it is not a report data folder either; run `jpeg-robust attack` on it first"
            )
    names: dict[str, int] = {}
    unique = []
    for name, path in found:
        names[name] = names.get(name, 0) + 1
        unique.append((name if names[name] == 1 else f"{name}_{names[name]}", path))
    return unique


def _data_runs(data: Path) -> list[tuple[str, Path]]:
    """The (name, folder) of each run a report's data folder holds (its manifest lists them)."""
    try:
        manifest = RunFolder(data).read_json(MANIFEST)
    except RunFormatError as exc:
        raise ReportInputError(str(exc)) from None
    names = manifest.get("runs") if isinstance(manifest, dict) else None
    if names is None:
        names = sorted(p.name for p in (data / "runs").iterdir() if is_folder(p)) if is_folder(data / "runs") else []
    out = []
    for name in names:
        try:
            safe_name(name, f"run name in {data / MANIFEST}")
        except RunFormatError as exc:
            raise ReportInputError(str(exc)) from None
        out.append((name, data / "runs" / name))
    return out


def load_runs(paths) -> list[Run]:
    """Load and validate every run; raise :class:`ReportInputError` naming the file and run on any problem."""
    runs = [load_run(name, path) for name, path in expand_inputs(paths)]
    if not runs:
        raise ReportInputError("no runs given")
    _check_same_dataset(runs)
    _check_distinct_seeds(runs)
    return runs


def load_run(name: str, path: Path) -> Run:
    """One run, read only through :class:`RunFolder` (rows checked against the cards; nothing written)."""
    folder = RunFolder(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StoreWarning)
        try:
            run = _read_run(name, folder)
        except RunFormatError as exc:
            raise ReportInputError(f"run {name}: {exc}") from None
    for w in caught:
        if issubclass(w.category, StoreWarning):
            run.warnings.append(str(w.message))  # it names the run folder
            warnings.warn(str(w.message), StoreWarning, stacklevel=2)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return run


def _read_run(name: str, folder: RunFolder) -> Run:
    path = folder.path
    results = _read_results(name, folder)
    run = Run(name=name, path=path, results=results, samples={}, raw_results=_current_bytes(folder, results))
    run.stale = folder.stale
    _check_consistent(run)
    run.samples = _read_samples(run, folder)
    run.cards = {arm: card for arm, card in folder.cards().items()}
    for arm in ARMS:
        if arm in set(results["arm"]) and arm not in run.cards:
            run.warnings.append(f"run {name}: {arm}/card.json is missing (no recipe or provenance for that arm)")
        history = folder.history(arm)
        if history is not None:
            run.histories[arm] = history
    run.checks = folder.checks()
    run.commands = folder.commands()
    run.config = folder.config()
    run.diagnostics = folder.diagnostics()
    if results["model"].nunique() != 1 or results["train_seed"].nunique() != 1:
        raise ReportInputError(
            f"run {name}: results.csv mixes models {sorted(results['model'].unique())} or train seeds "
            f"{sorted(results['train_seed'].unique())}; a run folder holds one trained pair"
        )
    return run


def _current_bytes(folder: RunFolder, results: pd.DataFrame) -> bytes:
    """results.csv as read, or, when stale rows were set aside, the current rows only (what data/ may hold)."""
    raw = folder.raw_results()
    if folder.stale.empty:
        return raw
    table = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    return table[table["cell_id"].isin(set(results["cell_id"]))].to_csv(index=False).encode("utf-8")


def _read_results(name: str, folder: RunFolder) -> pd.DataFrame:
    path = folder.results_path
    raw = folder.raw_results()
    if not raw:
        raise ReportFileNotFoundError(f"run {name}: {path} does not exist or is empty")
    header = raw.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    missing = [col for col in REQUIRED_COLUMNS if col not in header]
    if missing:
        raise ReportInputError(f"run {name}: {path} lacks required columns: {', '.join(missing)}")
    df = folder.results()
    if folder.torn:
        raise ReportInputError(
            f"run {name}: {path}: the last line was cut short (an interrupted write); run `jpeg-robust attack` on "
            "the run to repair it and recompute that cell"
        )
    if df.empty:
        raise ReportInputError(f"run {name}: {path} has no current rows (no attack cell finished yet)")
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
    try:
        for col in ("n", "n_correct", "steps", "restarts", "train_seed"):
            df[col] = df[col].astype(int)
        df["eps"] = df["eps"].astype(float)
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"run {name}: {path}: a numeric column holds text ({exc}); restore the file") from None
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


def _read_samples(run: Run, folder: RunFolder) -> dict[str, np.ndarray]:
    missing, out = [], {}
    stored = folder.samples()
    for row in run.results.itertuples(index=False):
        arr = stored.get(row.cell_id)
        if arr is None:
            where = "samples/" + f"{row.cell_id}.npy" if row.row_format < 2 else f"samples.bin record {row.cell_id}"
            missing.append((f"{where} ({row.arm} {row.attack} eps={row.eps:g})", str(row.spec)))
            continue
        if arr.size != row.n or int(arr.sum()) != row.n_correct:
            raise ReportInputError(
                f"run {run.name}: the per-sample record of cell {row.cell_id} has {arr.size} samples with "
                f"{int(arr.sum())} correct, but results.csv says n={row.n}, n_correct={row.n_correct}"
            )
        out[row.cell_id] = arr
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        specs = sorted({spec for _, spec in missing if spec})
        rerun = (
            f"; rerun `jpeg-robust attack --run {run.path}` with the spec that made them (spec {', '.join(specs)}; "
            "for an ad-hoc cli-... spec, the same command again, see commands.txt): it recomputes just these cells"
        )
        raise ReportFileNotFoundError(
            f"run {run.name} ({run.path}): per-sample records referenced by results.csv are missing or damaged: "
            f"{'; '.join(m for m, _ in missing[:5])}{more}{rerun}"
        )
    return out


def _check_same_dataset(runs: list[Run]) -> None:
    seen: dict[str, str] = {}
    for run in runs:
        datasets = set(run.results["dataset"].astype(str))
        datasets |= {card.dataset for card in run.cards.values()}
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
