"""Several seeds of a study in one process: every (seed, arm) model trained concurrently (``jpeg-robust train
--seeds 0,1,2``).

Each seed gets its own run folder, exactly the folder ``train_pair`` with that seed would write (config.json,
``<arm>/checkpoint.pt``, card.json, history.csv, the lock): ``OUT/seed{S}``, or ``OUT`` with ``{seed}`` replaced
when it contains that placeholder. All models are built first (each from its own seed, as a separate run builds
it) and then advanced round-robin, one step of every model per round. A model's step reads only its own weights,
optimiser state, data order and augmentation draws (none of them touches the global random generator), so the
interleaving changes nothing: every model is, bit for bit on the CPU, the model a separate ``train_pair`` run of
its seed makes (tests/test_multiseed.py). With ``RunOptions.cuda_graph`` on a GPU every model replays its own
captured step on its own CUDA stream, so the GPU runs the models' kernels side by side while the host only
launches graphs (docs/gpu.md).

Time limits and periodic checkpoints are decided for the group: when the time is up every model writes its
checkpoint (mid-epoch included) and the group returns "paused"; ``resume=True`` continues every folder. The one
dependency between arms, ``q_init='sensitivity'`` (a JPEG-DL arm initialised from its own seed's trained
baseline), is honoured by training such arms in a second round, after the baselines have finished.
History ``seconds`` are wall seconds of the group's epoch, shared by the models trained together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..checkpoint import checkpoint_path
from ..config import ConfigError, RunOptions, TrainConfig
from ..device import resolve_device, training_backend
from ..runfolder import JPEGDL, check_arm
from .arm import ArmTrainer
from .pair import (
    ArmResult,
    arm_order,
    epoch_line,
    finished_status,
    load_data,
    open_arm,
    open_run,
    resolve_config,
    write_arm_files,
)

__all__ = ["train_group", "seed_run_dirs", "SEED_PLACEHOLDER"]

SEED_PLACEHOLDER = "{seed}"


def seed_run_dirs(out: str | Path, seeds: Sequence[int]) -> dict[int, Path]:
    """The run folder of every seed: ``out`` with ``{seed}`` replaced, or ``out/seed{S}`` without a placeholder."""
    text = str(out)
    if SEED_PLACEHOLDER in text:
        return {s: Path(text.replace(SEED_PLACEHOLDER, str(s))) for s in seeds}
    return {s: Path(text) / f"seed{s}" for s in seeds}


def _check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of integers >= 0, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {list(seeds)}")
    return seeds


def train_group(
    config: TrainConfig, seeds: Sequence[int], out: str | Path, options: RunOptions | None = None, resume: bool = False
) -> dict[int, dict[str, ArmResult]]:
    """Train every arm of ``config`` for every seed concurrently; one run folder per seed (:func:`seed_run_dirs`).

    ``config.seed`` is ignored (each seed replaces it). Returns ``{seed: {arm: ArmResult}}``; like
    :func:`train_pair`, a run paused by the time limit reports "paused" for the arms it stopped.
    """
    options = options or RunOptions()
    seeds = _check_seeds(seeds)
    if distributed.world_size() > 1:
        raise ConfigError("--seeds trains several models in one process; under torchrun train one seed per run")
    configs = {s: resolve_config(dataclasses.replace(config, seed=s)) for s in seeds}
    for arm in config.arms:
        check_arm(arm)
    run_dirs = seed_run_dirs(out, seeds)
    if len({d.resolve() for d in run_dirs.values()}) != len(seeds):
        raise ConfigError(f"--out {out} gives the seeds one folder; use a folder or a {SEED_PLACEHOLDER} template")
    device = resolve_device(options.device)
    results: dict[int, dict[str, ArmResult]] = {s: {} for s in seeds}
    with contextlib.ExitStack() as stack:
        for s in seeds:
            open_run(stack, run_dirs[s], configs[s], options, resume)
        train, test, data_info = load_data(configs[seeds[0]], options)
        train_dev = (train[0].to(device), train[1].to(device))  # one copy on the device, shared by every model
        test_dev = (test[0].to(device), test[1].to(device))
        deadline = time.monotonic() + options.time_limit_s if options.time_limit_s else None
        jobs = [(s, arm) for s in seeds for arm in arm_order(config.arms)]

        def waits_for_baseline(job: tuple[int, str]) -> bool:  # sensitivity tables come from the trained baseline
            s, arm = job
            return (
                arm == JPEGDL
                and configs[s].jpeg.q_init == "sensitivity"
                and not (resume and checkpoint_path(run_dirs[s] / arm).exists())
            )

        with training_backend(device):
            for phase in ([j for j in jobs if not waits_for_baseline(j)], [j for j in jobs if waits_for_baseline(j)]):
                if not phase:
                    continue
                trainers = {}
                for s, arm in phase:
                    trainer = open_arm(configs[s], arm, run_dirs[s], options, train, resume, device)
                    if trainer.progress.finished:
                        p = trainer.progress
                        status = finished_status(trainer, data_info)
                        results[s][arm] = ArmResult(arm, trainer.arm_dir, status, p.epoch, p.last_acc)
                    else:
                        trainers[(s, arm)] = trainer
                if _train_together(trainers, train_dev, test_dev, deadline, options, data_info, results):
                    break  # paused
    return results


def _train_together(
    trainers: dict[tuple[int, str], ArmTrainer],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    deadline: float | None,
    options: RunOptions,
    data_info: dict,
    results: dict[int, dict[str, ArmResult]],
) -> bool:
    """Round-robin the trainers to the end of their recipes (or the deadline); True when paused."""
    bar_on = options.progress and sys.stderr.isatty()
    active = dict(trainers)
    total = 0
    for t in active.values():
        t.begin_epoch(train)
        total += t.epoch_steps_left + (t.config.epochs - t.progress.epoch - 1) * t.epoch_steps
    last_save = time.monotonic()
    with tqdm(total=total, desc=f"{len(active)} models", disable=not bar_on, unit="step", dynamic_ncols=True) as bar:
        while active:
            bar.update(len(active))
            for key, t in list(active.items()):
                t.train_step()
                if t.epoch_steps_left == 0:
                    _end_epoch(key, t, test, data_info, bar_on)
                    if t.progress.finished:
                        p = t.progress
                        results[key[0]][key[1]] = ArmResult(key[1], t.arm_dir, "finished", p.epoch, p.last_acc)
                        del active[key]
                    else:
                        t.begin_epoch(train)
            now = time.monotonic()
            out_of_time = deadline is not None and now >= deadline
            every = options.checkpoint_every_s
            if active and (out_of_time or (every and now - last_save >= every)):
                for t in active.values():
                    t.checkpoint(now)
                last_save = now
                if out_of_time:
                    for (s, arm), t in active.items():
                        write_arm_files(t, data_info)
                        results[s][arm] = ArmResult(arm, t.arm_dir, "paused", t.progress.epoch, None)
                    return True
    return False


def _end_epoch(key: tuple[int, str], t: ArmTrainer, test, data_info: dict, bar_on: bool) -> None:
    t.fold_sums(time.monotonic())
    t.finish_epoch(test)
    t.save()
    write_arm_files(t, data_info)
    if not bar_on:
        print(epoch_line(t, f"seed{key[0]}/{key[1]}"), file=sys.stderr, flush=True)
