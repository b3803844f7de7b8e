"""Evaluate any model: ``robustbench_jpeg.evaluate(model, images, labels, spec="autoattack", out="runs/my-model")``.

The model is any ``nn.Module`` mapping RGB images in [0, 1] (NCHW) to logits: a torchvision or RobustBench model,
a defence of your own, a model this toolkit did not build. ``evaluate`` writes an ordinary run folder with it as
the ``baseline`` arm (``card.json`` naming its class, ``checkpoint.pt`` with its weights for the record), then runs
the sweep on it exactly as ``jpeg-robust attack`` does: results.csv, the per-image records, checks.json, so that
``jpeg-robust report --run OUT`` reads it. Resumable: the same call again finds the cells done; another model or
other images in the same folder are recognised by the weights fingerprint and the images' hash and refused.

The toolkit's gradient modes (soft, BPDA, surrogate) act on its own JPEG layer; on another model the attacks use
the model's own gradients (a spec's ``grad`` list collapses to ``none``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..checkpoint import read_card, save_checkpoint, write_card
from .provided import ProvidedArm, provide_arm

__all__ = ["evaluate"]

ARM = "baseline"  # the arm name the evaluated model takes in the run folder (no JPEG layer of the toolkit's)


def _images_0_255(images: torch.Tensor) -> torch.Tensor:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be N x 3 x H x W RGB, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.cpu()
    if not images.is_floating_point() or images.min() < 0 or images.max() > 1:
        raise ValueError("images must be uint8 (0..255) or floats in [0, 1]")
    return images.detach().float().cpu() * 255.0


def _data_hash(images: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _write_arm(arm_dir: Path, model: nn.Module, num_classes: int, dataset: str, data_hash: str) -> None:
    card = {
        "model": f"custom:{type(model).__name__}",
        "arm": ARM,
        "dataset": dataset,
        "num_classes": num_classes,
        "jpeg": None,
        "seed": 0,  # not trained here: the run format's train_seed of an externally built model
        "evaluated_with": "robustbench_jpeg.evaluate",
        "test_data_sha256": data_hash,
    }
    if (arm_dir / "card.json").is_file():
        old = read_card(arm_dir)
        if old.get("test_data_sha256") != data_hash or old.get("dataset") != dataset:
            raise ValueError(
                f"{arm_dir}: this run folder was evaluated on other test images or another data set name; "
                "use a new out folder"
            )
    save_checkpoint(arm_dir, {"model": model.state_dict()})
    write_card(arm_dir, card)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: str = "autoattack",
    out: str | os.PathLike = "runs/my-model",
    dataset: str = "custom",
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Attack ``model`` on ``(images, labels)`` with ``spec`` and write the run folder ``out``; returns the rows.

    Args:
        model: any ``nn.Module`` from [0, 1] RGB (N x 3 x H x W) to logits; evaluated in eval mode.
        images: uint8 (0..255) or float in [0, 1]; the test images, in the order the spec's ``n_examples`` counts.
        labels: integer class labels.
        spec: a spec name (``autoattack``, ``standard-linf``, ...), a spec file, or a :class:`SpecFile`.
        out: the run folder to write (created; resumable).
        dataset: the data set's name in the folder (``custom``); a report shows it.
        device, batch_size, progress: as for ``jpeg-robust attack``.

    Returns:
        The spec's ``results.csv`` rows (``attrs``: checks, verdict, masking, as :func:`run_sweep` returns).
    """
    from ..attack.spec_files import as_specfile
    from .protocol import run_sweep

    pixels, labels = _images_0_255(images), torch.as_tensor(labels).long().cpu()
    if len(labels) != len(pixels):
        raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
    training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    device_now = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    with torch.no_grad():
        num_classes = int(model(pixels[:1].float().div(255).to(device_now)).shape[1])
    arm_dir = Path(out) / ARM
    _write_arm(arm_dir, model, num_classes, dataset, _data_hash(pixels, labels))
    specfile = as_specfile(spec, "cli")
    if batch_size is not None:
        specfile = specfile.with_overrides(batch_size=batch_size)
    try:
        with provide_arm(arm_dir, ProvidedArm(model, pixels, labels)):
            return run_sweep(out, specfile, device=device, progress=progress, arms=[ARM])
    finally:
        model.train(training)
        for parameter, flag in zip(model.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
