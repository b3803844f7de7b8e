"""Paired training of a baseline and JPEG arms with the same seed, data order, augmentation and recipe.

* :mod:`.pair`: :func:`train_pair` (the run folder, resume, the lock, the arms in turn) and :func:`resolve_config`;
* :mod:`.arm`: :class:`ArmTrainer`, one arm's model, optimisers, step and checkpoint;
* :mod:`.graph`: :class:`GraphStep`, the step on static buffers, replayed as one CUDA graph (``cuda_graph``);
* :mod:`.group`: :func:`train_group`, several seeds' models trained concurrently in one process (``--seeds``);
* :mod:`.arms`: what each arm puts in front of the backbone;
* :mod:`.progress`: :class:`Progress`, the learning-rate schedule, history.csv;
* :mod:`.evaluate`: test accuracy in float32.
"""

from .arm import AUGMENT_SALT, ArmTrainer, CudaGraphFallbackWarning, NonFiniteLossError
from .evaluate import evaluate
from .graph import GraphStep
from .group import seed_run_dirs, train_group
from .pair import ArmResult, TrainLockedError, resolve_config, train_arm, train_pair
from .progress import Progress

__all__ = [
    "train_pair",
    "train_arm",
    "train_group",
    "seed_run_dirs",
    "resolve_config",
    "evaluate",
    "ArmResult",
    "ArmTrainer",
    "GraphStep",
    "Progress",
    "NonFiniteLossError",
    "TrainLockedError",
    "CudaGraphFallbackWarning",
    "AUGMENT_SALT",
]
