"""Shared pieces of the benchmarks: timing, the "usual way" training loop, and the results file.

Every benchmark measures our path and the usual path side by side in one process and prints their ratio; the
absolute figures depend on the machine, the ratios much less. Rows go to ``benchmarks/results.csv`` (unless
``--no-save``) and, when the environment variable ``OUT`` is set (a folder collected from a remote
machine), also to ``$OUT/benchmarks.csv``.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from robustbench_jpeg.data import load_split
from robustbench_jpeg.provenance import atomic_write_text, device_name, git_sha, library_versions, now_iso

RESULTS = Path(__file__).resolve().parent / "results.csv"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 1) -> float:
    """Seconds for ``repeats`` calls of ``fn``, synchronised on the device at both ends."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return time.perf_counter() - start


def training_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` real CIFAR-100 training images (the embedded mini set, tiled when ``n`` exceeds it)."""
    images, labels = load_split("cifar100-mini", train=True)
    reps = -(-n // images.shape[0])
    return images.repeat(reps, 1, 1, 1)[:n].contiguous(), labels.repeat(reps)[:n].contiguous()


class _PilDataset(torch.utils.data.Dataset):
    """The usual CIFAR pipeline: PIL image per sample, RandomCrop(32, 4) + flip + ToTensor in workers."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        from torchvision import transforms

        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.numpy()
        self.transform = transforms.Compose(
            [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def plain_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, workers: int, device: torch.device):
    return torch.utils.data.DataLoader(
        _PilDataset(images, labels),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=workers > 0,
    )


def plain_train_step(model, optimizer, jpeg_optimizer, x, y) -> torch.Tensor:
    """One fp32 step as a typical training script does it (no autocast, NCHW)."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    if jpeg_optimizer is not None:
        jpeg_optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if jpeg_optimizer is not None:
        jpeg_optimizer.step()
        model.jpeg.project_()
    return loss


def append_result(row: dict[str, Any], save: bool = True) -> list[Path]:
    """Append one row (with provenance) to benchmarks/results.csv (when ``save``) and to ``$OUT/benchmarks.csv``
    (when ``OUT`` is set), atomically; new columns extend the header. Returns the files written."""
    row = {"timestamp": now_iso(), "git_sha": git_sha(), **row}
    versions = library_versions()
    row.setdefault("torch", versions["torch"])
    paths = [RESULTS] if save else []
    if os.environ.get("OUT"):
        paths.append(Path(os.environ["OUT"]) / "benchmarks.csv")
    for path in paths:
        _append_csv(path, row)
    return paths


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = []
    if path.exists():
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())


def describe(device: torch.device) -> str:
    return device_name(device)
