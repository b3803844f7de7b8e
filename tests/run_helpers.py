"""Helpers the tests share: a run folder's arm (checkpoint + model card) written by hand."""

from __future__ import annotations

from pathlib import Path

import torch

from robustbench_jpeg.checkpoint import save_checkpoint, write_card
from robustbench_jpeg.jpeg import JpegConfig
from robustbench_jpeg.models import create_model


def write_arm(
    run_dir: Path,
    arm: str,
    state: dict | None = None,
    dataset: str = "cifar100-mini",
    model_name: str = "tiny",
    seed: int = 0,
    extra_card: dict | None = None,
    model: torch.nn.Module | None = None,
) -> Path:
    """Write ``run_dir/arm`` (checkpoint + card) holding ``model_name`` with ``state`` (backbone weights) loaded, or
    the given ``model`` as it is (a JPEG-DL arm defaults to the resnet56 paper tables)."""
    if model is None:
        jpeg = JpegConfig(paper_table="resnet56") if arm == "jpegdl" else None
        model = create_model(model_name, jpeg=jpeg)
    jpeg = model.jpeg.config if model.has_jpeg else None
    if state is not None:
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all(k.startswith("jpeg.") for k in missing)
    arm_dir = Path(run_dir) / arm
    arm_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(arm_dir, {"model": model.state_dict()})
    card = {
        "model": model_name,
        "arm": arm,
        "dataset": dataset,
        "num_classes": 100,
        "jpeg": jpeg.to_dict() if jpeg else None,
        "seed": seed,
        **(extra_card or {}),
    }
    write_card(arm_dir, card)
    return arm_dir
