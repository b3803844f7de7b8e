"""One arm's trainer: its model, optimisers and :class:`Progress`, so a checkpoint captures all of it.

The step keeps the data on the training device as uint8, augments in batch there from parameters drawn on the CPU
(every device sees the same draws), runs the backbone under bf16 autocast and channels_last on CUDA and on
bf16-capable CPUs (the JPEG layer always in float32), and accumulates the metrics on the device: no host sync inside
the step. A non-finite loss is noticed at the next sync point (a checkpoint, the epoch's end), before anything is
saved, so the last good checkpoint stays on disk.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..checkpoint import save_checkpoint
from ..config import ConfigError, RunOptions, TrainConfig
from ..data import NUM_CLASSES, apply_augment, draw_augment_params, epoch_order, epoch_seed, to_float
from ..device import autocast, use_bf16, use_channels_last
from ..jpeg import prepare_dct
from ..models import RobustNet, create_model
from ..runfolder import CHECKPOINT_NAME, ModelCard
from .arms import arm_jpeg_config, learns_tables
from .card import arm_card
from .evaluate import evaluate, qtables
from .graph import GraphStep, graph_unavailable, set_capturable
from .progress import Progress, scheduled_lr

__all__ = ["ArmTrainer", "NonFiniteLossError", "CudaGraphFallbackWarning", "AUGMENT_SALT"]

AUGMENT_SALT = 0x5EED_A5A5
DIST_SYNC_EVERY = 16  # under DDP, the time limit and periodic checkpoints are agreed on every this many steps


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped without saving (the last checkpoint is good)."""


class CudaGraphFallbackWarning(UserWarning):
    """``cuda_graph`` was asked for where the step cannot be captured; training runs eagerly (the message says why)."""


