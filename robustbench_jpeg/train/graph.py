"""The training step with static buffers, replayable as one CUDA graph (``RunOptions.cuda_graph``, ``--cuda-graph``).

Eager training of a small CNN at batch 64 is bound by the host: every step launches several hundred kernels from
Python. :class:`GraphStep` holds everything a step touches at a fixed address (the device-resident uint8 data, the
epoch's order and augmentation draws, a device-side position counter, the metric sums) and runs the step of
:meth:`ArmTrainer.train_epoch <robustbench_jpeg.train.ArmTrainer.train_epoch>` from them:

1. positions ``pos + arange(B)`` of the epoch; image indices ``order[positions]``; the crop offsets and flips at
   those positions; ``pos += B`` (on the device);
2. crop, flip, float conversion, channels_last (as the eager step);
3. forward under the same bf16 autocast (its weight cache off, as capture requires), cross-entropy in float32;
4. ``zero_grad(set_to_none=True)`` of both optimisers, backward, the SGD step, the Adam step on the tables and
   ``jpeg.project_()``;
5. the loss sum, the correct count and the all-finite flag accumulated on the device.

On CUDA the first steps run eagerly on the step's own stream (cuDNN autotuning, optimiser state, library handles),
then one full step is captured and every later full step is a single ``graph.replay()``. The learning rates are
kernel constants of the captured optimiser steps, so the graph is recaptured when they change (at the schedule's
milestones). A ragged last batch (fewer than B images) runs the same code eagerly. The Adam optimiser of the tables
is built with ``capturable=True`` (step counter and bias correction on the device); SGD has no such flag and needs
none: its momentum buffers exist after the first eager step, its learning rate is a constant of the kernels.

Without capture (``capture=False``) the same code runs eagerly on any device; tests/test_graph.py checks it equals
the eager trainer bit for bit on the CPU. Capture itself needs a GPU (docs/gpu.md says what has run where).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..data import apply_augment, to_float
from ..device import autocast

if TYPE_CHECKING:
    from .arm import ArmTrainer

__all__ = ["GraphStep", "graph_unavailable", "set_capturable", "WARMUP_STEPS"]

WARMUP_STEPS = 3  # eager full steps before the first capture (as PyTorch's whole-network capture example)


def graph_unavailable(device: torch.device, distributed: bool, compile_: bool) -> str | None:
    """Why the training step cannot be captured here (None: it can)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, training runs on {device.type}"
    if not hasattr(torch.cuda, "CUDAGraph"):
        return "this torch build has no CUDA graphs"
    if distributed:
        return "not captured under DistributedDataParallel (several processes)"
    if compile_:
        return "not combined with --compile (use --compile-mode reduce-overhead for compiler-made graphs)"
    return None


def set_capturable(optimizer: torch.optim.Optimizer | None, capturable: bool) -> None:
    """Set Adam's ``capturable`` flag (a checkpoint's param groups carry the flag of the run that saved it) and put
    its step counters where that mode keeps them: on the parameter's device when capturable, else on the CPU."""
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = capturable
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            step = state.get("step")
            if isinstance(step, torch.Tensor):
                state["step"] = step.to(device=p.device if capturable else "cpu", dtype=torch.float32)
    if capturable:  # the eager warm-up and ragged steps are expected; do not warn about them
        optimizer._warned_capturable_if_run_uncaptured = True


