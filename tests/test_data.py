"""Tests of the data layer: the embedded mini set, the genuine-set loader, augmentation, epoch order, batching."""

from __future__ import annotations

import os
import shutil
import urllib.error

import numpy as np
import pytest
import torch

from robustbench_jpeg import data
from robustbench_jpeg.data import (
    DATASETS,
    MINI_DIR,
    NUM_CLASSES,
    DatasetIntegrityError,
    DatasetNotFoundError,
    apply_augment,
    augment_batch,
    draw_augment_params,
    epoch_order,
    iterate_batches,
    load_mini,
    load_split,
    to_float,
)

# --------------------------------------------------------------------------------------------------------------
# the embedded cifar100-mini
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("train,n,per_class", [(True, 4000, 40), (False, 1000, 10)])
def test_mini_shapes_and_labels(train, n, per_class):
    images, labels = load_split("cifar100-mini", train)
    assert images.shape == (n, 3, 32, 32) and images.dtype == torch.uint8 and images.is_contiguous()
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert int(labels.min()) == 0 and int(labels.max()) == 99
    assert torch.bincount(labels, minlength=100).tolist() == [per_class] * 100
    assert images.float().std() > 30  # real pictures, not a blank canvas


@pytest.mark.parametrize("train", [True, False])
def test_mini_deterministic_and_independent_copies(train):
    a_img, a_lab = load_split("cifar100-mini", train)
    b_img, b_lab = load_split("cifar100-mini", train, data_dir="/nonexistent/ignored", download=True)
    assert torch.equal(a_img, b_img) and torch.equal(a_lab, b_lab)
    a_img.zero_()  # callers own what they get: the cache is not affected
    c_img, _ = load_split("cifar100-mini", train)
    assert torch.equal(c_img, b_img)


def test_mini_indices_are_sorted_original_positions():
    for train, size in ((True, 50000), (False, 10000)):
        _, labels, indices = load_mini(train)
        assert indices.dtype == torch.int64
        assert bool((indices[1:] > indices[:-1]).all())  # genuine order, no repeats
        assert 0 <= int(indices[0]) and int(indices[-1]) < size
        assert torch.equal(labels, load_split("cifar100-mini", train)[1])


def test_mini_shipped_size_under_10mb():
    files = [p for p in MINI_DIR.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "train.webp", "test.webp", "train.npy", "test.npy"}
    total = sum(p.stat().st_size for p in files)
    assert total < 10 * 1024 * 1024, total


def test_class_names():
    names = data.class_names()
    assert len(names) == 100 and names[0] == "apple" and names[-1] == "worm"


@pytest.fixture
def mini_copy(tmp_path):
    folder = tmp_path / "mini"
    shutil.copytree(MINI_DIR, folder)
    return folder


def test_mini_copy_loads(mini_copy):
    images, labels, _ = load_mini(False, mini_copy)
    assert torch.equal(images, load_split("cifar100-mini", False)[0])


def test_mini_missing_files(mini_copy):
    (mini_copy / "test.webp").unlink()
    with pytest.raises(DatasetNotFoundError, match="test.webp"):
        load_mini(False, mini_copy)
    (mini_copy / "manifest.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="manifest.json"):
        load_mini(False, mini_copy)


def test_mini_truncated_image(mini_copy):
    path = mini_copy / "test.webp"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetIntegrityError, match="corrupt"):
        load_mini(False, mini_copy)


def test_mini_tampered_labels(mini_copy):
    path = mini_copy / "test.npy"
    array = np.load(path, allow_pickle=False)
    array[0, 1] = (array[0, 1] + 1) % 100
    np.save(path, array, allow_pickle=False)
    with pytest.raises(DatasetIntegrityError, match="SHA-256"):
        load_mini(False, mini_copy)


def test_mini_tampered_pixels(mini_copy):
    from PIL import Image

    path = mini_copy / "test.webp"
    with Image.open(path) as im:
        mosaic = np.asarray(im.convert("RGB")).copy()
    mosaic[5, 5, 0] ^= 1
    Image.fromarray(mosaic).save(path, "WEBP", lossless=True, quality=100, method=0)
    with pytest.raises(DatasetIntegrityError, match="SHA-256"):
        load_mini(False, mini_copy)


