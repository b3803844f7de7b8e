"""Loading CIFAR-100 (the genuine set, in torchvision's format) and the embedded ``cifar100-mini`` subset.

Every split comes back as two tensors in the data set's own order:
``images`` uint8, N x 3 x 32 x 32 (NCHW, contiguous) and ``labels`` int64, N.

``cifar100-mini`` ships inside the package (``robustbench_jpeg/data/cifar100_mini/``): a real subset of the
genuine set, the first 40 training and the first 10 test images of every class, kept in the genuine order and
stored losslessly as WebP mosaics. ``scripts/make_cifar100_mini.py`` rebuilds it; ``manifest.json`` records the
SHA-256 of the decoded arrays, checked on every load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

DATASETS = ("cifar100", "cifar100-mini")
NUM_CLASSES = {"cifar100": 100, "cifar100-mini": 100}
TEST_SIZES = {"cifar100": 10000, "cifar100-mini": 1000}

MINI_DIR = Path(__file__).resolve().parent / "cifar100_mini"
MINI_MANIFEST = "manifest.json"
MINI_FORMAT = 1
MINI_PER_CLASS = {"train": 40, "test": 10}
MINI_PER_ROW = 100  # images per mosaic row
IMAGE_SHAPE = (3, 32, 32)

# md5 sums of the genuine python-format files, the same ones torchvision checks when it opens them.
GENUINE_MD5 = {
    "meta": "7973b15100ade9c7d40fb424638fde48",
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
}


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are not where they were looked for; the message says where and how to fix it."""


class DatasetIntegrityError(ValueError):
    """The data set's files are there but do not decode to what they should (wrong shape, checksum mismatch)."""


def default_data_dir() -> Path:
    """``$RBJ_DATA_DIR`` if set, else ``~/.cache/robustbench_jpeg/cifar100``."""
    env = os.environ.get("RBJ_DATA_DIR")
    return Path(env).expanduser() if env else Path("~/.cache/robustbench_jpeg/cifar100").expanduser()


def split_name(train: bool) -> str:
    return "train" if train else "test"


