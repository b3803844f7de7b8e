"""The attack sweep: plan the cells of a spec, compute the ones not done, write them, run the checks.

Phases: rank 0 plans (:mod:`.plan`) against what the run folder holds (the attack store) and hands the plan to
every rank; every rank computes its contiguous shard of each cell's images with :func:`evaluate_cell` (the
protocol: attack only the images still standing) on the models and data of :mod:`.compute`; the shards are gathered
and rank 0 writes the cell's samples and its row; rank 0 runs the checks and hands back the table.
Under ``torchrun`` the collectives are the two hand-overs and one gather per cell (docs/distributed.md).

Rows of an older row format, or computed from another checkpoint than the arm's current one (the run was trained
further since), are *stale*: they are moved to ``results-stale.csv`` with a warning, and their cells recomputed
when a spec asks for them. So a results table always describes the current checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import distributed
from ..attack.spec import AttackSpec, SpecFile
from ..attack.spec_files import as_specfile, load_spec
from ..checkpoint import find_arms
from ..device import exact_fp32, resolve_device
from ..evaluation import checks_payload, run_checks, verdict, verdict_status
from ..provenance import now_iso
from ..runfolder import FolderKind, ModelCard, RunFolder, RunFormatError
from ..runfolder.cell import Cell
from ..runfolder.folder import OFF_DEPLOYED_REASON, crafted_off_the_deployed_forward
from ..runfolder.store import RunStore, SpecEntry, StoreWarning
from .compute import Evaluator, batches_of, progress_units
from .diagnostics import refresh_diagnostics
from .plan import ArmInfo, clean_cell, plan_spec

__all__ = ["SpecChangedError", "SanityCheckWarning", "run_sweep", "quick_sweep"]


class SpecChangedError(ValueError):
    """A spec name whose content changed since its cells were computed in this run folder."""


class SanityCheckWarning(UserWarning):
    """Issued by :func:`run_sweep` when a sanity check fails (details in checks.json and the returned attrs)."""


@dataclass
class _Plan:
    todo: list[Cell]
    vectors: dict[str, np.ndarray]  # done cells the todo cells build on (clean cells, chain predecessors)
    planned: list[str]


def _arms(run_dir: Path, arms: Sequence[str] | None) -> tuple[dict[str, Path], dict[str, ModelCard]]:
    folder = RunFolder(run_dir)
    if run_dir.is_dir() and folder.kind() in (FolderKind.REPORT, FolderKind.REPORT_DATA):  # ambiguous: refused
        raise RunFormatError(f"{run_dir} is a {folder.kind().value}, not a run folder; attack the run it was made from")
    arm_dirs = find_arms(run_dir, tuple(arms) if arms else None)
    cards = {arm: folder.card(arm) for arm in arm_dirs}
    datasets = {c.dataset for c in cards.values()}
    if len(datasets) > 1:
        detail = ", ".join(f"{a}: {c.dataset}" for a, c in cards.items())
        raise ValueError(
            f"arms of {run_dir} were trained on different data sets ({detail}); one run folder must hold "
            "one data set, attack them from separate run folders"
        )
    return arm_dirs, cards


def _prepare(store: RunStore, spec: SpecFile, evaluator: Evaluator, arms: dict[str, ArmInfo]) -> _Plan:
    """Rank 0: check the spec against the folder, set stale rows aside, refresh diagnostics, plan the cells."""
    state = store.state()
    old = state.specs.get(spec.name)
    if old is not None and old.hash != spec.hash:
        raise SpecChangedError(
            f"spec {spec.name!r} changed since cells were computed in {store.run_dir} (stored hash {old.hash[:12]}, "
            f"now {spec.hash[:12]}); never mixing cells of two versions of a spec: save the new version under a new "
            f"spec name or use a new run folder (or delete the {spec.name!r} entry of {store.state_path})"
        )
    test_size = evaluator.test_size()
    cells = plan_spec(spec, arms, test_size)
    cells[:0] = [
        c
        for c in (clean_cell(info, test_size) for info in arms.values())
        if c.cell_id not in {x.cell_id for x in cells}
    ]  # the whole test set: checked against the card
    planned = [c.cell_id for c in cells]
    entry = SpecEntry(
        hash=spec.hash,
        version=spec.version,
        description=spec.description,
        path=spec.path,
        attacks=[a.to_dict() for a in spec.attacks],
        cells=planned,
        finished=old.finished if old else False,
        created=old.created if old else now_iso(),
        updated=old.updated if old else now_iso(),
    )
    if old is None or dataclasses.asdict(old) | {"path": None} != dataclasses.asdict(entry) | {"path": None}:
        state.specs[spec.name] = entry
        store.write_state(state)
    _set_aside_stale(store, evaluator, arms)
    refresh_diagnostics(store, evaluator, arms)
    done = store.done()
    todo = [c for c in cells if c.cell_id not in done]
    needed = {clean_cell(arms[c.arm], c.n, eval_alpha=c.setting.eval_alpha).cell_id for c in todo if not c.is_clean}
    needed |= {c.setting.after for c in todo if c.setting.after} | {c.setting.below for c in todo if c.setting.below}
    return _Plan(todo, {cid: done[cid] for cid in needed if cid in done}, planned)


def _set_aside_stale(store: RunStore, evaluator: Evaluator, arms: dict[str, ArmInfo]) -> None:
    """Move rows that do not describe the current checkpoints as deployed to results-stale.csv, with a warning."""
    fingerprints = {a: evaluator.fingerprint(a) for a in arms}
    for arm, described in store.fingerprints().items():
        if arm in fingerprints and described and described != fingerprints[arm]:
            warnings.warn(
                f"{store.file(arm)}: the checkpoint holds other weights ({fingerprints[arm]}) than the card describes "
                f"({described}; training paused mid-epoch?); a report sets these rows aside until they agree: finish "
                "training with `jpeg-robust train --resume`, then attack again",
                StoreWarning,
                stacklevel=4,
            )
    stale, why = store.set_aside_stale(fingerprints)
    hard = {a for a, info in arms.items() if info.has_jpeg and info.deployed == "hard"}
    off = crafted_off_the_deployed_forward(store.results(), hard)
    if not off.empty:
        store.set_aside(off, OFF_DEPLOYED_REASON)
        stale, why = (
            pd.concat([stale, off]),
            "; ".join(filter(None, [why, f"{len(off)} row(s): {OFF_DEPLOYED_REASON}"])),
        )
    if why:
        warnings.warn(
            f"{store.results_path}: moved {len(stale)} stale row(s) to results-stale.csv: {why}; their "
            "cells are recomputed when a spec asks for them",
            StoreWarning,
            stacklevel=4,
        )


def _finish(
    store: RunStore,
    spec: SpecFile,
    plan: _Plan,
    computed: list[str],
    cards: dict[str, ModelCard],
    arms: dict[str, ArmInfo],
    test_size: int,
) -> pd.DataFrame:
    """Rank 0: mark the spec, compact results.csv, run the checks, return this spec's rows in plan order."""
    store.compact()
    results = store.results()
    samples = store.done(results)
    state = store.state()
    entry = state.specs[spec.name]
    finished = all(c in samples for c in plan.planned)
    if entry.finished != finished or computed:
        entry.finished, entry.updated = finished, now_iso()
        store.write_state(state)
    quantizer = [a for a, i in arms.items() if i.has_jpeg]
    diagnostics, card_dicts = store.diagnostics(), {a: c.to_dict() for a, c in cards.items()}
    checks = run_checks(results, samples, diagnostics, card_dicts, test_size, quantizer)
    payload = checks_payload(checks, quantizer)
    store.write_checks(payload)
    order = {cid: i for i, cid in enumerate(plan.planned)}
    table = results[results["cell_id"].isin(order)].copy()
    table = table.iloc[np.argsort([order[c] for c in table["cell_id"]], kind="stable")].reset_index(drop=True)
    table.attrs.update(
        {
            "computed": computed,
            "spec_name": spec.name,
            "spec_hash": spec.hash,
            "checks": payload["checks"],
            "verdict": verdict(checks),
            "status": verdict_status(checks),
            "masking": payload["masking"],
            "results_path": str(store.results_path),
        }
    )
    return table