# --------------------------------------------------------------------------------------------------------------
# the genuine set
# --------------------------------------------------------------------------------------------------------------


def test_names():
    assert DATASETS == ("cifar100", "cifar100-mini")
    assert NUM_CLASSES == {"cifar100": 100, "cifar100-mini": 100}
    with pytest.raises(ValueError, match="cifar100, cifar100-mini"):
        load_split("imagenet", True)


def test_missing_folder_names_it_and_the_fixes(tmp_path):
    missing = tmp_path / "no-cifar-here"
    with pytest.raises(DatasetNotFoundError) as info:
        load_split("cifar100", True, missing)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert str(missing) in message and "--download" in message and "--data-dir" in message
    assert "cifar-100-python" in message


def test_default_folder_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RBJ_DATA_DIR", str(tmp_path / "envdir"))
    assert data.default_data_dir() == tmp_path / "envdir"
    with pytest.raises(DatasetNotFoundError, match="envdir"):
        load_split("cifar100", False)
    monkeypatch.delenv("RBJ_DATA_DIR")
    assert str(data.default_data_dir()).endswith(os.path.join(".cache", "robustbench_jpeg", "cifar100"))


def test_failed_download_raises_not_found(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_split("cifar100", True, tmp_path, download=True)


def test_genuine_conversion_hwc_to_nchw(tmp_path, monkeypatch):
    """The torchvision HWC array becomes NCHW uint8 without changing a pixel (a stand-in for CIFAR100)."""
    import torchvision.datasets

    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    seen = {}

    class FakeCIFAR100:
        def __init__(self, root, train, download):
            seen.update(root=root, train=train, download=download)
            self.data, self.targets = hwc, [3, 1, 4, 1, 5, 9, 2]

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", FakeCIFAR100)
    (tmp_path / "cifar-100-python").mkdir()
    images, labels = load_split("cifar100", False, tmp_path)
    assert seen == {"root": str(tmp_path), "train": False, "download": False}
    assert images.shape == (7, 3, 32, 32) and images.dtype == torch.uint8 and images.is_contiguous()
    assert np.array_equal(images.numpy(), hwc.transpose(0, 3, 1, 2))
    assert labels.dtype == torch.int64 and labels.tolist() == [3, 1, 4, 1, 5, 9, 2]


@pytest.mark.cifar
def test_mini_is_first_per_class_of_genuine():
    root = os.environ.get("RBJ_CIFAR100_DIR")
    if not root:
        pytest.skip("RBJ_CIFAR100_DIR is unset (point it at the folder holding cifar-100-python/)")
    for train, n, per_class in ((True, 50000, 40), (False, 10000, 10)):
        images, labels = load_split("cifar100", train, root)
        assert images.shape == (n, 3, 32, 32) and images.dtype == torch.uint8 and labels.shape == (n,)
        lab = labels.numpy()
        expected = np.sort(np.concatenate([np.flatnonzero(lab == c)[:per_class] for c in range(100)]))
        mini_images, mini_labels, mini_indices = load_mini(train)
        assert np.array_equal(mini_indices.numpy(), expected)
        assert torch.equal(mini_images, images[mini_indices])  # pixel-exact: lossless storage
        assert torch.equal(mini_labels, labels[mini_indices])


# --------------------------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------------------------


def _batch(n=16, seed=0, dtype=torch.uint8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)  # no zeros: padding is visible
    return x if dtype == torch.uint8 else x.to(dtype) / 255


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_keeps_shape_and_dtype(dtype):
    x = _batch(dtype=dtype)
    y = augment_batch(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device


def test_augment_identity_at_center_without_flip():
    x = _batch()
    n = x.shape[0]
    centre = torch.full((n,), 4, dtype=torch.int64)
    assert torch.equal(apply_augment(x, centre, centre, torch.zeros(n, dtype=torch.bool)), x)
    assert torch.equal(augment_batch(x, params=(centre, centre, torch.ones(n, dtype=torch.bool)), flip=False), x)


def test_augment_corner_crop_zero_pads_and_shifts():
    x = _batch()
    n = x.shape[0]
    zero = torch.zeros(n, dtype=torch.int64)
    y = apply_augment(x, zero, zero, torch.zeros(n, dtype=torch.bool))
    assert (y[:, :, :4, :] == 0).all() and (y[:, :, :, :4] == 0).all()  # the 4-pixel zero band, top and left
    assert torch.equal(y[:, :, 4:, 4:], x[:, :, :28, :28])  # content shifted down-right by 4


def test_augment_flip_reverses_width():
    x = _batch()
    n = x.shape[0]
    centre = torch.full((n,), 4, dtype=torch.int64)
    y = apply_augment(x, centre, centre, torch.ones(n, dtype=torch.bool))
    assert torch.equal(y, x.flip(3))


def test_augment_same_seed_same_output():
    x = _batch()
    a = augment_batch(x, torch.Generator().manual_seed(7))
    b = augment_batch(x, torch.Generator().manual_seed(7))
    c = augment_batch(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_params_range_and_balance():
    dy, dx, flip = draw_augment_params(20000, torch.Generator().manual_seed(0), pad=4)
    assert dy.dtype == dx.dtype == torch.int64 and flip.dtype == torch.bool
    assert int(dy.min()) == 0 and int(dy.max()) == 8 and int(dx.min()) == 0 and int(dx.max()) == 8
    assert abs(flip.float().mean().item() - 0.5) < 0.02
    with pytest.raises(ValueError, match="offsets"):
        apply_augment(_batch(n=2), torch.tensor([0, 9]), torch.tensor([0, 0]), torch.tensor([False, False]))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_matches_torchvision_per_image(dtype):
    from torchvision.transforms.v2 import functional as TF

    x = _batch(n=32, seed=3, dtype=dtype)
    dy, dx, flip = draw_augment_params(32, torch.Generator().manual_seed(5))
    y = apply_augment(x, dy, dx, flip)
    for i in range(32):
        ref = TF.crop(TF.pad(x[i], [4], fill=0), int(dy[i]), int(dx[i]), 32, 32)
        if flip[i]:
            ref = TF.horizontal_flip(ref)
        assert torch.equal(y[i], ref), i


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_same_on_cuda():
    x = _batch(n=64)
    cpu = augment_batch(x, torch.Generator().manual_seed(11))
    gpu = augment_batch(x.cuda(), torch.Generator().manual_seed(11))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


def test_to_float():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    y = to_float(x)
    assert y.dtype == torch.float32 and torch.allclose(y, torch.tensor([0.0, 0.2, 1.0]))
    assert to_float(y) is not None and torch.equal(to_float(y), y)
    with pytest.raises(TypeError):
        to_float(torch.tensor([1, 2], dtype=torch.int64))


# --------------------------------------------------------------------------------------------------------------
# epoch order and batching
# --------------------------------------------------------------------------------------------------------------


def test_epoch_order():
    a = epoch_order(1000, seed=0, epoch=0)
    assert a.dtype == torch.int64 and torch.equal(a.sort().values, torch.arange(1000))
    assert torch.equal(a, epoch_order(1000, seed=0, epoch=0))
    assert not torch.equal(a, epoch_order(1000, seed=0, epoch=1))
    assert not torch.equal(a, epoch_order(1000, seed=1, epoch=0))
    # an order does not depend on the global RNG state
    torch.manual_seed(123)
    assert torch.equal(a, epoch_order(1000, seed=0, epoch=0))


def test_iterate_batches():
    images = torch.arange(10 * 3 * 2 * 2, dtype=torch.int64).reshape(10, 3, 2, 2).to(torch.uint8)
    labels = torch.arange(10)
    batches = list(iterate_batches(images, labels, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert [len(y) for _, y in iterate_batches(images, labels, 4, drop_last=True)] == [4, 4]
    order = epoch_order(10, seed=3, epoch=2)
    seen = list(iterate_batches(images, labels, 3, order=order))
    assert torch.equal(torch.cat([y for _, y in seen]), order)
    assert all(torch.equal(x, images[y]) for x, y in seen)
    with pytest.raises(ValueError):
        list(iterate_batches(images, labels[:5], 4))
