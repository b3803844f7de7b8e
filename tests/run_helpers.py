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


def plain_jpegdl_epoch(
    images: torch.Tensor, labels: torch.Tensor, seed: int, optimizer_kwargs: dict, label_smoothing: float = 0.0
) -> tuple[torch.nn.Module, float]:
    """A textbook epoch of a ``tiny`` JPEG-DL arm at batch 64, the reference the trainer's fast path is compared
    with: per-image crop/flip with torchvision from the trainer's own order and draws, NCHW fp32, SGD on the
    backbone (``optimizer_kwargs``), Adam 0.003 on the tables, the tables projected after each step. Returns the
    model and the summed loss."""
    import torch.nn.functional as F
    from torchvision.transforms.v2 import functional as TF

    from robustbench_jpeg.data import draw_augment_params, epoch_order, epoch_seed, to_float
    from robustbench_jpeg.train import AUGMENT_SALT

    n, batch = images.shape[0], 64
    torch.manual_seed(seed)
    model = create_model("tiny", jpeg=JpegConfig(paper_table="resnet56"))
    optimizer = torch.optim.SGD(model.backbone_parameters(), **optimizer_kwargs)
    jpeg_optimizer = torch.optim.Adam(model.jpeg_parameters(), lr=0.003)
    order = epoch_order(n, seed, 0)
    dy, dx, flip = draw_augment_params(n, torch.Generator().manual_seed(epoch_seed(seed, 0) ^ AUGMENT_SALT))
    total = 0.0
    for step in range(n // batch):
        positions = range(step * batch, (step + 1) * batch)
        crops = [TF.crop(F.pad(images[order[p]], (4, 4, 4, 4)), int(dy[p]), int(dx[p]), 32, 32) for p in positions]
        flipped = [TF.horizontal_flip(c) if flip[p] else c for c, p in zip(crops, positions, strict=True)]
        y = labels[order[step * batch : (step + 1) * batch]]
        loss = F.cross_entropy(model(to_float(torch.stack(flipped))), y, label_smoothing=label_smoothing)
        optimizer.zero_grad()
        jpeg_optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        jpeg_optimizer.step()
        model.jpeg.project_()
        total += float(loss.detach()) * batch
    return model, total
