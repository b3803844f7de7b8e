"""Paired training: a baseline and a JPEG-DL arm with the same seed, data order, augmentation and recipe.

The fast path is the only path: the data set lives on the training device as uint8, augmentation runs in batch
on that device from parameters drawn on the CPU (so every device sees the same draws), the backbone runs under
bf16 autocast and channels_last on CUDA, and metrics accumulate on the device without host syncs inside the
step. The JPEG layer always runs in float32. On CPU everything is exact float32.

Each arm writes ``RUN/<arm>/checkpoint.pt`` (resumable, also mid-epoch), ``card.json`` and ``history.csv``.

Under ``torchrun --nproc_per_node=N`` the same code trains with DistributedDataParallel: every global step takes
the single-process global batch and each rank processes a contiguous slice of it (docs/distributed.md); rank 0
alone writes files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import checkpoint_path, load_checkpoint, save_checkpoint, write_card
from .config import ConfigError, RunOptions, TrainConfig
from .data import NUM_CLASSES, apply_augment, draw_augment_params, epoch_order, epoch_seed, load_split, to_float
from .jpeg.functional import coefficients_to_rgb, jpeg_coefficients
from .models import RobustNet, create_model
from .provenance import atomic_write_json, atomic_write_text, provenance, read_json

__all__ = ["train_pair", "train_arm", "evaluate", "resolve_device", "ArmResult", "ArmTrainer", "sensitivity_tables"]

_AUGMENT_SALT = 0x5EED_A5A5
_DIST_SYNC_EVERY = 16  # under DDP, the time limit and periodic checkpoints are agreed on every this many steps


@dataclass
class ArmResult:
    arm: str
    arm_dir: Path
    status: str  # "finished", "paused" (time limit) or "skipped" (already finished)
    epochs_done: int
    clean_top1: float | None


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    return device


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _use_amp(options: RunOptions, device: torch.device) -> bool:
    return options.amp == "bf16" or (options.amp == "auto" and device.type == "cuda")


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 1000,
    amp: bool = False,
) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy and the per-sample correctness (bool, CPU) of ``model`` in eval mode on uint8 images."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start : start + batch_size].to(device, non_blocking=True))
        y = labels[start : start + batch_size].to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = model(x)
        correct.append(logits.argmax(dim=1) == y)
    model.train(was_training)
    flags = torch.cat(correct).cpu()
    return float(flags.float().mean()), flags


def sensitivity_tables(
    baseline: RobustNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    q_max: float = 10.0,
    n: int = 10_000,
    batch_size: int = 250,
    chroma_offset: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's sensitivity initialisation (spec section 5.1) from a trained baseline, in eval mode.

    s_c[m] = mean over images of the summed squared loss gradient w.r.t. DCT coefficient m of channel c;
    Q_Y = kappa / s_Y, Q_C = 2 kappa / (s_Cb + s_Cr), kappa such that max Q_Y = q_max.
    """
    device = next(baseline.parameters()).device
    baseline.eval()
    total = torch.zeros(3, 8, 8, dtype=torch.float64, device=device)
    count = min(n, images.shape[0])
    for start in range(0, count, batch_size):
        x = to_float(images[start : min(start + batch_size, count)].to(device))
        y = labels[start : start + x.shape[0]].to(device)
        coeffs = jpeg_coefficients(x, chroma_offset).detach().requires_grad_(True)
        loss = F.cross_entropy(baseline(coefficients_to_rgb(coeffs, chroma_offset)), y)
        (grad,) = torch.autograd.grad(loss, coeffs)
        total += (grad.double() ** 2).sum(dim=(0, 2, 3))
    sens = (total / count).clamp_min(1e-30).cpu()
    kappa = q_max * float(sens[0].min())
    return (kappa / sens[0]).float(), (2 * kappa / (sens[1] + sens[2])).float()


