"""Adversarial examples saved on request (``jpeg-robust attack --save-adv``): per cell, the examples of the images
the attack broke, so that anyone can reload them and check the misclassifications on the deployed model.

``RUN/adversarial/<cell_id>/<first>-<last>-r<restart>.npz`` per batch of test images (``first``..``last - 1``) and
restart, so processes, batches and restarts never write the same file. Each holds ``cell_id``, ``indices`` (test-set
positions), ``labels``, ``images`` (NCHW) and ``encoding``: ``uint8`` (k/255 values) where that is lossless enough,
else ``float16``, else ``float32``: the first whose reloaded images all stay inside the threat model and
misclassified by the deployed model (checked when saving). Images broken only by an intermediate iterate (FGSM/PGD
score every iterate) whose final example is classified correctly have no example to keep; their positions are in
``broken_by_an_iterate``.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..attack.crafting import within_threat
from ..provenance import atomic_write_bytes

__all__ = ["ADVERSARIAL_DIR", "saving_adversarial", "save_broken", "load_adversarial", "ENCODINGS"]

ADVERSARIAL_DIR = "adversarial"
ENCODINGS = ("uint8", "float16", "float32")
_SAVING = contextvars.ContextVar("save_adversarial", default=False)


@contextlib.contextmanager
def saving_adversarial(enabled: bool = True) -> Iterator[None]:
    """Inside the block, every attacked batch saves the examples of the images it broke."""
    token = _SAVING.set(enabled)
    try:
        yield
    finally:
        _SAVING.reset(token)


def _encode(images: torch.Tensor, encoding: str) -> np.ndarray:
    if encoding == "uint8":
        return images.mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return images.to(getattr(torch, encoding)).cpu().numpy()


def _decode(stored: np.ndarray, encoding: str) -> torch.Tensor:
    images = torch.from_numpy(np.asarray(stored)).float()
    return images / 255 if encoding == "uint8" else images


def save_broken(
    run_dir: str | os.PathLike,
    cell,
    part: str,
    indices: np.ndarray,
    x: torch.Tensor,
    y: torch.Tensor,
    adv: torch.Tensor,
    fooled: torch.Tensor,
    deployed: Callable[[torch.Tensor], torch.Tensor],
) -> Path | None:
    """Save the examples of the images of ``x`` that ``fooled`` marks (when :func:`saving_adversarial` is on)."""
    if not _SAVING.get() or not bool(fooled.any()):
        return None
    with torch.no_grad():
        final_fools = deployed(adv).argmax(1) != y
    keep, by_iterate = fooled & final_fools, fooled & ~final_fools
    chosen = ("float32", _encode(adv[keep], "float32"))
    for encoding in ENCODINGS:
        stored = _encode(adv[keep], encoding)
        back = _decode(stored, encoding).to(x.device)
        with torch.no_grad():
            still = (deployed(back).argmax(1) != y[keep]).all() if len(back) else True
        if bool(still) and bool(within_threat(back, x[keep], cell.setting.eps, cell.setting.norm).all()):
            chosen = (encoding, stored)
            break
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        cell_id=np.array(cell.cell_id),
        indices=np.asarray(indices)[keep.cpu().numpy()],
        labels=y[keep].cpu().numpy(),
        images=chosen[1],
        encoding=np.array(chosen[0]),
        broken_by_an_iterate=np.asarray(indices)[by_iterate.cpu().numpy()],
    )
    path = Path(run_dir) / ADVERSARIAL_DIR / cell.cell_id / f"{part}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_adversarial(run_dir: str | os.PathLike, cell_id: str) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """``(indices, images as float in [0, 1], labels)`` of every example saved for ``cell_id``, by test position."""
    folder = Path(run_dir) / ADVERSARIAL_DIR / cell_id
    files = sorted(folder.glob("*.npz"), key=lambda p: [int(t.strip("r")) for t in p.stem.split("-")])
    if not files:
        raise FileNotFoundError(f"{folder}: no saved examples (attack with --save-adv)")
    parts = []
    for path in files:
        with np.load(path) as data:
            if str(data["cell_id"]) != cell_id:
                raise ValueError(f"{path}: holds cell {data['cell_id']}, not {cell_id}")
            parts.append((data["indices"], _decode(data["images"], str(data["encoding"])), data["labels"]))
    indices = np.concatenate([p[0] for p in parts])
    images = torch.cat([p[1] for p in parts]) if parts else torch.empty(0)
    labels = torch.from_numpy(np.concatenate([p[2] for p in parts])).long()
    return indices, images, labels
