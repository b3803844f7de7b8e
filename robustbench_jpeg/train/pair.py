"""Paired training: the arms of a run with the same seed, data order, augmentation and recipe, one after another.

Each arm writes ``RUN/<arm>/checkpoint.pt`` (resumable, also mid-epoch), ``card.json`` and ``history.csv``; the run
writes ``RUN/config.json`` (the resolved recipe) and holds ``RUN/.train.lock`` while it trains, so two trainings
never write one folder. Under ``torchrun --nproc_per_node=N`` the same code trains with DistributedDataParallel:
every global step takes the single-process global batch, each rank a contiguous slice of it (docs/distributed.md);
rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..checkpoint import checkpoint_path, load_checkpoint, load_model, read_model_card, weights_fingerprint, write_card
from ..config import PAPER_EPOCHS, PAPER_MILESTONES, ConfigError, RunOptions, TrainConfig
from ..data import load_split
from ..device import resolve_device, training_backend
from ..jpeg.sensitivity import sensitivity_tables
from ..models import recipe_defaults
from ..provenance import atomic_write_json, exclusive_lock, read_json_file
from ..runfolder import (
    ARMS,
    BASELINE,
    CARD_NAME,
    CHECKPOINT_NAME,
    CONFIG_NAME,
    HISTORY_NAME,
    JPEGDL,
    TRAIN_LOCK,
    RunFormatError,
    check_arm,
)
from .arm import ArmTrainer
from .evaluate import qtables
from .progress import write_history

__all__ = [
    "train_pair",
    "train_arm",
    "resolve_config",
    "ArmResult",
    "TrainLockedError",
    "open_arm",
    "open_run",
    "load_data",
    "write_arm_files",
    "epoch_line",
    "arm_order",
]


class TrainLockedError(RuntimeError):
    """Another training holds the run folder."""


@dataclass
class ArmResult:
    arm: str
    arm_dir: Path
    status: str  # "finished", "paused" (time limit), "skipped" (already finished) or "completed" (finished before,
    # its card and history written now: a crash had left them behind the final checkpoint)
    epochs_done: int
    clean_top1: float | None


def resolve_config(config: TrainConfig) -> TrainConfig:
    """The recipe with every ``None`` filled in from the architecture's paper recipe (what is saved and compared on
    resume): the learning rate, the milestones (150/180/210 scaled to the epochs), the initial JPEG table."""
    recipe = recipe_defaults(config.model)
    milestones = config.milestones
    if milestones is None:
        milestones = tuple(max(1, round(m * config.epochs / PAPER_EPOCHS)) for m in PAPER_MILESTONES)
    jpeg = config.jpeg
    if jpeg.q_init == "paper" and jpeg.paper_table is None:
        jpeg = dataclasses.replace(jpeg, paper_table=recipe.paper_table)
    return dataclasses.replace(
        config,
        lr=config.lr if config.lr is not None else recipe.lr,
        milestones=tuple(int(m) for m in milestones),
        jpeg=jpeg,
    )


def _config_record(config: TrainConfig, options: RunOptions) -> dict[str, Any]:
    record = config.to_dict()
    record["data_dir"] = options.data_dir
    if options.train_subset is not None:
        record["train_subset"] = options.train_subset
    return record


def _check_same_recipe(run_dir: Path, config: TrainConfig, options: RunOptions) -> list[str]:
    """Refuse a recipe other than the one the run folder holds (the arms may differ); return the arms it records."""
    saved = read_json_file(run_dir / CONFIG_NAME, fix="restore it, or train into a new --out folder", expect=dict)
    if saved.get("train_subset") != options.train_subset:
        raise ConfigError(
            f"{run_dir} was started with train_subset={saved.get('train_subset')!r}, now "
            f"{options.train_subset!r}; use the same value or train into a new --out folder"
        )
    mine = config.to_dict()
    saved_train = {k: v for k, v in saved.items() if k in mine}
    try:  # a recipe of an earlier version lacks fields added since: compare with their defaults
        saved_train = TrainConfig.from_dict(saved_train).to_dict()
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{run_dir / CONFIG_NAME} is not a valid recipe ({exc}); restore it, or train into a new --out folder"
        ) from None
    saved_train["arms"] = mine["arms"]  # training more (or fewer) of the arms later is fine
    diff = sorted(k for k in mine if saved_train.get(k) != mine[k])
    if diff:
        changes = ", ".join(f"{k}: {saved_train.get(k)!r} -> {mine[k]!r}" for k in diff)
        raise ConfigError(
            f"the recipe differs from the one {run_dir} was started with ({changes}); use the original "
            "settings (--resume to continue), or train into a new --out folder"
        )
    return list(saved.get("arms") or [])


def _prepare_run_dir(run_dir: Path, config: TrainConfig, options: RunOptions, resume: bool) -> None:
    """Check the folder against the recipe and record it. Arms of one recipe may be trained by separate processes
    (each arm has its own lock); a different recipe is always refused."""
    recorded: list[str] = []
    started = any(checkpoint_path(run_dir / arm).exists() or (run_dir / arm / CARD_NAME).exists() for arm in ARMS)
    if (run_dir / CONFIG_NAME).exists() and started:  # a recipe nothing was trained with (bad data dir) is replaced
        recorded = _check_same_recipe(run_dir, config, options)
        existing = [arm for arm in config.arms if checkpoint_path(run_dir / arm).exists()]
        if existing and not resume:
            raise FileExistsError(
                f"{run_dir} already holds a run (arms: {', '.join(existing)}); pass --resume to "
                "continue it or choose another --out"
            )
    elif resume and any(checkpoint_path(run_dir / arm).exists() for arm in config.arms):
        raise ConfigError(f"{run_dir} has checkpoints but no config.json; cannot check the recipe, refusing to resume")
    elif (run_dir / CONFIG_NAME).exists():  # nothing trained yet: the same recipe keeps the arms another process
        with contextlib.suppress(ConfigError, RunFormatError):  # may be starting; another recipe replaces it
            recorded = _check_same_recipe(run_dir, config, options)
    arms = [a for a in ARMS if a in set(recorded) | set(config.arms)]
    atomic_write_json(run_dir / CONFIG_NAME, _config_record(dataclasses.replace(config, arms=tuple(arms)), options))


def _sensitivity_from_baseline(
    run_dir: Path, train: tuple[torch.Tensor, torch.Tensor], config: TrainConfig, device: torch.device
):
    base_dir = run_dir / BASELINE
    try:
        card = read_model_card(base_dir)
    except FileNotFoundError as exc:
        raise ConfigError("q_init='sensitivity' needs a trained baseline arm in the same run (train it first)") from exc
    if not card.is_finished:
        raise ConfigError("q_init='sensitivity' needs the baseline arm to have finished training first")
    model = load_model(base_dir, device)  # the run's device, where the training data already is
    return sensitivity_tables(
        model, train[0], train[1], q_max=config.jpeg.q_max, chroma_offset=config.jpeg.chroma_offset
    )


def open_arm(
    config: TrainConfig,
    arm: str,
    run_dir: Path,
    options: RunOptions,
    train: tuple[torch.Tensor, torch.Tensor],
    resume: bool,
    device: torch.device,
) -> ArmTrainer:
    """The arm's trainer: resumed from its checkpoint (``--resume``; an existing one is an error otherwise), or
    fresh (tables from the run's own baseline for ``q_init='sensitivity'``). ``progress.finished`` may be True."""
    arm_dir = run_dir / arm
    trainer = ArmTrainer(config, options, arm, arm_dir, device, n_train=train[0].shape[0])

    def has_checkpoint() -> bool:  # decided by rank 0 (the writer), the same answer everywhere
        if checkpoint_path(arm_dir).exists():
            if not resume:
                raise FileExistsError(
                    f"{arm_dir} already holds a checkpoint; pass --resume to continue it or choose another --out"
                )
            return True
        return False

    if distributed.run_on_main(has_checkpoint):
        trainer.load(load_checkpoint(arm_dir, map_location=device))  # every rank reads the same file
        distributed.barrier()  # nobody rewrites it before every rank has read it
    elif arm == JPEGDL and config.jpeg.q_init == "sensitivity":
        tables = distributed.run_on_main(lambda: _sensitivity_from_baseline(run_dir, train, config, device))
        trainer.model.jpeg.set_quantization_tables(*tables)
        trainer.qtables_init = qtables(trainer.model)
    return trainer


def finished_status(trainer: ArmTrainer, data_info: dict[str, Any]) -> str:
    """For an arm whose checkpoint says it finished: ``skipped`` if its card and history match it, else
    ``completed`` after writing them (a crash between the final checkpoint and the card left them behind)."""

    def card_behind() -> bool:
        try:
            card = read_model_card(trainer.arm_dir)
        except (FileNotFoundError, ValueError):
            return True
        stale = not card.is_finished or card.fingerprint != weights_fingerprint(trainer.model)
        return stale or not (trainer.arm_dir / HISTORY_NAME).is_file()

    behind = distributed.run_on_main(card_behind)
    if behind:
        write_arm_files(trainer, data_info)
    return "completed" if behind else "skipped"


def write_arm_files(trainer: ArmTrainer, data_info: dict[str, Any]) -> None:
    """history.csv and card.json of the arm (rank 0)."""
    if trainer.dist.is_main:
        write_history(trainer.arm_dir / HISTORY_NAME, trainer.progress.history)
        write_card(trainer.arm_dir, trainer.card(data_info, weights_fingerprint(trainer.model)))


def epoch_line(trainer: ArmTrainer, label: str) -> str:
    """The one line printed per finished epoch when there is no progress bar."""
    p, c = trainer.progress, trainer.config
    row = p.history[-1]
    return (
        f"{label} {c.model} epoch {p.epoch}/{c.epochs}: loss {row['loss']:.4f}, train "
        f"{100 * row['train_acc']:.2f}%, test {100 * row['test_acc']:.2f}% ({row['seconds']:.0f} s)"
    )


def train_arm(
    config: TrainConfig,
    arm: str,
    run_dir: Path,
    options: RunOptions,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    resume: bool,
    deadline: float | None,
    data_info: dict[str, Any],
) -> ArmResult:
    device = distributed.local_device(resolve_device(options.device))
    arm_dir = run_dir / arm
    trainer = open_arm(config, arm, run_dir, options, train, resume, device)
    main = trainer.dist.is_main
    p = trainer.progress
    if p.finished:
        return ArmResult(arm, arm_dir, finished_status(trainer, data_info), p.epoch, p.last_acc)
    train_dev = (train[0].to(device), train[1].to(device))
    test_dev = (test[0].to(device), test[1].to(device))
    steps = math.ceil(train[0].shape[0] / config.batch_size)
    bar_on = options.progress and main and sys.stderr.isatty()

    with (
        tqdm(
            total=config.epochs * steps,
            initial=p.epoch * steps + p.step,
            desc=f"{arm} {config.model}",
            disable=not bar_on,
            unit="step",
            dynamic_ncols=True,
        ) as bar,
        training_backend(device),
    ):
        while p.epoch < config.epochs:
            if not trainer.train_epoch(train_dev, deadline, bar):
                write_arm_files(trainer, data_info)
                return ArmResult(arm, arm_dir, "paused", p.epoch, None)
            acc = trainer.finish_epoch(test_dev)
            row = p.history[-1]
            bar.set_postfix(epoch=p.epoch, loss=f"{row['loss']:.3f}", test_acc=f"{acc:.4f}")
            trainer.save()
            write_arm_files(trainer, data_info)
            if main and not bar_on:
                print(epoch_line(trainer, arm), file=sys.stderr, flush=True)
            if deadline is not None and not p.finished:
                (out_of_time,) = distributed.any_true(time.monotonic() >= deadline)  # every rank stops, or none
                if out_of_time:
                    return ArmResult(arm, arm_dir, "paused", p.epoch, acc)
    return ArmResult(arm, arm_dir, "finished", p.epoch, p.last_acc)


PREPARE_WAIT_S = 60  # how long a process waits for another one preparing the same run folder (it takes moments)


def arm_order(arms: tuple[str, ...]) -> list[str]:
    """The order arms are trained in: baseline, JPEG-DL, then the control arms as listed."""
    return [a for a in (BASELINE, JPEGDL) if a in arms] + [a for a in arms if a not in (BASELINE, JPEGDL)]


def open_run(
    stack: contextlib.ExitStack, run_dir: Path, config: TrainConfig, options: RunOptions, resume: bool
) -> None:
    """Rank 0 locks the arms to train (held until ``stack`` closes), checks the folder and writes config.json (under
    a short run-level lock); its verdict (or error) reaches every rank."""

    def prepare() -> None:
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is a file, not a folder; choose a folder")
        run_dir.mkdir(parents=True, exist_ok=True)
        for arm in config.arms:  # held for the whole training: one process per arm at a time
            (run_dir / arm).mkdir(exist_ok=True)
            stack.enter_context(
                exclusive_lock(
                    run_dir / arm / TRAIN_LOCK,
                    busy=TrainLockedError(
                        f"another `jpeg-robust train` is training arm {arm} of {run_dir}; wait for it to finish"
                    ),
                )
            )
            remove_partial_writes(run_dir / arm)
        busy = TrainLockedError(
            f"another `jpeg-robust train` has been preparing {run_dir} for over {PREPARE_WAIT_S} s; try again later"
        )
        # config.json: checked and written by one process at a time; two started together (one per arm) take turns
        with exclusive_lock(run_dir / TRAIN_LOCK, busy=busy, wait_s=PREPARE_WAIT_S):
            _prepare_run_dir(run_dir, config, options, resume)

    distributed.run_on_main(prepare)


def remove_partial_writes(arm_dir: Path) -> None:
    """Delete the temporary files a killed training left in its arm folder (``.checkpoint.pt.*.tmp``, ...: the
    atomic writes' halves; the files they were replacing are intact). Called under the arm's lock."""
    for name in (CHECKPOINT_NAME, CARD_NAME, HISTORY_NAME):
        for leftover in arm_dir.glob(f".{name}.*.tmp"):
            if leftover.is_file() and not leftover.is_symlink():
                leftover.unlink(missing_ok=True)


def load_data(config: TrainConfig, options: RunOptions):
    """(train, test, data_info): the splits on the CPU, the training split cut to ``train_subset``."""

    def load() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        kw = {"data_dir": options.data_dir, "download": options.download}
        return load_split(config.dataset, train=True, **kw), load_split(config.dataset, train=False, **kw)

    if options.download and distributed.world_size() > 1:  # rank 0 downloads (if needed) before the others look
        distributed.run_on_main(lambda: load() and None)
    train, test = load()
    if options.train_subset is not None:
        train = (train[0][: options.train_subset], train[1][: options.train_subset])
    data_info = {"train_images": int(train[0].shape[0]), "test_images": int(test[0].shape[0])}
    return train, test, data_info


def train_pair(
    config: TrainConfig, out_dir: str | Path, options: RunOptions | None = None, resume: bool = False
) -> dict[str, ArmResult]:
    """Train the configured arms (baseline first) into ``out_dir``; returns one :class:`ArmResult` per arm.

    The arms share the seed (identical backbone initialisation), the epoch order and the augmentation draws.
    ``resume=True`` continues an interrupted run (mid-epoch checkpoints included) and refuses a changed recipe;
    without it an existing checkpoint is an error, so nothing is ever overwritten. A second training of the same
    folder is refused while one runs (:class:`TrainLockedError`).

    Under ``torchrun`` (``WORLD_SIZE > 1``) this joins the process group and trains with DistributedDataParallel;
    every rank returns the same results, and only rank 0 writes files (see docs/distributed.md).
    """
    options = options or RunOptions()
    config = resolve_config(config)
    for arm in config.arms:
        check_arm(arm)
    run_dir = Path(out_dir)
    distributed.init_from_env(resolve_device(options.device))
    with contextlib.ExitStack() as stack:
        open_run(stack, run_dir, config, options, resume)
        train, test, data_info = load_data(config, options)
        deadline = time.monotonic() + options.time_limit_s if options.time_limit_s else None
        results: dict[str, ArmResult] = {}
        for arm in arm_order(config.arms):
            results[arm] = train_arm(config, arm, run_dir, options, train, test, resume, deadline, data_info)
            if results[arm].status == "paused":
                break
        distributed.barrier()  # when any rank returns, rank 0 has written every file
    return results
