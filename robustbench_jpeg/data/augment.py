"""Batched CIFAR augmentation: random 32 x 32 crop from a zero-padded image, then a random horizontal flip.

The random parameters are drawn on the CPU from a ``torch.Generator`` (:func:`draw_augment_params`) and applied
by pure indexing (:func:`apply_augment`) on whatever device the images live on, so one seed gives the same
augmented batch on every device. No per-image Python loop, no PIL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD = 4
AUGMENTATION = f"random crop 32 x 32 from the image zero-padded by {PAD} pixels; horizontal flip with probability 1/2"


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images in 0..255 -> floating point in [0, 1] (divided by 255), on the same device.

    Floating-point input is taken to be in [0, 1] already and is returned cast to ``dtype``.
    """
    if images.dtype == torch.uint8:
        return images.to(dtype).div_(255.0)
    if images.is_floating_point():
        return images.to(dtype)
    raise TypeError(f"to_float expects uint8 or floating-point images, got {images.dtype}")


def draw_augment_params(
    n: int, generator: torch.Generator | None = None, pad: int = PAD, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw the crop offsets and flips of ``n`` images: ``(dy, dx, flip)``.

    ``dy``, ``dx``: int64 in ``[0, 2 * pad]`` (offset of the crop inside the padded image; ``pad`` = no shift);
    ``flip``: bool, True with probability 1/2. Drawn on the CPU from ``generator`` (the global CPU generator when
    None) in the order dy, dx, flip, then moved to ``device``.
    """
    if n < 0 or pad < 0:
        raise ValueError(f"n and pad must be >= 0, got n={n}, pad={pad}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("draw_augment_params needs a CPU torch.Generator (so every device sees the same draws)")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, dtype=torch.int64)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, dtype=torch.int64)
    flip = torch.randint(0, 2, (n,), generator=generator, dtype=torch.int64).bool()
    return dy.to(device), dx.to(device), flip.to(device)


def apply_augment(
    images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int = PAD
) -> torch.Tensor:
    """Crop ``images`` (N x C x H x W, any dtype) at offsets (dy, dx) of the ``pad``-zero-padded batch, then flip
    horizontally where ``flip`` is True. Output has the input's shape, dtype and device."""
    if images.ndim != 4:
        raise ValueError(f"expected N x C x H x W images, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    for name, t in (("dy", dy), ("dx", dx), ("flip", flip)):
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
    if dy.device.type == "cpu" and dx.device.type == "cpu" and n:
        lo = min(int(dy.min()), int(dx.min()))
        hi = max(int(dy.max()), int(dx.max()))
        if lo < 0 or hi > 2 * pad:
            raise ValueError(f"crop offsets must lie in [0, {2 * pad}] for pad={pad}, got [{lo}, {hi}]")
    device = images.device
    dy = dy.to(device=device, dtype=torch.int64)
    dx = dx.to(device=device, dtype=torch.int64)
    flip = flip.to(device=device, dtype=torch.bool)

    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images  # zeros, N x C x (H+2p) x (W+2p)
    rows = dy[:, None] + torch.arange(h, device=device)  # N x H
    cols = dx[:, None] + torch.arange(w, device=device)  # N x W
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # flipping = reading the columns backwards
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    pad: int = PAD,
    flip: bool = True,
    params: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Random crop (``pad``-pixel zero padding) and, if ``flip``, random horizontal flip of a whole batch.

    ``params`` = ``(dy, dx, flip)`` from :func:`draw_augment_params` overrides the draw; otherwise they are
    drawn from ``generator`` (CPU). The flips are always drawn, so ``flip=False`` does not shift the random
    stream; it only ignores them.
    """
    if params is None:
        params = draw_augment_params(images.shape[0], generator, pad)
    dy, dx, flips = params
    if not flip:
        flips = torch.zeros_like(flips, dtype=torch.bool)
    return apply_augment(images, dy, dx, flips, pad)
