"""What the exports share: the error type, the arm folders of a run, safe output names, and the worst case per arm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..runfolder import ARMS, CARD_NAME, CHECKPOINT_NAME, RunFolder, RunFormatError, arm_order, safe_name


class ExportError(ValueError):
    """An export cannot be written; the message names the file or option and the fix."""


def checked_name(name: str, what: str) -> str:
    """``name`` if it is a safe single path component (runfolder.safe_name), else an ExportError."""
    try:
        return safe_name(name, what)
    except RunFormatError as exc:
        raise ExportError(str(exc)) from None


def arm_cards(run_dir: Path, arms: tuple[str, ...] | None) -> dict[str, dict]:
    """Arm name -> card of every arm folder with a card (in registry order), or only ``arms``."""
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir}: no such folder (expected a run folder made by `jpeg-robust train`)")
    try:  # every card validated as a ModelCard; handed on as its JSON data (exactly the fields it holds)
        found = {arm: card.to_dict() for arm, card in RunFolder(run_dir).cards().items()}
    except RunFormatError as exc:
        raise ExportError(str(exc)) from None
    if not arms:
        unfinished = [a for a in _trained_arms(run_dir) if a not in found]
        if unfinished:
            raise ExportError(
                f"{run_dir}: {', '.join(f'{a}/{CARD_NAME}' for a in unfinished)} missing (the arm has not finished "
                f"training: `jpeg-robust train --resume --out {run_dir}` with the same options completes it); or pass "
                f"--arms {','.join(found) or 'ARM'} to export only the finished arms"
            )
    if arms:
        missing = [a for a in arms if a not in found]
        if missing:
            raise ExportError(
                f"{run_dir}: no {CARD_NAME} for arm(s) {', '.join(missing)} (arms with a card: "
                f"{', '.join(found) or 'none'}); check --arms"
            )
        found = {a: found[a] for a in arms}
    if not found:
        raise ExportError(
            f"{run_dir}: no arm folder with a {CARD_NAME} (expected {run_dir}/baseline/{CARD_NAME} or "
            f"{run_dir}/jpegdl/{CARD_NAME}, made by `jpeg-robust train --out {run_dir}`)"
        )
    return found


def _trained_arms(run_dir: Path) -> list[str]:
    """Arms the run was trained with (config.json's ``arms``) or that hold a checkpoint, in registry order."""
    try:
        config = RunFolder(run_dir).config() or {}
    except RunFormatError:
        config = {}
    listed = config.get("arms") if isinstance(config.get("arms"), list) else []
    named = {a for a in listed if isinstance(a, str) and a in ARMS}
    named |= {a for a in ARMS if (run_dir / a / CHECKPOINT_NAME).is_file()}
    return sorted(named, key=arm_order)


@dataclass(frozen=True)
class WorstPoint:
    """An arm's robust accuracy under the worst case over every attack run, at one radius."""

    arm: str
    norm: str
    eps: float  # raw scale (L-inf: fraction of 1, not /255)
    eps_key: float  # table units: 1/255 for L-inf
    acc: float
    n: int
    attacks: tuple[str, ...]
    clean_acc: float | None
    clean_n: int | None


def worst_points(run_dir: Path) -> tuple[list[WorstPoint], object]:
    """Every all-attacks worst-case point of the run (ordinary cells, no evaluation-time alpha), and the loaded run.

    Needs ``results.csv`` and the per-sample records; an ExportError naming the file otherwise.
    """
    from ..report.build import recompute_checks
    from ..report.cells import WORST, build_cells
    from ..report.load import ReportInputError, load_runs

    try:
        runs = load_runs([run_dir])
    except ReportInputError as exc:
        raise ExportError(
            f"{exc} (the robustbench export needs an attacked run: run `jpeg-robust attack` first)"
        ) from None
    if len(runs) != 1:
        raise ExportError(f"{run_dir} holds {len(runs)} runs; export one run folder at a time")
    run = runs[0]
    run.checks_now = recompute_checks(run)
    cells, _ = build_cells([run])
    worst = cells[(cells["label"] == WORST) & (cells["kind"] == "worst") & cells["eval_alpha"].isna()]
    clean = run.results[run.results["attack"] == "clean"]
    if "eval_alpha" in clean:
        clean = clean[clean["eval_alpha"].isna()]
    points = []
    for r in worst.itertuples():
        mine = clean[clean["arm"] == r.arm].sort_values("n")
        best = mine.iloc[-1] if not mine.empty else None
        points.append(
            WorstPoint(
                arm=str(r.arm),
                norm=str(r.norm),
                eps=float(r.eps),
                eps_key=float(r.eps_key),
                acc=float(r.acc),
                n=int(r.n),
                attacks=tuple(str(r.components).split("; ")) if isinstance(r.components, str) else (),
                clean_acc=None if best is None else int(best["n_correct"]) / int(best["n"]),
                clean_n=None if best is None else int(best["n"]),
            )
        )
    return points, run