def run_sweep(
    run_dir: str | os.PathLike,
    specs: SpecFile | AttackSpec | Sequence[AttackSpec] | str,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    spec_name: str = "cli",
    arms: Sequence[str] | None = None,
    log=None,
    time_limit_s: float | None = None,
    channels_last: bool = False,
) -> pd.DataFrame:
    """Attack the arms of ``run_dir`` with every cell of ``specs``; resumable; returns this spec's rows.

    Args:
        run_dir: a run folder with trained arms (``<arm>/card.json`` + ``checkpoint.pt``).
        specs: a :class:`SpecFile`, a spec name or path, or one or more :class:`AttackSpec` (named ``spec_name``;
            the default ``cli`` becomes ``cli-<hash8>``).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        data_dir: CIFAR-100 folder (default: the run's config.json ``data_dir``, then the data layer's default).
        progress: a progress bar on stderr; without one (or without a terminal) one line per cell goes to ``log``.
        arms: the arms to attack (default: every trained arm; an arm with a checkpoint but no card is an error).
        log: where the per-cell lines go (default stderr).
        time_limit_s: start no new cell once this many seconds have passed (``attrs["paused"]`` then counts the
            cells left; the same call later resumes at the next one).
        channels_last: the models' weights in channels_last layout (compute.Evaluator; faster on CPUs at small
            batches, exact float32 with another summation order).

    Returns:
        The ``results.csv`` rows of every cell the spec plans, in plan order, with ``attrs``: ``computed``,
        ``spec_name``, ``spec_hash``, ``checks``, ``verdict``, ``status`` (OK/WARN/FAIL), ``masking``,
        ``results_path`` and ``paused`` (0, or the number of cells a time limit left to compute).
    """
    run_dir = Path(run_dir)
    spec = as_specfile(specs, spec_name)
    arm_dirs, cards = _arms(run_dir, arms)
    infos = {
        a: ArmInfo(a, c.model, c.dataset, c.seed, bool(c.jpeg), (c.jpeg or {}).get("quantizer", "soft"))
        for a, c in cards.items()
    }
    dev = resolve_device(device)
    main = distributed.init_from_env(dev).is_main
    dev = distributed.local_device(dev)
    if data_dir is None:
        data_dir = (RunFolder(run_dir).config() or {}).get("data_dir")
    store = RunStore(run_dir)
    num_classes = next(iter(cards.values())).num_classes
    evaluator = Evaluator(arm_dirs, infos, num_classes, dev, None if data_dir is None else str(data_dir), channels_last)
    with contextlib.ExitStack() as stack:

        def lock() -> None:  # rank 0, the only writer, holds the lock; a refusal reaches every rank
            stack.enter_context(store.lock())

        distributed.run_on_main(lock)
        with exact_fp32(dev):
            plan = distributed.run_on_main(lambda: _prepare(store, spec, evaluator, infos))
            deadline = None if time_limit_s is None else time.monotonic() + float(time_limit_s)
            computed = _compute(plan, evaluator, store, spec, progress and main, log if main else None, deadline)
            table = distributed.run_on_main(
                lambda: _finish(store, spec, plan, computed, cards, infos, evaluator.test_size())
            )
    table.attrs["paused"] = len(plan.todo) - len(computed)
    if main and table.attrs["status"] == "FAIL":
        warnings.warn(f"{run_dir}: {table.attrs['verdict']}", SanityCheckWarning, stacklevel=2)
    return table