@dataclass
class _Epoch:
    """The epoch in progress: the data, its order and augmentation draws (eager step), the step count, the
    device-side sums and the host times of the last fold and the last checkpoint."""

    images: torch.Tensor
    labels: torch.Tensor
    order: torch.Tensor | None
    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None
    steps: int
    loss_sum: torch.Tensor
    correct: torch.Tensor
    finite: torch.Tensor
    start_time: float
    last_save: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class ArmTrainer:
    """Trains one arm of a paired run (``config`` must be resolved, see :func:`resolve_config`)."""

    def __init__(
        self, config: TrainConfig, options: RunOptions, arm: str, arm_dir: Path, device: torch.device, n_train: int
    ) -> None:
        self.config, self.options, self.arm, self.arm_dir, self.device = config, options, arm, arm_dir, device
        self.n_train = n_train
        self.amp = use_bf16(options.amp, device)
        self.channels_last = use_channels_last(options.channels_last, device)
        seed_everything(config.seed)
        self.model: RobustNet = create_model(
            config.model, NUM_CLASSES[config.dataset], jpeg=arm_jpeg_config(arm, config)
        )
        self.dist = distributed.info()
        self.model.to(device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.optimizer = torch.optim.SGD(
            self.model.backbone_parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
        tables = self.model.jpeg_parameters() if learns_tables(arm) else []
        for p in self.model.jpeg_parameters():
            p.requires_grad_(bool(tables))
        # The whole step as a CUDA graph (train/graph.py) where it can be captured; else eager, saying why.
        # None: the eager step; "capture": GraphStep replayed as a CUDA graph; "eager", "emulate": tests
        self._static_mode: str | None = None
        self._recorder = None
        if options.cuda_graph:
            why = graph_unavailable(device, self.dist.distributed, options.compile)
            if why is None:
                self._static_mode = "capture"
            else:
                warnings.warn(f"--cuda-graph: {why}; training eagerly", CudaGraphFallbackWarning, stacklevel=2)
        self.jpeg_optimizer = (
            torch.optim.Adam(tables, lr=config.jpeg_lr, weight_decay=0.0, capturable=self.captures) if tables else None
        )
        set_capturable(self.jpeg_optimizer, self.captures)
        self.static: GraphStep | None = None
        self._epoch: _Epoch | None = None
        self._ddp: torch.nn.Module | None = None
        self.step_fn = self._compiled(self.model) if options.compile and not self.dist.distributed else self.model
        self.progress = Progress()
        self.qtables_init = qtables(self.model)

    @property
    def captures(self) -> bool:
        """Does this trainer replay its step as a CUDA graph?"""
        return self._static_mode == "capture"

    def use_static_step(self, recorder=None) -> None:
        """Run the graph-ready step (:class:`GraphStep`) without CUDA capture: the same code on static buffers, on
        any device; with ``recorder``, its warm-up/capture/replay logic too, the capture done by ``recorder`` (see
        :class:`GraphStep`). For tests and comparisons; ``RunOptions.cuda_graph`` is the way to train with graphs."""
        if self.dist.distributed:
            raise ValueError("the static-buffer step is single-process")
        self._static_mode = "eager" if recorder is None else "emulate"
        self._recorder, self.static = recorder, None

    def _compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        prepare_dct(self.device)  # built before tracing: one graph, no host work inside it
        return torch.compile(module, dynamic=False, mode=self.options.compile_mode)

    # -- state -------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "jpeg_optimizer": self.jpeg_optimizer.state_dict() if self.jpeg_optimizer else None,
            **self.progress.state(),
            "qtables_init": self.qtables_init,
            "config": self.config.to_dict(),
        }

    def load(self, state: dict[str, Any]) -> None:
        saved = state.get("config")
        try:  # a checkpoint of an earlier version lacks fields added since: compare with their defaults
            saved = TrainConfig.from_dict(saved).to_dict() if isinstance(saved, dict) else saved
        except (ValueError, TypeError):
            pass
        if saved != self.config.to_dict():
            raise ConfigError(f"checkpoint in {self.arm_dir} was made with another config; refusing to resume")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.jpeg_optimizer is not None:
            self.jpeg_optimizer.load_state_dict(state["jpeg_optimizer"])
            set_capturable(self.jpeg_optimizer, self.captures)  # how this sitting runs, not how the saver ran
        self.progress = Progress.from_state(state)
        self.qtables_init = state.get("qtables_init")

    def save(self) -> None:
        """Write the checkpoint (rank 0 only under DDP: the state is the same on every rank)."""
        self.join()
        if self.dist.is_main:
            save_checkpoint(self.arm_dir, self.state())

    def _wrap_distributed(self) -> None:
        """DistributedDataParallel on first use (after any resume), so every rank starts from rank 0's state.

        BatchNorm statistics stay per rank (no SyncBatchNorm: its per-layer all-gathers cost more than they bring
        at this batch size) and buffers are not re-broadcast every step; rank 0's model is the one saved.
        """
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self._ddp = DistributedDataParallel(self.model, device_ids=device_ids, broadcast_buffers=False)
        self.step_fn = self._compiled(self._ddp) if self.options.compile else self._ddp

    def card(self, data_info: dict[str, Any], fingerprint: str | None = None) -> ModelCard:
        self.join()
        return arm_card(self, data_info, fingerprint)

    # -- training ----------------------------------------------------------------------------------------------
    def lrs(self) -> tuple[float, float | None]:
        """Set and return this epoch's learning rates (backbone, tables)."""
        c, epoch = self.config, self.progress.epoch
        lr = scheduled_lr(c.lr, epoch, c)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        jpeg_lr = None
        if self.jpeg_optimizer is not None:
            jpeg_lr = c.jpeg_lr if c.jpeg_lr_schedule == "constant" else scheduled_lr(c.jpeg_lr, epoch, c)
            for group in self.jpeg_optimizer.param_groups:
                group["lr"] = jpeg_lr
        return lr, jpeg_lr

    def begin_epoch(self, train: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Set up (the rest of) the current epoch on device-resident uint8 ``train`` data: its order and
        augmentation draws, learning rates and device-side sums; :meth:`train_step` then runs its steps."""
        images, labels = train
        n, bs, world = images.shape[0], self.config.batch_size, self.dist.world
        if world > 1 and self._ddp is None:
            self._wrap_distributed()
        p = self.progress
        order = epoch_order(n, self.config.seed, p.epoch)
        generator = torch.Generator().manual_seed(epoch_seed(self.config.seed, p.epoch) ^ AUGMENT_SALT)
        dy, dx, flip = draw_augment_params(n, generator)  # on the CPU: every device sees the same draws
        lrs = self.lrs()
        self.model.train()
        steps = math.ceil(n / bs)
        if world > 1 and 0 < n % bs < world:  # the ragged last batch would leave some rank an empty slice
            steps = n // bs
        now = time.monotonic()
        if self._static_mode is not None:
            if self.static is None or not self.static.binds(images, labels):
                if self.static is not None:  # other data: a new step (and graph); the old one finishes first
                    self.static.join()
                    self.static.release()
                self.static = GraphStep(
                    self, images, labels, capture=self._static_mode in ("capture", "emulate"), recorder=self._recorder
                )
            self.static.load_epoch(order, dy, dx, flip, p.step * bs, lrs)
            s = self.static
            self._epoch = _Epoch(
                images, labels, None, None, None, None, steps, s.loss_sum, s.correct, s.finite, now, now
            )
            return
        dev = self.device
        self._epoch = _Epoch(
            images,
            labels,
            order.to(dev),
            dy.to(dev),
            dx.to(dev),
            flip.to(dev),
            steps,
            torch.zeros((), device=dev),
            torch.zeros((), dtype=torch.int64, device=dev),
            torch.ones((), dtype=torch.bool, device=dev),
            now,
            now,
        )

    @property
    def epoch_steps(self) -> int:
        """Steps of the epoch begun by :meth:`begin_epoch`."""
        return self._epoch.steps

    @property
    def epoch_steps_left(self) -> int:
        """Steps of the epoch begun by :meth:`begin_epoch` still to run."""
        return self._epoch.steps - self.progress.step

    def train_step(self) -> None:
        """One training step of the current epoch (no host sync: the sums stay on the device)."""
        e, p, bs, world = self._epoch, self.progress, self.config.batch_size, self.dist.world
        if self.static is not None and self._static_mode is not None:
            self.static.step(min(bs, e.images.shape[0] - p.step * bs))
            p.step += 1
            return
        global_idx = e.order[p.step * bs : (p.step + 1) * bs]
        lo, hi = distributed.shard_bounds(global_idx.shape[0]) if world > 1 else (0, global_idx.shape[0])
        idx = global_idx[lo:hi]  # this rank's contiguous slice of the global batch (all of it: one process)
        sl = slice(p.step * bs + lo, p.step * bs + hi)  # augmentation params belong to epoch positions
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        x = to_float(apply_augment(e.images[idx], e.dy[sl], e.dx[sl], e.flip[sl]))
        x = x.contiguous(memory_format=memory_format)
        y = e.labels[idx]
        with autocast(self.device, self.amp):
            logits = self.step_fn(x)
        if world == 1:
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.config.label_smoothing)
            batch_loss_sum = loss.detach() * y.shape[0]
        else:  # DDP averages gradients over ranks: sum * world / B makes that the global-batch mean
            ce_sum = F.cross_entropy(logits.float(), y, reduction="sum", label_smoothing=self.config.label_smoothing)
            loss = ce_sum * (world / global_idx.shape[0])
            batch_loss_sum = ce_sum.detach()
        self.update(loss)
        e.loss_sum += batch_loss_sum
        e.finite &= torch.isfinite(batch_loss_sum)
        e.correct += (logits.detach().argmax(dim=1) == y).sum()
        p.step += 1

    def update(self, loss: torch.Tensor) -> None:
        """One optimisation step from ``loss``: both optimisers, then the tables back into their bounds."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.jpeg_optimizer is not None:
            self.jpeg_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.jpeg_optimizer is not None:
            self.jpeg_optimizer.step()
            self.model.jpeg.project_()

    def checkpoint(self, now: float) -> None:
        """Fold the epoch's sums so far into the progress (a sync point) and write the checkpoint."""
        self.fold_sums(now)
        self._epoch.last_save = now
        self.save()

    def fold_sums(self, now: float) -> None:
        """Add the device-side sums since the last fold to the progress and restart them (a sync point)."""
        e = self._epoch
        self._fold(e.loss_sum, e.correct, e.finite, now - e.start_time)
        e.loss_sum.zero_(), e.correct.zero_()
        e.start_time = now

    def train_epoch(self, train: tuple[torch.Tensor, torch.Tensor], deadline: float | None = None, bar=None) -> bool:
        """Run (the rest of) the current epoch on device-resident uint8 ``train`` data.

        Returns False when stopped by the time limit (a checkpoint is written first).
        """
        self.begin_epoch(train)
        e, p, world = self._epoch, self.progress, self.dist.world
        while p.step < e.steps:
            self.train_step()
            if bar is not None:
                bar.update(1)
            now = time.monotonic()
            out_of_time = deadline is not None and now >= deadline
            want_save = bool(self.options.checkpoint_every_s and now - e.last_save >= self.options.checkpoint_every_s)
            if world > 1:  # decided together (so no rank waits in a collective the others skipped)
                if p.step % DIST_SYNC_EVERY == 0 and p.step < e.steps:
                    out_of_time, want_save = distributed.any_true(out_of_time, want_save)
                else:
                    out_of_time = want_save = False
            if out_of_time or want_save:
                self.checkpoint(now)
                if out_of_time and p.step < e.steps:
                    return False
        self.fold_sums(time.monotonic())
        return True

    def join(self) -> None:
        """Order the default stream after the graph step's own stream (before reading sums or weights)."""
        if self.static is not None:
            self.static.join()

    def _fold(self, loss_sum: torch.Tensor, correct: torch.Tensor, finite: torch.Tensor, seconds: float) -> None:
        """A sync point: add the device-side sums to the progress; stop on a non-finite loss before any save."""
        self.join()
        totals = torch.stack([loss_sum.double(), correct.double(), (~finite).double()])
        if self.dist.distributed:  # collective: every rank folds at the same steps
            totals = distributed.all_reduce_sum(totals)
        loss_sum_value, correct_value, non_finite = totals.tolist()  # one device-to-host copy for the three
        if non_finite > 0:
            checkpoint = self.arm_dir / CHECKPOINT_NAME
            kept = (
                f"the last checkpoint {checkpoint} is good"
                if checkpoint.is_file()
                else f"no checkpoint was written yet ({checkpoint} does not exist)"
            )
            raise NonFiniteLossError(
                f"{self.arm}: the training loss became NaN or infinite in epoch {self.progress.epoch + 1} (before "
                f"step {self.progress.step}); stopped without saving, {kept}. Lower --lr / --jpeg-lr or check the "
                "data and options, then resume or start a new --out"
            )
        seen = min(self.progress.step * self.config.batch_size, self.n_train)
        self.progress.fold(loss_sum_value, int(round(correct_value)), seen, seconds)

    def finish_epoch(self, test: tuple[torch.Tensor, torch.Tensor]) -> float:
        """Evaluate on the test split in float32 (rank 0, shared with the others) and close the epoch."""
        t0 = time.monotonic()
        self.join()
        acc = distributed.run_on_main(lambda: evaluate(self.model, *test, batch_size=self.options.eval_batch_size)[0])
        lr, jpeg_lr = self.lrs()
        self.progress.end_epoch(lr, jpeg_lr, acc, time.monotonic() - t0, self.config.epochs)
        return acc
