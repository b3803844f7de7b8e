"""One arm's trainer: its model, optimisers and :class:`Progress`, so a checkpoint captures all of it.

The step keeps the data on the training device as uint8, augments in batch there from parameters drawn on the CPU
(every device sees the same draws), runs the backbone under bf16 autocast and channels_last on CUDA (the JPEG layer
always in float32), and accumulates the metrics on the device: no host sync inside the step. A non-finite loss is
noticed at the next sync point (a checkpoint, the epoch's end), before anything is saved, so the last good
checkpoint stays on disk.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..checkpoint import save_checkpoint
from ..config import ConfigError, RunOptions, TrainConfig
from ..data import AUGMENTATION, NUM_CLASSES, apply_augment, draw_augment_params, epoch_order, epoch_seed, to_float
from ..device import autocast
from ..models import RobustNet, create_model
from ..provenance import provenance
from ..run_format import ModelCard
from .arms import arm_jpeg_config, learns_tables
from .evaluate import evaluate, qtables
from .progress import Progress, lr_at

__all__ = ["ArmTrainer", "NonFiniteLossError", "AUGMENT_SALT"]

AUGMENT_SALT = 0x5EED_A5A5
DIST_SYNC_EVERY = 16  # under DDP, the time limit and periodic checkpoints are agreed on every this many steps


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped without saving (the last checkpoint is good)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class ArmTrainer:
    """Trains one arm of a paired run (``config`` must be resolved, see :func:`resolve_config`)."""

    def __init__(self, config: TrainConfig, options: RunOptions, arm: str, arm_dir: Path, device: torch.device,
                 n_train: int) -> None:
        self.config, self.options, self.arm, self.arm_dir, self.device = config, options, arm, arm_dir, device
        self.n_train = n_train
        self.amp = options.amp == "bf16" or (options.amp == "auto" and device.type == "cuda")
        self.channels_last = options.channels_last if options.channels_last is not None else device.type == "cuda"
        seed_everything(config.seed)
        self.model: RobustNet = create_model(config.model, NUM_CLASSES[config.dataset],
                                             jpeg=arm_jpeg_config(arm, config))
        self.dist = distributed.info()
        self.model.to(device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.optimizer = torch.optim.SGD(self.model.backbone_parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        tables = self.model.jpeg_parameters() if learns_tables(arm) else []
        for p in self.model.jpeg_parameters():
            p.requires_grad_(bool(tables))
        self.jpeg_optimizer = torch.optim.Adam(tables, lr=config.jpeg_lr, weight_decay=0.0) if tables else None
        self._ddp: torch.nn.Module | None = None
        self.step_fn = self._compiled(self.model) if options.compile and not self.dist.distributed else self.model
        self.progress = Progress()
        self.qtables_init = qtables(self.model)

    def _compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        return torch.compile(module, dynamic=False, mode=self.options.compile_mode)

    # -- state -------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "jpeg_optimizer": self.jpeg_optimizer.state_dict() if self.jpeg_optimizer else None,
                **self.progress.state(), "qtables_init": self.qtables_init, "config": self.config.to_dict()}

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
        self.progress = Progress.from_state(state)
        self.qtables_init = state.get("qtables_init")

    def save(self) -> None:
        """Write the checkpoint (rank 0 only under DDP: the state is the same on every rank)."""
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
        c, p = self.config, self.progress
        jpeg_arm = self.model.has_jpeg
        return ModelCard(
            model=c.model, arm=self.arm, dataset=c.dataset, num_classes=NUM_CLASSES[c.dataset],
            jpeg=self.model.jpeg.config.to_dict() if jpeg_arm else None, seed=c.seed, epochs=c.epochs,
            epochs_done=p.epoch, finished=p.finished,
            recipe={"batch_size": c.batch_size, "lr": c.lr, "momentum": c.momentum, "weight_decay": c.weight_decay,
                    "milestones": list(c.milestones), "gamma": c.gamma,
                    "jpeg_lr": c.jpeg_lr if self.jpeg_optimizer else None,
                    "jpeg_lr_schedule": c.jpeg_lr_schedule if self.jpeg_optimizer else None,
                    "augmentation": AUGMENTATION, "loss": "cross-entropy",
                    "amp": "bf16 autocast (backbone), JPEG layer fp32" if self.amp else "off (fp32)",
                    "channels_last": self.channels_last},
            clean_top1=p.last_acc,
            clean_top1_note="last epoch, test split, fp32; JPEG arms with their deployed quantizer",
            best_top1=p.best_acc if p.best_epoch >= 0 else None,
            best_epoch=p.best_epoch + 1 if p.best_epoch >= 0 else None,
            best_top1_note="best epoch on the test split: model selection on the test set, shown for comparison",
            qtables=qtables(self.model), qtables_init=self.qtables_init,
            n_parameters=sum(q.numel() for q in self.model.parameters()),
            n_jpeg_parameters=sum(q.numel() for q in self.model.jpeg_parameters()),
            data=data_info, wall_seconds=round(p.wall_seconds, 2), world_size=self.dist.world,
            fingerprint=fingerprint, **provenance(self.device),
        )

    # -- training ----------------------------------------------------------------------------------------------
    def lrs(self) -> tuple[float, float | None]:
        """Set and return this epoch's learning rates (backbone, tables)."""
        c, epoch = self.config, self.progress.epoch
        lr = lr_at(c.lr, epoch, c.milestones, c.gamma)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        jpeg_lr = None
        if self.jpeg_optimizer is not None:
            jpeg_lr = c.jpeg_lr if c.jpeg_lr_schedule == "constant" else lr_at(c.jpeg_lr, epoch, c.milestones, c.gamma)
            for group in self.jpeg_optimizer.param_groups:
                group["lr"] = jpeg_lr
        return lr, jpeg_lr

    def train_epoch(self, train: tuple[torch.Tensor, torch.Tensor], deadline: float | None = None, bar=None) -> bool:
        """Run (the rest of) the current epoch on device-resident uint8 ``train`` data.

        Returns False when stopped by the time limit (a checkpoint is written first).
        """
        images, labels = train
        n, bs, world = images.shape[0], self.config.batch_size, self.dist.world
        if world > 1 and self._ddp is None:
            self._wrap_distributed()
        p = self.progress
        order = epoch_order(n, self.config.seed, p.epoch).to(self.device)
        generator = torch.Generator().manual_seed(epoch_seed(self.config.seed, p.epoch) ^ AUGMENT_SALT)
        dy, dx, flip = draw_augment_params(n, generator, device=self.device)
        self.lrs()
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        steps = math.ceil(n / bs)
        if world > 1 and 0 < n % bs < world:  # the ragged last batch would leave some rank an empty slice
            steps = n // bs
        start_time = last_save = time.monotonic()
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        while p.step < steps:
            global_idx = order[p.step * bs: (p.step + 1) * bs]
            lo, hi = distributed.shard_bounds(global_idx.shape[0]) if world > 1 else (0, global_idx.shape[0])
            idx = global_idx[lo:hi]  # this rank's contiguous slice of the global batch (all of it: one process)
            sl = slice(p.step * bs + lo, p.step * bs + hi)  # augmentation params belong to epoch positions
            x = to_float(apply_augment(images[idx], dy[sl], dx[sl], flip[sl])).contiguous(memory_format=memory_format)
            y = labels[idx]
            with autocast(self.device, self.amp):
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
            finite &= torch.isfinite(batch_loss_sum)
            correct += (logits.detach().argmax(dim=1) == y).sum()
            p.step += 1
            if bar is not None:
                bar.update(1)
            now = time.monotonic()
            out_of_time = deadline is not None and now >= deadline
            want_save = bool(self.options.checkpoint_every_s and now - last_save >= self.options.checkpoint_every_s)
            if world > 1:  # decided together (so no rank waits in a collective the others skipped)
                if p.step % DIST_SYNC_EVERY == 0 and p.step < steps:
                    out_of_time, want_save = distributed.any_true(out_of_time, want_save)
                else:
                    out_of_time = want_save = False
            if out_of_time or want_save:
                self._fold(loss_sum, correct, finite, now - start_time)
                loss_sum.zero_(), correct.zero_()
                start_time = last_save = now
                self.save()
                if out_of_time and p.step < steps:
                    return False
        self._fold(loss_sum, correct, finite, time.monotonic() - start_time)
        return True

    def _fold(self, loss_sum: torch.Tensor, correct: torch.Tensor, finite: torch.Tensor, seconds: float) -> None:
        """A sync point: add the device-side sums to the progress; stop on a non-finite loss before any save."""
        totals = torch.stack([loss_sum.double(), correct.double(), (~finite).double()])
        if self.dist.distributed:  # collective: every rank folds at the same steps
            totals = distributed.all_reduce_sum(totals)
        if float(totals[2]) > 0:
            raise NonFiniteLossError(
                f"{self.arm}: the training loss became NaN or infinite in epoch {self.progress.epoch + 1} (before "
                f"step {self.progress.step}); stopped without saving, the last checkpoint in {self.arm_dir} is good. "
                "Lower --lr / --jpeg-lr or check the data and options, then resume or start a new --out"
            )
        seen = min(self.progress.step * self.config.batch_size, self.n_train)
        self.progress.fold(float(totals[0]), int(round(float(totals[1]))), seen, seconds)

    def finish_epoch(self, test: tuple[torch.Tensor, torch.Tensor]) -> float:
        """Evaluate on the test split in float32 (rank 0, shared with the others) and close the epoch."""
        t0 = time.monotonic()
        acc = distributed.run_on_main(
            lambda: evaluate(self.model, *test, batch_size=self.options.eval_batch_size)[0]
        )
        lr, jpeg_lr = self.lrs()
        self.progress.end_epoch(lr, jpeg_lr, acc, time.monotonic() - t0, self.config.epochs)
        return acc
