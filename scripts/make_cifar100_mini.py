#!/usr/bin/env python3
"""Build the embedded ``cifar100-mini`` subset from the genuine CIFAR-100.

    python scripts/make_cifar100_mini.py --cifar-dir DIR [--out robustbench_jpeg/data/cifar100_mini]

``DIR`` is the torchvision folder, the one that holds ``cifar-100-python/{train,test,meta}`` (torchvision checks
the official md5 sums when it opens them, so only the genuine files are accepted).

How the subset is chosen (nothing random):
  * training split: for every fine class c in 0..99, the FIRST 40 images of class c in the genuine training
    file's order (``CIFAR100(train=True).data``), 4000 images in all;
  * test split: likewise the FIRST 10 images of every class in the genuine test file's order, 1000 images;
  * within a split the chosen images keep the genuine order, i.e. they are sorted by their original index.

What is written (all of it deterministic: running twice gives identical bytes):
  * ``train.webp`` / ``test.webp``: lossless WebP mosaics (Pillow: lossless=True, quality=100, method=6), RGB,
    100 images of 32 x 32 per row, row-major (image k at row k // 100, column k % 100); 3200 x 1280 and
    3200 x 320 pixels;
  * ``train.npy`` / ``test.npy``: int32 little-endian, shape (N, 2): column 0 the original index in the genuine
    split, column 1 the fine label (``np.load(..., allow_pickle=False)``);
  * ``manifest.json``: layout, selection rule, class names, the genuine files' md5 sums and the SHA-256 of the
    decoded arrays (images N x 3 x 32 x 32 uint8 C order; the (N, 2) int32 array), checked on every load;
  * ``README.md``: a short note on what the folder is.
After writing, the files are decoded again and compared pixel for pixel with the source.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robustbench_jpeg.data import cifar  # noqa: E402
from robustbench_jpeg.provenance import atomic_write_bytes, atomic_write_text  # noqa: E402

README = """\
# cifar100-mini

A real subset of CIFAR-100 (Krizhevsky, *Learning Multiple Layers of Features from Tiny Images*, 2009),
embedded so that the toolkit runs and its tests pass without downloading the full set: the first 40 training
and the first 10 test images of every one of the 100 fine classes, in the genuine order (4000 + 1000 images).

Built by `scripts/make_cifar100_mini.py` (its docstring gives the exact rule and file layout); loaded by
`robustbench_jpeg.data.load_split("cifar100-mini", train)`, which checks the SHA-256 sums in `manifest.json`.
Do not edit these files by hand.
"""


def select_first_per_class(labels: np.ndarray, per_class: int, num_classes: int = 100) -> np.ndarray:
    """Original indices of the first ``per_class`` images of every class, sorted (i.e. in the genuine order)."""
    chosen = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        if idx.size != per_class:
            raise SystemExit(f"class {c} has only {idx.size} images, {per_class} needed")
        chosen.append(idx)
    return np.sort(np.concatenate(chosen))


def encode_webp(mosaic: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mosaic, mode="RGB").save(buf, "WEBP", lossless=True, quality=100, method=6)
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cifar-dir", required=True, help="folder holding cifar-100-python/ (torchvision format)")
    parser.add_argument("--out", default=str(cifar.MINI_DIR), help="output folder (default: the package's)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.cifar_dir).expanduser()

    classes = None
    splits = {}
    genuine = {}
    for split, per_class in cifar.MINI_PER_CLASS.items():
        train = split == "train"
        ds = cifar._torchvision_split(root, train, download=False)  # torchvision checks the md5 sums
        classes = list(ds.classes)
        images, labels = (t.numpy() for t in cifar._dataset_tensors(ds, root))
        genuine[split] = images, labels
        idx = select_first_per_class(labels, per_class)
        sub = np.ascontiguousarray(images[idx])
        index_label = np.stack([idx, labels[idx]], axis=1).astype("<i4")

        webp = encode_webp(cifar.images_to_mosaic(sub))
        atomic_write_bytes(out / f"{split}.webp", webp)
        atomic_write_bytes(out / f"{split}.npy", npy_bytes(index_label))
        splits[split] = {
            "images": f"{split}.webp",
            "index_label": f"{split}.npy",
            "n": int(sub.shape[0]),
            "per_class": per_class,
            "per_row": cifar.MINI_PER_ROW,
            "source_size": int(images.shape[0]),
            "images_sha256": cifar.sha256_array(sub),
            "index_label_sha256": cifar.sha256_array(index_label),
        }
        print(f"{split}: {sub.shape[0]} images, {split}.webp {len(webp):,} bytes", flush=True)

    manifest = {
        "format": cifar.MINI_FORMAT,
        "name": "cifar100-mini",
        "source": "CIFAR-100, python version (Krizhevsky 2009), as read by torchvision.datasets.CIFAR100",
        "source_md5": cifar.GENUINE_MD5,
        "selection": "per fine class the first 40 (train) / first 10 (test) images in the genuine order; "
        "kept in the genuine order (sorted by original index)",
        "layout": "lossless WebP mosaic, RGB, 32x32 tiles, per_row images per row, row-major; "
        "<split>.npy = int32 (N, 2): [original index, fine label]",
        "sha256_of": "decoded arrays: images uint8 (N, 3, 32, 32) C order; index_label int32 (N, 2) C order",
        "splits": splits,
        "classes": classes,
    }
    atomic_write_text(out / cifar.MINI_MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out / "README.md", README)
    for name in [*(f"{split}.{ext}" for split in splits for ext in ("webp", "npy")), cifar.MINI_MANIFEST, "README.md"]:
        (out / name).chmod(0o644)  # package data: readable by all (the temporary files are created 0600)

    # Round trip: decode what was written and compare with the source, pixel for pixel.
    cifar._load_mini_cached.cache_clear()
    for split in splits:
        train = split == "train"
        images, labels, indices = cifar.load_mini(train, out)
        genuine_images, genuine_labels = genuine[split]
        idx = indices.numpy()
        if not (
            np.array_equal(images.numpy(), genuine_images[idx]) and np.array_equal(labels.numpy(), genuine_labels[idx])
        ):
            raise SystemExit(f"{split}: round trip mismatch")
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote {out} ({total:,} bytes in all); round trip exact", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