def evaluate_cell(
    evaluator: Evaluator, cell: Cell, vectors: dict[str, np.ndarray], lo: int, hi: int, bar: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation protocol for images ``lo..hi-1`` of one cell (this rank's shard), as AutoAttack's
    ``run_standard_evaluation``: returns (clean-correct, still correct) per image.

    A clean cell classifies every image. An attack cell attacks only the images still standing: classified
    correctly clean (its arm's clean cell on the same images and eval alpha), robust under the cell it follows (a
    chain such as AutoAttack), robust under the same attack at the next smaller radius (a radius cascade), and not
    yet fooled by an earlier restart. ``vectors`` holds the computed cells (full length) by id.
    """
    if cell.is_clean:
        correct = evaluator.clean_correct(cell, lo, hi, bar)
        return correct, correct
    setting = cell.setting
    clean = vectors[_clean_id(evaluator, cell)]
    standing = clean.copy()
    for built_on in filter(None, (setting.after, setting.below)):
        standing &= vectors[built_on][: cell.n]
    standing = standing[lo:hi].copy()
    units = progress_units(cell)  # the bar moves once per batch and restart, so a long cell shows motion
    for first in range(lo, hi, cell.batch_size):
        batch = standing[first - lo : min(first + cell.batch_size, hi) - lo]  # a view: updated in place
        done = 0
        for restart in range(setting.restarts if setting.eps > 0 else 0):
            alive = np.nonzero(batch)[0]
            if alive.size == 0:
                break
            batch[alive] &= ~evaluator.fooled(cell, restart, first, alive + first)
            done += 1
            if bar is not None:
                bar.set_postfix_str(f"{cell.label()} restart {restart + 1}/{setting.restarts}", refresh=False)
                bar.update(1)
        if bar is not None and units > done:
            bar.update(units - done)  # nothing left standing: the remaining restarts are done
    return clean[lo:hi], standing


def _compute(
    plan: _Plan, evaluator: Evaluator, store: RunStore, spec: SpecFile, bar_on: bool, log, deadline: float | None
) -> list[str]:
    """Every rank: compute the todo cells shard by shard; rank 0 writes each cell as soon as it is gathered. Past
    ``deadline`` (``time.monotonic()``, decided on rank 0 for every rank) no new cell starts."""
    from tqdm.auto import tqdm

    vectors = dict(plan.vectors)
    world = distributed.world_size()
    total = sum(  # one unit per batch and restart (compute.progress_units), so a long cell moves the bar too
        batches_of(lo, hi, c.batch_size) * progress_units(c)
        for c in plan.todo
        for lo, hi in [distributed.shard_bounds(c.n)]
    )
    bar_on = bar_on and sys.stderr.isatty()
    stream = log if log is not None else sys.stderr
    computed: list[str] = []
    with tqdm(total=total, disable=not bar_on, desc=f"attack {spec.name}", unit="step", dynamic_ncols=True) as bar:
        for k, cell in enumerate(plan.todo, 1):
            if deadline is not None and distributed.run_on_main(lambda: time.monotonic() > deadline):
                break
            start = time.perf_counter()
            lo, hi = distributed.shard_bounds(cell.n)
            bar.set_postfix_str(cell.label(), refresh=False)
            _, local = evaluate_cell(evaluator, cell, vectors, lo, hi, bar)
            full = distributed.gather_shards(local, cell.n)
            clean = full if cell.is_clean else vectors[_clean_id(evaluator, cell)]
            if bool((full & ~clean).any()):
                raise RuntimeError("internal error: a sample counted robust without being clean-correct")
            vectors[cell.cell_id] = full
            computed.append(cell.cell_id)
            wall = time.perf_counter() - start
            if distributed.is_main():
                store.save_samples(cell.cell_id, full)
                store.append_row(evaluator.row(cell, clean, full, wall, spec, world))
                if not bar_on and log is not False:
                    print(
                        f"[{k}/{len(plan.todo)}] {cell.label()}: {'robust' if not cell.is_clean else 'correct'} "
                        f"{100 * full.mean():.2f}% of {cell.n} ({wall:.1f} s)",
                        file=stream,
                        flush=True,
                    )
    return computed


def _clean_id(evaluator: Evaluator, cell: Cell) -> str:
    return clean_cell(evaluator.arms[cell.arm], cell.n, eval_alpha=cell.setting.eval_alpha).cell_id


def quick_sweep(
    run_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    progress: bool = True,
    data_dir: str | os.PathLike | None = None,
    n_examples: int = 500,
    arms: Sequence[str] | None = None,
    log=None,
) -> pd.DataFrame:
    """The quickstart's short sweep (spec ``quick``, attacks/quick.yaml) on the first ``n_examples`` test images:
    see docs/attacks.md for what it runs and how long it takes."""
    spec = load_spec("quick").with_overrides(n_examples=n_examples)  # renamed quick+nN unless 500
    return run_sweep(run_dir, spec, device=device, data_dir=data_dir, progress=progress, arms=arms, log=log)