def sha256_array(array: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# genuine CIFAR-100 (torchvision format)
# --------------------------------------------------------------------------------------------------------------


def _not_found_message(root: Path, extra: str = "") -> str:
    return (
        f"CIFAR-100 not found in {root} (expected {root / 'cifar-100-python'}/ holding train, test and meta)"
        f"{extra}. Fixes: pass --download when online (torchvision downloads about 170 MB into that folder), "
        "or point --data-dir (or RBJ_DATA_DIR) at a folder that holds cifar-100-python/, e.g. one made offline "
        "with the CIFAR-100 unpacker (`python3 cifar100_pack.py unpack DIR`); for a quick run without it use "
        "the embedded subset 'cifar100-mini'."
    )


def _resolve_root(data_dir: str | os.PathLike | None) -> Path:
    root = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    # Accept the cifar-100-python folder itself as well as its parent (a common slip).
    if root.name == "cifar-100-python" and (root / "train").is_file() and not (root / "cifar-100-python").exists():
        root = root.parent
    return root


def _torchvision_split(root: Path, train: bool, download: bool):
    from torchvision.datasets import CIFAR100

    folder = root / "cifar-100-python"
    if not download and not folder.is_dir():
        raise DatasetNotFoundError(_not_found_message(root))
    try:
        return CIFAR100(root=str(root), train=train, download=download)
    except Exception as exc:  # torchvision: RuntimeError when missing/corrupt; URLError/OSError when offline
        if download:
            raise DatasetNotFoundError(_not_found_message(root, f"; the download failed: {exc!r}")) from exc
        if isinstance(exc, RuntimeError):
            raise DatasetNotFoundError(
                _not_found_message(root, " or its files are incomplete or fail torchvision's md5 check")
            ) from exc
        raise


def _load_genuine(train: bool, data_dir: str | os.PathLike | None, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    root = _resolve_root(data_dir)
    return _dataset_tensors(_torchvision_split(root, train, download), root)


def _dataset_tensors(ds: Any, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision CIFAR100 (HWC uint8 ``.data``, list ``.targets``) -> (NCHW uint8, int64) tensors."""
    data = np.asarray(ds.data)
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
        raise DatasetIntegrityError(f"CIFAR-100 in {root}: unexpected image array {data.dtype} {data.shape}")
    images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, one copy
    labels = torch.as_tensor(np.asarray(ds.targets, dtype=np.int64))
    if labels.shape != (images.shape[0],):
        raise DatasetIntegrityError(f"CIFAR-100 in {root}: {labels.shape[0]} labels for {images.shape[0]} images")
    return images, labels


# --------------------------------------------------------------------------------------------------------------
# embedded cifar100-mini
# --------------------------------------------------------------------------------------------------------------


def images_to_mosaic(images: np.ndarray, per_row: int = MINI_PER_ROW) -> np.ndarray:
    """N x 3 x 32 x 32 uint8 -> one (N/per_row*32) x (per_row*32) x 3 RGB image, row-major tiles."""
    n = images.shape[0]
    if n % per_row:
        raise ValueError(f"{n} images do not fill rows of {per_row}")
    rows = n // per_row
    x = images.transpose(0, 2, 3, 1).reshape(rows, per_row, 32, 32, 3)
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3, 4).reshape(rows * 32, per_row * 32, 3))


def mosaic_to_images(mosaic: np.ndarray, n: int, per_row: int = MINI_PER_ROW) -> np.ndarray:
    """Inverse of :func:`images_to_mosaic`."""
    rows = n // per_row
    if n % per_row or mosaic.shape != (rows * 32, per_row * 32, 3):
        raise ValueError(f"mosaic of shape {mosaic.shape} cannot hold {n} images of 32 x 32 in rows of {per_row}")
    x = mosaic.reshape(rows, 32, per_row, 32, 3).transpose(0, 2, 1, 3, 4).reshape(n, 32, 32, 3)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _mini_error(folder: Path, what: str) -> DatasetIntegrityError:
    return DatasetIntegrityError(
        f"the embedded cifar100-mini data in {folder} is corrupt: {what}. Reinstall the package, or rebuild "
        "the files with `python scripts/make_cifar100_mini.py --cifar-dir DIR` from the genuine CIFAR-100."
    )


def read_mini_manifest(folder: str | os.PathLike | None = None) -> dict[str, Any]:
    folder = MINI_DIR if folder is None else Path(folder)
    path = folder / MINI_MANIFEST
    if not path.is_file():
        raise DatasetNotFoundError(
            f"the embedded cifar100-mini data is missing: no {path}. Reinstall the package (the files ship as "
            "package data), or rebuild them with `python scripts/make_cifar100_mini.py --cifar-dir DIR`."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _mini_error(folder, f"{path.name} is not valid JSON ({exc})") from exc
    if manifest.get("format") != MINI_FORMAT:
        raise _mini_error(folder, f"{path.name} has format {manifest.get('format')!r}, expected {MINI_FORMAT}")
    return manifest


@functools.lru_cache(maxsize=8)
def _load_mini_cached(folder: str, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from PIL import Image

    root = Path(folder)
    manifest = read_mini_manifest(root)
    try:
        entry = manifest["splits"][split]
        n, per_row = int(entry["n"]), int(entry["per_row"])
        files = {key: root / entry[key] for key in ("images", "index_label")}
    except (KeyError, TypeError, ValueError) as exc:
        raise _mini_error(root, f"manifest entry for {split!r} is incomplete ({exc!r})") from exc
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"the embedded cifar100-mini data is missing {', '.join(missing)}. Reinstall the package, or rebuild "
            "the files with `python scripts/make_cifar100_mini.py --cifar-dir DIR`."
        )
    try:
        with Image.open(files["images"]) as im:
            if im.format != "WEBP":
                raise ValueError(f"{files['images'].name} is {im.format}, not WebP")
            mosaic = np.asarray(im.convert("RGB"))
        images = mosaic_to_images(mosaic, n, per_row)
    except Exception as exc:  # PIL raises several types on truncated/garbled files
        raise _mini_error(root, f"cannot decode {files['images'].name} ({exc})") from exc
    if sha256_array(images) != entry.get("images_sha256"):
        raise _mini_error(root, f"decoded {split} images do not match the manifest's SHA-256")
    try:
        index_label = np.load(files["index_label"], allow_pickle=False)
    except Exception as exc:
        raise _mini_error(root, f"cannot read {files['index_label'].name} ({exc})") from exc
    if index_label.shape != (n, 2) or index_label.dtype != np.dtype("<i4"):
        raise _mini_error(root, f"{files['index_label'].name} holds {index_label.dtype} {index_label.shape}")
    if sha256_array(index_label) != entry.get("index_label_sha256"):
        raise _mini_error(root, f"{files['index_label'].name} does not match the manifest's SHA-256")
    indices = torch.from_numpy(index_label[:, 0].astype(np.int64))
    labels = torch.from_numpy(index_label[:, 1].astype(np.int64))
    return torch.from_numpy(images), labels, indices


def load_mini(train: bool, folder: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embedded subset with provenance: (images uint8 Nx3x32x32, labels int64, original indices int64).

    ``original indices`` are the positions of the images in the genuine split. The decoded arrays are checked
    against the manifest's SHA-256 (once per process; later calls return fresh copies of the cached tensors).
    """
    folder = MINI_DIR if folder is None else Path(folder)
    images, labels, indices = _load_mini_cached(str(Path(folder).resolve()), split_name(train))
    return images.clone(), labels.clone(), indices.clone()


def class_names() -> list[str]:
    """The 100 CIFAR-100 fine class names (index = label), from the embedded manifest."""
    return list(read_mini_manifest()["classes"])


# --------------------------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------------------------


def load_split(
    name: str, train: bool, data_dir: str | os.PathLike | None = None, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split: ``(images uint8 N x 3 x 32 x 32 contiguous, labels int64 N)`` in the data set's order.

    ``cifar100``: the genuine set from ``data_dir`` (torchvision format: ``data_dir/cifar-100-python/``;
    default ``$RBJ_DATA_DIR`` or ``~/.cache/robustbench_jpeg/cifar100``). When it is absent, ``download=True``
    lets torchvision fetch it; otherwise, or when the download fails, :class:`DatasetNotFoundError`.
    ``cifar100-mini``: the embedded subset (4000 train / 1000 test); ``data_dir`` and ``download`` are ignored.
    """
    if name == "cifar100":
        return _load_genuine(train, data_dir, download)
    if name == "cifar100-mini":
        images, labels, _ = load_mini(train)
        return images, labels
    raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
