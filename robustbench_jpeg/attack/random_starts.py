"""Per-image random starts: image i of a cell gets the same random start whatever batch or process crafts it.

torchattacks draws PGD's random start with in-place ``uniform_`` on the whole batch. Inside
:class:`PerSampleRandom` every such batch-first fill draws row i from image i's own CPU generator, seeded by
:func:`start_seed` (cell, restart, image index), so results do not depend on the batch size, the device or the
number of torchrun processes. Any other unseeded random call inside an attack is an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["PerSampleRandom", "start_seed", "derive_seed"]

_PER_SAMPLE_FILLS = frozenset((torch.Tensor.uniform_, torch.Tensor.normal_))
_UNSEEDED_RANDOM = frozenset(
    (
        torch.rand,
        torch.randn,
        torch.randint,
        torch.rand_like,
        torch.randn_like,
        torch.randint_like,
        torch.randperm,
        torch.bernoulli,
        torch.normal,
        torch.multinomial,
        torch.poisson,
        torch.Tensor.random_,
        torch.Tensor.bernoulli_,
        torch.Tensor.bernoulli,
        torch.Tensor.exponential_,
        torch.Tensor.cauchy_,
        torch.Tensor.log_normal_,
        torch.Tensor.geometric_,
        torch.Tensor.multinomial,
    )
)


class PerSampleRandom(TorchFunctionMode):
    """Per-sample random streams for an attack on a batch: inside, every in-place ``uniform_``/``normal_`` fill of
    a tensor whose first dimension is the batch draws row i (on the CPU, then copied) from sample i's own
    generator, so sample i gets the same random start whatever batch (or process) it is crafted in, on any
    device. The attack's own code (torchattacks) runs unchanged: only where its random numbers come from changes.
    Any other random call without an explicit generator is an error rather than a silent batch dependence.
    """

    def __init__(self, seeds: Sequence[int]) -> None:
        super().__init__()
        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("generator") is None and func in _PER_SAMPLE_FILLS:
            target = args[0]
            if target.dim() == 0 or target.shape[0] != len(self.generators):
                raise RuntimeError(
                    f"random {func.__name__} of shape {tuple(target.shape)} inside an attack on a batch of "
                    f"{len(self.generators)}: only per-sample draws (batch first) can be seeded per image"
                )
            rows = torch.empty(target.shape, dtype=target.dtype)
            for row, generator in zip(rows, self.generators, strict=True):
                func(row, *args[1:], generator=generator, **kwargs)
            with torch.no_grad():
                target.copy_(rows)
            return target
        if kwargs.get("generator") is None and func in _UNSEEDED_RANDOM:
            raise RuntimeError(f"unseeded random call {func.__name__} inside an attack (not per-sample seeded)")
        return func(*args, **kwargs)


def derive_seed(*parts: object) -> int:
    """A 60-bit seed from a stable hash of ``parts`` (e.g. cell id, restart, image index)."""
    digest = hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:15], 16)


def start_seed(cell_id: str, restart: int, index: int) -> int:
    """The seed of the random start of test image ``index`` in restart ``restart`` of a cell."""
    return derive_seed(cell_id, "start", restart, index)