class GraphStep:
    """One arm's training step on static buffers; ``capture=True`` (CUDA only) replays it as a CUDA graph.

    ``images``/``labels`` are the device-resident training data (uint8 / int64); they must stay at the same
    address while this object is used (the trainer makes a new one when they change). ``recorder`` replaces CUDA
    graph capture (tests: a callable taking the step's body and returning an object with ``replay()``), so the
    warm-up / capture / recapture / ragged-batch logic also runs where there is no GPU.
    """

    def __init__(
        self,
        trainer: ArmTrainer,
        images: torch.Tensor,
        labels: torch.Tensor,
        capture: bool,
        recorder: Callable[[Callable[[], None]], Any] | None = None,
    ) -> None:
        dev = trainer.device
        if capture and recorder is None and dev.type != "cuda":
            raise ValueError(f"GraphStep(capture=True) needs a CUDA device, got {dev}")
        self.trainer, self.images, self.labels, self.capture = trainer, images, labels, capture
        self.recorder = recorder
        n, self.batch = images.shape[0], trainer.config.batch_size
        self.stream = torch.cuda.Stream(dev) if capture and dev.type == "cuda" else None
        # The static buffers, allocated on the ambient stream (the step's stream waits for it before first use).
        self.order = torch.zeros(n, dtype=torch.int64, device=dev)
        self.dy = torch.zeros(n, dtype=torch.int64, device=dev)
        self.dx = torch.zeros(n, dtype=torch.int64, device=dev)
        self.flip = torch.zeros(n, dtype=torch.bool, device=dev)
        self.pos = torch.zeros((), dtype=torch.int64, device=dev)
        self.offsets = torch.arange(self.batch, device=dev)
        self.loss_sum = torch.zeros((), device=dev)
        self.correct = torch.zeros((), dtype=torch.int64, device=dev)
        self.finite = torch.ones((), dtype=torch.bool, device=dev)
        self.graph: Any = None  # a torch.cuda.CUDAGraph (or what ``recorder`` returned)
        self.graph_lrs: tuple | None = None
        self.lrs: tuple | None = None
        self.eager_full_steps = 0
        self.captures = 0
        self._wait = True  # the step's stream must wait for the default stream before its next work

    def binds(self, images: torch.Tensor, labels: torch.Tensor) -> bool:
        """Is this step built on exactly these data tensors?"""
        return images is self.images and labels is self.labels

    # -- streams -------------------------------------------------------------------------------------------------
    def _on_stream(self) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _wait_for_default(self) -> None:
        """Order this step's stream after the work the trainer queued on the ambient stream (the checkpoint it
        loaded, the evaluation, the sums it zeroed). Called outside :meth:`_on_stream`, where the current stream is
        still the ambient one."""
        if self.stream is not None and self._wait:
            self.stream.wait_stream(torch.cuda.current_stream(self.stream.device))
            self._wait = False

    def join(self) -> None:
        """Make the default stream wait for this step's work (before the host reads sums, weights or saves)."""
        if self.stream is not None:
            torch.cuda.current_stream(self.stream.device).wait_stream(self.stream)
            self._wait = True

    # -- the epoch -------------------------------------------------------------------------------------------------
    def load_epoch(
        self, order: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, start: int, lrs: tuple
    ) -> None:
        """Copy the epoch's order and augmentation draws (CPU tensors, epoch positions) into the static buffers,
        set the position to ``start`` (a resumed epoch) and zero the sums. New learning rates drop the graph."""
        self._wait_for_default()
        with self._on_stream():
            self.order.copy_(order)
            self.dy.copy_(dy)
            self.dx.copy_(dx)
            self.flip.copy_(flip)
            self.pos.fill_(start)
            self.loss_sum.zero_()
            self.correct.zero_()
            self.finite.fill_(True)
        self.lrs = lrs
        if self.graph is not None and lrs != self.graph_lrs:
            self.release()  # recaptured at the next full step with the new constants

    def release(self) -> None:
        """Drop the captured graph, once its last replay has finished (its memory pool is freed with it)."""
        if self.stream is not None:
            self.stream.synchronize()
        self.graph = None

    def step(self, count: int) -> None:
        """Train on the next ``count`` positions of the epoch (``count`` < B only for the ragged last batch)."""
        self._wait_for_default()
        with self._on_stream():
            if not self.capture or count != self.batch or self.eager_full_steps < WARMUP_STEPS:
                self._body(count)
                self.eager_full_steps += count == self.batch
                return
            if self.graph is None:
                self.graph, self.graph_lrs = self._record(count), self.lrs
                self.captures += 1
            self.graph.replay()

    def _record(self, count: int) -> Any:
        """Capture one full step; the capture records the kernels without running them (the replay runs them)."""
        if self.recorder is not None:
            return self.recorder(lambda: self._body(count))
        t = self.trainer
        for optimizer in (t.optimizer, t.jpeg_optimizer):  # as PyTorch's whole-network example: the gradients
            if optimizer is not None:  # are then allocated by the captured backward, from the graph's own pool
                optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self._body(count)
        return graph

    def _body(self, count: int) -> None:
        t = self.trainer
        positions = self.pos + self.offsets[:count]
        idx = self.order[positions]
        memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        x = to_float(apply_augment(self.images[idx], self.dy[positions], self.dx[positions], self.flip[positions]))
        x = x.contiguous(memory_format=memory_format)
        y = self.labels[idx]
        self.pos += count
        with autocast(t.device, t.amp, cache=False):
            logits = t.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=t.config.label_smoothing)
        batch_loss_sum = loss.detach() * count
        t.update(loss)
        self.loss_sum += batch_loss_sum
        self.finite &= torch.isfinite(batch_loss_sum)
        self.correct += (logits.detach().argmax(dim=1) == y).sum()
