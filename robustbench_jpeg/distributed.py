"""Small helpers for multi-process runs under ``torchrun`` (DistributedDataParallel training, sharded sweeps).

Single-process use never touches ``torch.distributed``: without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) every
helper is a no-op (``barrier``) or the identity (``all_reduce_sum``, ``broadcast_object``, ``gather_shards``).
Under ``torchrun --nproc_per_node=N`` :func:`init_from_env` joins the process group: NCCL when the work runs on
CUDA (each rank on ``cuda:LOCAL_RANK``), gloo on CPU. See docs/distributed.md.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "DistInfo",
    "init_from_env",
    "info",
    "is_main",
    "world_size",
    "local_device",
    "barrier",
    "all_reduce_sum",
    "any_true",
    "broadcast_object",
    "run_on_main",
    "shard_bounds",
    "gather_shards",
    "cleanup",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its machine.

    ``backend`` is ``None`` for a single process, else ``gloo`` or ``nccl``; ``comm_device`` is the device that
    collective tensors live on (CPU for gloo, this rank's GPU for NCCL).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    comm_device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


_SINGLE = DistInfo()
_INFO: DistInfo | None = None


def _env_world() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str | torch.device = "auto") -> DistInfo:
    """Join the process group described by torchrun's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; idempotent.

    ``device`` is where the work runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``): CUDA selects NCCL and makes
    ``cuda:LOCAL_RANK`` the current device, CPU selects gloo. Without ``WORLD_SIZE`` (or ``WORLD_SIZE=1``)
    nothing is initialised and a single-process :class:`DistInfo` is returned. A process group that the caller
    initialised already is adopted as it is.
    """
    global _INFO
    if _INFO is not None:
        return _INFO
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        backend = str(dist.get_backend())
        comm = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        _INFO = DistInfo(dist.get_rank(), dist.get_world_size(), local, backend, comm)
        return _INFO
    world = _env_world()
    if world <= 1:
        return _SINGLE
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    kind = torch.device(device).type if str(device) != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        torch.cuda.set_device(local)
        backend, comm = "nccl", f"cuda:{local}"
    else:
        backend, comm = "gloo", "cpu"
    dist.init_process_group(backend=backend)
    _INFO = DistInfo(rank, world, local, backend, comm)
    return _INFO


def launched_as_main() -> bool:
    """Rank 0 of a torchrun launch (``RANK`` in the environment), or a single process; readable before any process
    group is joined, so a command can do rank-0 work (recording itself) before its first collective."""
    return _env_world() <= 1 or os.environ.get("RANK", "0") == "0"


def info() -> DistInfo:
    """The current :class:`DistInfo` (single process until :func:`init_from_env` joined a group)."""
    return _INFO if _INFO is not None else _SINGLE


def is_main() -> bool:
    return info().is_main


def world_size() -> int:
    return info().world


def local_device(device: torch.device) -> torch.device:
    """``device`` as this rank uses it: under a multi-process run, any CUDA device becomes ``cuda:LOCAL_RANK``."""
    current = info()
    if current.distributed and device.type == "cuda":
        return torch.device("cuda", current.local_rank)
    return device


def barrier() -> None:
    if info().distributed:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks (in place, on every rank) and return it; the identity for one process.

    The tensor is moved to the collective device and back when needed (NCCL needs CUDA tensors).
    """
    current = info()
    if not current.distributed:
        return tensor
    import torch.distributed as dist

    work = tensor if tensor.device == torch.device(current.comm_device) else tensor.to(current.comm_device)
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    if work is not tensor:
        tensor.copy_(work)
    return tensor


def any_true(*flags: bool) -> tuple[bool, ...]:
    """Per position: is the flag true on any rank? (One small all-reduce; collective: every rank must call it.)"""
    if not info().distributed:
        return tuple(bool(f) for f in flags)
    counts = all_reduce_sum(torch.tensor([int(bool(f)) for f in flags], dtype=torch.int64))
    return tuple(bool(c) for c in counts.tolist())


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (picklable) on every rank; ``obj`` itself for one process."""
    if not info().distributed:
        return obj
    import torch.distributed as dist

    box = [obj if info().rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result, or the exception it raised, to every rank.

    Decisions that read or write files (does a checkpoint exist? is this cell done?) are made once, by the rank
    that writes, so all ranks take the same branch and none waits forever in a collective the others skipped.
    """
    current = info()
    if not current.distributed:
        return fn()
    result: Any = None
    error: BaseException | None = None
    if current.is_main:
        try:
            result = fn()
        except Exception as exc:  # re-raised on every rank below
            error = exc
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


def shard_bounds(n: int, rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """The contiguous slice ``[lo, hi)`` of ``n`` items that ``rank`` (default: this process) handles.

    Ranks take consecutive slices in rank order; sizes differ by at most one (the first ``n % world`` ranks take
    one more), and a rank's slice is empty when ``n < world`` leaves nothing for it.
    """
    current = info()
    rank = current.rank if rank is None else rank
    world = current.world if world is None else world
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def gather_shards(local: np.ndarray, n: int) -> np.ndarray:
    """Every rank's shard (``local`` = items ``shard_bounds(n)`` of this rank) assembled in order on every rank.

    ``local`` is a 1-d bool or integer array; the result has its dtype and length ``n``. One process: ``local``.
    """
    current = info()
    if not current.distributed:
        if local.shape != (n,):
            raise ValueError(f"expected {n} items, got {local.shape}")
        return local
    lo, hi = shard_bounds(n)
    if local.shape != (hi - lo,):
        raise ValueError(f"rank {current.rank} holds items [{lo}, {hi}) but got an array of shape {local.shape}")
    full = torch.zeros(n, dtype=torch.int64)
    full[lo:hi] = torch.from_numpy(np.asarray(local).astype(np.int64))
    all_reduce_sum(full)  # shards are disjoint: the sum places each rank's values
    return full.numpy().astype(local.dtype)


def cleanup() -> None:
    """Leave the process group (if this module joined or adopted one)."""
    global _INFO
    if _INFO is None:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _INFO = None
