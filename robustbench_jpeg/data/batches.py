"""Deterministic epoch order and batch iteration over in-memory tensors.

Every arm and every resumed run takes its sample order from :func:`epoch_order`, a function of (seed, epoch)
only, so paired arms see identical data in identical order and a resumed run continues where it left off.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

_EPOCH_MULT = 1_000_003


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of one epoch: ``seed * 1_000_003 + epoch`` (taken modulo 2**63)."""
    return (int(seed) * _EPOCH_MULT + int(epoch)) % (1 << 63)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch: an int64 CPU permutation of ``range(n)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=generator, dtype=torch.int64)


def iterate_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    order: torch.Tensor | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images[idx], labels[idx])`` batches of ``batch_size``, in ``order`` (or the stored order).

    Without ``order`` the batches are views (slices); with it, index tensors are moved to each tensor's device
    once. ``drop_last`` drops a final short batch.
    """
    n = images.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"{n} images but {labels.shape[0]} labels")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    if order is not None:
        order = torch.as_tensor(order, dtype=torch.int64)
        if order.ndim != 1:
            raise ValueError(f"order must be 1-D, got shape {tuple(order.shape)}")
        total = order.shape[0]
        order_img = order.to(images.device)
        order_lab = order_img if labels.device == images.device else order.to(labels.device)
    else:
        total = n
    stop = total - total % batch_size if drop_last else total
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, total)
        if order is None:
            yield images[start:end], labels[start:end]
        else:
            yield images[order_img[start:end]], labels[order_lab[start:end]]