def _lr_at(base: float, epoch: int, milestones: tuple[int, ...], gamma: float) -> float:
    """Step schedule applied at epoch start (0-indexed epoch): decayed once per milestone already passed."""
    return base * gamma ** sum(epoch >= m for m in milestones)


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    fields = ["epoch", "loss", "train_acc", "test_acc", "lr", "jpeg_lr", "seconds"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _qtables(model: RobustNet) -> dict[str, Any] | None:
    if not model.has_jpeg:
        return None
    luma_int, chroma_int = model.jpeg.quantization_tables()
    return {
        "luma": model.jpeg.q_luma.detach().cpu().tolist(),
        "chroma": model.jpeg.q_chroma.detach().cpu().tolist(),
        "luma_int": luma_int.tolist(),
        "chroma_int": chroma_int.tolist(),
    }


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class ArmTrainer:
    """Trains one arm; holds the model, optimisers and progress so checkpoints capture all of it."""

    def __init__(
        self, config: TrainConfig, options: RunOptions, arm: str, arm_dir: Path, device: torch.device, n_train: int
    ):
        self.config, self.options, self.arm, self.arm_dir, self.device = config, options, arm, arm_dir, device
        self._n_train = n_train
        self.amp = _use_amp(options, device)
        self.channels_last = options.channels_last if options.channels_last is not None else device.type == "cuda"
        _seed_everything(config.seed)
        num_classes = NUM_CLASSES[config.dataset]
        self.model = create_model(config.model, num_classes, jpeg=config.jpeg if arm == "jpegdl" else None)
        self.dist = distributed.info()
        if self.dist.distributed and device.type == "cuda":  # global BatchNorm statistics (SyncBN needs CUDA)
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model.to(device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.optimizer = torch.optim.SGD(
            self.model.backbone_parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        jpeg_params = self.model.jpeg_parameters()
        self.jpeg_optimizer = (
            torch.optim.Adam(jpeg_params, lr=config.jpeg_lr, weight_decay=0.0) if jpeg_params else None
        )
        self._ddp: torch.nn.Module | None = None
        self.step_fn = torch.compile(self.model) if options.compile and not self.dist.distributed else self.model
        self.epoch, self.step, self.history = 0, 0, []
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.best = {"acc": -1.0, "epoch": -1}
        self.wall_seconds = 0.0
        self.finished = False
        self.qtables_init = _qtables(self.model)

    # -- state -------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "jpeg_optimizer": self.jpeg_optimizer.state_dict() if self.jpeg_optimizer else None,
            "epoch": self.epoch,
            "step": self.step,
            "partial": dict(self.partial),
            "history": list(self.history),
            "best": dict(self.best),
            "wall_seconds": self.wall_seconds,
            "finished": self.finished,
            "qtables_init": self.qtables_init,
            "config": self.config.to_dict(),
        }

    def load(self, state: dict[str, Any]) -> None:
        if state.get("config") != self.config.to_dict():
            raise ConfigError(f"checkpoint in {self.arm_dir} was made with another config; refusing to resume")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.jpeg_optimizer is not None:
            self.jpeg_optimizer.load_state_dict(state["jpeg_optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.partial, self.history, self.best = dict(state["partial"]), list(state["history"]), dict(state["best"])
        self.wall_seconds, self.finished = float(state["wall_seconds"]), bool(state["finished"])
        self.qtables_init = state.get("qtables_init")

    def save(self) -> None:
        """Write the checkpoint (rank 0 only under DDP: the state is the same on every rank)."""
        if self.dist.is_main:
            save_checkpoint(self.arm_dir, self.state())

    def _wrap_distributed(self) -> None:
        """Wrap the model in DistributedDataParallel (collective: broadcasts rank 0's parameters and buffers).

        Done on first use, after any resume or sensitivity initialisation, so every rank starts from rank 0's
        state. The optimisers keep stepping the plain model's parameters, which DDP shares.
        """
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self._ddp = DistributedDataParallel(self.model, device_ids=device_ids)
        self.step_fn = torch.compile(self._ddp) if self.options.compile else self._ddp

    def card(self, data_info: dict[str, Any]) -> dict[str, Any]:
        last = self.history[-1]["test_acc"] if self.history else None
        config = self.config
        return {
            "model": config.model,
            "arm": self.arm,
            "dataset": config.dataset,
            "num_classes": NUM_CLASSES[config.dataset],
            "jpeg": config.jpeg.to_dict() if self.arm == "jpegdl" else None,
            "seed": config.seed,
            "epochs": config.epochs,
            "epochs_done": self.epoch,
            "finished": self.finished,
            "recipe": {
                "batch_size": config.batch_size,
                "lr": config.lr,
                "momentum": config.momentum,
                "weight_decay": config.weight_decay,
                "milestones": list(config.milestones),
                "gamma": config.gamma,
                "jpeg_lr": config.jpeg_lr if self.arm == "jpegdl" else None,
                "jpeg_lr_schedule": config.jpeg_lr_schedule if self.arm == "jpegdl" else None,
                "augmentation": "random crop 32, 4-px zero padding; horizontal flip p=0.5",
                "loss": "cross-entropy",
                "amp": "bf16 autocast (backbone), JPEG layer fp32" if self.amp else "off (fp32)",
                "channels_last": self.channels_last,
            },
            "clean_top1": last,
            "clean_top1_note": "last epoch, test split; JPEG-DL with the soft quantizer as deployed",
            "best_top1": self.best["acc"] if self.best["epoch"] >= 0 else None,
            "best_epoch": self.best["epoch"] + 1 if self.best["epoch"] >= 0 else None,
            "best_top1_note": "best epoch on the test split: model selection on the test set, shown for comparison",
            "qtables": _qtables(self.model),
            "qtables_init": self.qtables_init,
            "n_parameters": sum(p.numel() for p in self.model.parameters()),
            "n_jpeg_parameters": sum(p.numel() for p in self.model.jpeg_parameters()),
            "data": data_info,
            "wall_seconds": round(self.wall_seconds, 2),
            "world_size": self.dist.world,  # processes of the latest sitting (torchrun --nproc_per_node)
            **provenance(self.device),
        }

    # -- training ----------------------------------------------------------------------------------------------
    def _set_lrs(self) -> tuple[float, float | None]:
        c = self.config
        lr = _lr_at(c.lr, self.epoch, c.milestones, c.gamma)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        jpeg_lr = None
        if self.jpeg_optimizer is not None:
            jpeg_lr = (
                c.jpeg_lr if c.jpeg_lr_schedule == "constant" else _lr_at(c.jpeg_lr, self.epoch, c.milestones, c.gamma)
            )
            for group in self.jpeg_optimizer.param_groups:
                group["lr"] = jpeg_lr
        return lr, jpeg_lr

    def train_epoch(self, train: tuple[torch.Tensor, torch.Tensor], deadline: float | None = None, bar=None) -> bool:
        """Run (the rest of) the current epoch on device-resident uint8 ``train`` data.

        Returns False when stopped by the time limit (a checkpoint is written first).
        """
        images, labels = train
        n, bs = images.shape[0], self.config.batch_size
        world = self.dist.world
        if world > 1 and self._ddp is None:
            self._wrap_distributed()
        order = epoch_order(n, self.config.seed, self.epoch).to(self.device)
        generator = torch.Generator().manual_seed(epoch_seed(self.config.seed, self.epoch) ^ _AUGMENT_SALT)
        dy, dx, flip = draw_augment_params(n, generator, device=self.device)
        lr, jpeg_lr = self._set_lrs()
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        steps = math.ceil(n / bs)
        start_time, last_save = time.monotonic(), time.monotonic()
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        while self.step < steps:
            global_idx = order[self.step * bs : (self.step + 1) * bs]
            lo, hi = distributed.shard_bounds(global_idx.shape[0]) if world > 1 else (0, global_idx.shape[0])
            idx = global_idx[lo:hi]  # this rank's contiguous slice of the global batch (all of it: one process)
            sl = slice(self.step * bs + lo, self.step * bs + hi)  # augmentation params belong to epoch positions
            x = to_float(apply_augment(images[idx], dy[sl], dx[sl], flip[sl])).contiguous(memory_format=memory_format)
            y = labels[idx]
            with _autocast(self.device, self.amp):
                logits = self.step_fn(x)
            if world == 1:
                loss = F.cross_entropy(logits.float(), y)
                batch_loss_sum = loss.detach() * y.shape[0]
            else:  # DDP averages gradients over ranks: sum * world / B makes that the global-batch mean
                ce_sum = F.cross_entropy(logits.float(), y, reduction="sum")
                loss = ce_sum * (world / global_idx.shape[0])
                batch_loss_sum = ce_sum.detach()
            self.optimizer.zero_grad(set_to_none=True)
            if self.jpeg_optimizer is not None:
                self.jpeg_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.jpeg_optimizer is not None:
                self.jpeg_optimizer.step()
                self.model.jpeg.project_()
            loss_sum += batch_loss_sum
            correct += (logits.detach().argmax(dim=1) == y).sum()
            self.step += 1
            if bar is not None:
                bar.update(1)
            now = time.monotonic()
            out_of_time = deadline is not None and now >= deadline
            want_save = bool(self.options.checkpoint_every_s and now - last_save >= self.options.checkpoint_every_s)
            if world > 1:  # decided together (so no rank waits in a collective the others skipped)
                if self.step % _DIST_SYNC_EVERY == 0 and self.step < steps:
                    out_of_time, want_save = distributed.any_true(out_of_time, want_save)
                else:
                    out_of_time = want_save = False
            if out_of_time or want_save:
                self._fold_partial(loss_sum, correct, now - start_time)
                loss_sum.zero_(), correct.zero_()
                start_time = last_save = now
                self.save()
                if out_of_time and self.step < steps:
                    return False
        self._fold_partial(loss_sum, correct, time.monotonic() - start_time)
        p = self.partial
        self.history.append(
            {
                "epoch": self.epoch + 1,
                "loss": p["loss_sum"] / max(p["seen"], 1),
                "train_acc": p["correct"] / max(p["seen"], 1),
                "test_acc": None,
                "lr": lr,
                "jpeg_lr": jpeg_lr,
                "seconds": None,
            }
        )
        return True

    def _fold_partial(self, loss_sum: torch.Tensor, correct: torch.Tensor, seconds: float) -> None:
        if self.dist.distributed:  # collective: every rank folds at the same steps
            totals = distributed.all_reduce_sum(torch.stack([loss_sum.double(), correct.double()]))
            loss_sum, correct = totals[0], totals[1].round().long()
        self.partial["loss_sum"] += float(loss_sum)
        self.partial["correct"] += int(correct)
        self.partial["seen"] = min(self.step * self.config.batch_size, self._n_train)
        self.partial["seconds"] += seconds
        self.wall_seconds += seconds

    def finish_epoch(self, test: tuple[torch.Tensor, torch.Tensor]) -> float:
        t0 = time.monotonic()
        # rank 0 evaluates its (unwrapped) model and tells the others: one number, no gathering
        acc = distributed.run_on_main(
            lambda: evaluate(self.model, *test, batch_size=self.options.eval_batch_size, amp=self.amp)[0]
        )
        eval_seconds = time.monotonic() - t0
        self.wall_seconds += eval_seconds
        row = self.history[-1]
        row["test_acc"] = acc
        row["seconds"] = round(self.partial["seconds"] + eval_seconds, 3)
        if acc > self.best["acc"]:
            self.best = {"acc": acc, "epoch": self.epoch}
        self.epoch += 1
        self.step = 0
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.finished = self.epoch >= self.config.epochs
        return acc


def _config_record(config: TrainConfig, options: RunOptions) -> dict[str, Any]:
    record = config.to_dict()
    record["data_dir"] = options.data_dir
    if options.train_subset is not None:
        record["train_subset"] = options.train_subset
    return record


def _check_resume_config(run_dir: Path, config: TrainConfig, options: RunOptions | None = None) -> None:
    saved = read_json(run_dir / "config.json")
    if options is not None and saved.get("train_subset") != options.train_subset:
        raise ConfigError(
            f"--resume refused: {run_dir} was started with train_subset={saved.get('train_subset')!r}, now "
            f"{options.train_subset!r}"
        )
    saved_train = {k: v for k, v in saved.items() if k in config.to_dict()}
    mine = config.to_dict()
    if saved_train.get("arms") != mine["arms"]:  # training a subset of the arms later is fine
        saved_train["arms"] = mine["arms"]
    diff = sorted(k for k in mine if saved_train.get(k) != mine[k])
    if diff:
        changes = ", ".join(f"{k}: {saved_train.get(k)!r} -> {mine[k]!r}" for k in diff)
        raise ConfigError(
            f"--resume refused: the recipe differs from the one {run_dir} was started with ({changes}). "
            "Resume with the original settings, or train into a new --out folder."
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
    trainer = ArmTrainer(config, options, arm, arm_dir, device, n_train=train[0].shape[0])
    main = trainer.dist.is_main

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
        if trainer.finished:
            return ArmResult(arm, arm_dir, "skipped", trainer.epoch, trainer.history[-1]["test_acc"])
    elif arm == "jpegdl" and config.jpeg.q_init == "sensitivity":
        tables = distributed.run_on_main(lambda: _sensitivity_from_baseline(run_dir, train, config))
        trainer.model.jpeg.set_quantization_tables(*tables)
        trainer.qtables_init = _qtables(trainer.model)
    train_dev = (train[0].to(device), train[1].to(device))
    test_dev = (test[0].to(device), test[1].to(device))
    steps = math.ceil(train[0].shape[0] / config.batch_size)
    with tqdm(
        total=config.epochs * steps,
        initial=trainer.epoch * steps + trainer.step,
        desc=f"{arm} {config.model}",
        disable=not (options.progress and main),
        unit="step",
        dynamic_ncols=True,
    ) as bar:
        while trainer.epoch < config.epochs:
            if not trainer.train_epoch(train_dev, deadline, bar):
                if main:
                    write_card(arm_dir, trainer.card(data_info))
                return ArmResult(arm, arm_dir, "paused", trainer.epoch, None)
            acc = trainer.finish_epoch(test_dev)
            bar.set_postfix(epoch=trainer.epoch, loss=f"{trainer.history[-1]['loss']:.3f}", test_acc=f"{acc:.4f}")
            trainer.save()
            if main:
                _write_history(arm_dir / "history.csv", trainer.history)
                write_card(arm_dir, trainer.card(data_info))
            if deadline is not None and not trainer.finished:
                (out_of_time,) = distributed.any_true(time.monotonic() >= deadline)  # every rank stops, or none
                if out_of_time:
                    return ArmResult(arm, arm_dir, "paused", trainer.epoch, acc)
    return ArmResult(arm, arm_dir, "finished", trainer.epoch, trainer.history[-1]["test_acc"])


def _sensitivity_from_baseline(run_dir: Path, train: tuple[torch.Tensor, torch.Tensor], config: TrainConfig):
    from .checkpoint import load_model, read_card

    base_dir = run_dir / "baseline"
    try:
        card = read_card(base_dir)
    except FileNotFoundError as exc:
        raise ConfigError("q_init='sensitivity' needs a trained baseline arm in the same run (train it first)") from exc
    if not card.get("finished"):
        raise ConfigError("q_init='sensitivity' needs the baseline arm to have finished training first")
    device = resolve_device("auto")
    model = load_model(base_dir, device)
    return sensitivity_tables(
        model, train[0], train[1], q_max=config.jpeg.q_max, chroma_offset=config.jpeg.chroma_offset
    )


def train_pair(
    config: TrainConfig,
    out_dir: str | Path,
    options: RunOptions | None = None,
    resume: bool = False,
) -> dict[str, ArmResult]:
    """Train the configured arms (baseline first) into ``out_dir``; returns one :class:`ArmResult` per arm.

    Both arms share the seed (identical backbone initialisation), the epoch order and the augmentation draws.
    ``resume=True`` continues an interrupted run (mid-epoch checkpoints included) and refuses a changed recipe;
    without it an existing checkpoint is an error, so nothing is ever overwritten.

    Under ``torchrun`` (``WORLD_SIZE > 1``) this joins the process group and trains with DistributedDataParallel;
    every rank returns the same results, and only rank 0 writes files (see docs/distributed.md).
    """
    options = options or RunOptions()
    config = config.resolved()
    run_dir = Path(out_dir)
    distributed.init_from_env(resolve_device(options.device))

    def prepare_run_dir() -> None:  # rank 0 checks and writes; its verdict (or error) reaches every rank
        if (run_dir / "config.json").exists():
            if not resume:
                existing = [arm for arm in config.arms if checkpoint_path(run_dir / arm).exists()]
                if existing:
                    raise FileExistsError(
                        f"{run_dir} already holds a run (arms: {', '.join(existing)}); pass --resume to continue "
                        "it or choose another --out"
                    )
            else:
                _check_resume_config(run_dir, config, options)
        elif resume and any(checkpoint_path(run_dir / arm).exists() for arm in config.arms):
            raise ConfigError(
                f"{run_dir} has checkpoints but no config.json; cannot check the recipe, refusing to resume"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", _config_record(config, options))

    distributed.run_on_main(prepare_run_dir)

    def load() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        kw = {"data_dir": options.data_dir, "download": options.download}
        return load_split(config.dataset, train=True, **kw), load_split(config.dataset, train=False, **kw)

    if options.download and distributed.world_size() > 1:  # rank 0 downloads (if needed) before the others look

        def download() -> None:
            load()

        distributed.run_on_main(download)
    train, test = load()
    if options.train_subset is not None:
        train = (train[0][: options.train_subset], train[1][: options.train_subset])
    data_info = {"train_images": int(train[0].shape[0]), "test_images": int(test[0].shape[0])}
    deadline = time.monotonic() + options.time_limit_s if options.time_limit_s else None
    results: dict[str, ArmResult] = {}
    for arm in [a for a in ("baseline", "jpegdl") if a in config.arms]:
        results[arm] = train_arm(config, arm, run_dir, options, train, test, resume, deadline, data_info)
        if results[arm].status == "paused":
            break
    distributed.barrier()  # when any rank returns, rank 0 has written every file
    return results
