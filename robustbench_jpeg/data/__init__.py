"""Data layer: CIFAR-100 and the embedded ``cifar100-mini`` subset, batched augmentation, epoch order."""

from robustbench_jpeg.data.augment import AUGMENTATION, apply_augment, augment_batch, draw_augment_params, to_float
from robustbench_jpeg.data.batches import epoch_order, epoch_seed, iterate_batches
from robustbench_jpeg.data.cifar import (
    DATASETS,
    MINI_DIR,
    NUM_CLASSES,
    TEST_SIZES,
    DatasetIntegrityError,
    DatasetNotFoundError,
    class_names,
    default_data_dir,
    load_mini,
    load_split,
)

__all__ = [
    "AUGMENTATION",
    "DATASETS",
    "MINI_DIR",
    "NUM_CLASSES",
    "TEST_SIZES",
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "apply_augment",
    "augment_batch",
    "class_names",
    "default_data_dir",
    "draw_augment_params",
    "epoch_order",
    "epoch_seed",
    "iterate_batches",
    "load_mini",
    "load_split",
    "to_float",
]
