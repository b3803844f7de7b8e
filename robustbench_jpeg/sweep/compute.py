"""Computing cells: the test images and the arms' models, loaded once, and the crafting-and-scoring loop.

Robustness is counted as RobustBench/AutoAttack do: an image is robust only if it is classified correctly clean
AND no attack restart fooled the deployed model with any example inside the threat model (final outputs, and
every iterate of FGSM/PGD). Only clean-correct images are attacked; each restart attacks the survivors of the
previous ones, and a chained cell only the survivors of the cell it follows.

Random starts of FGSM/PGD are per image (seeded by cell, restart and image index), so those results do not
depend on the batch size or on how the images are spread over processes; APGD, FAB and Square draw per batch,
seeded as AutoAttack seeds them: with the cell's attack seed (further restarts: cell, restart and first image).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..attack.crafting import run_attack
from ..attack.methods import DEFAULT_ENGINE, ENGINE_NOT_USED, get_method, use_engine
from ..attack.random_starts import derive_seed, start_seed
from ..attack.spec import SpecFile
from ..checkpoint import load_model, weights_fingerprint
from ..provenance import device_name, git_sha, library_versions, now_iso
from ..runfolder.cell import Cell, CellResult
from .adversarial import save_broken
from .plan import ArmInfo
from .provided import provided_arm

__all__ = ["Evaluator"]


class Evaluator:
    """Test data and models of one run folder on one device, loaded on first use; computes cells on a shard.

    ``channels_last``: hold the models' weights in channels_last memory layout (the images, the perturbations and
    their random starts stay NCHW). Still exact float32, with another summation order inside the convolutions: an
    image on the edge of a decision can come out differently than with NCHW. Faster on CPUs for small batches
    (benchmarks/autoattack_profile.py); recorded in each row's ``device``.
    """

    def __init__(
        self,
        arm_dirs: dict[str, Path],
        arms: dict[str, ArmInfo],
        num_classes: int,
        device: torch.device,
        data_dir: str | None,
        channels_last: bool = False,
    ) -> None:
        self.arm_dirs, self.arms, self.num_classes, self.device = arm_dirs, arms, num_classes, device
        self.channels_last = channels_last
        self.dataset = next(iter(arms.values())).dataset
        self.data_dir = data_dir
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        self._models: dict[tuple[str, float | None], torch.nn.Module] = {}
        self._fingerprints: dict[str, str] = {}

    # data and models
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._data is None:
            from ..data import load_split

            provided = provided_arm(next(iter(self.arm_dirs.values())))
            if provided is not None:
                images, labels = provided.images, provided.labels
            else:
                images, labels = load_split(self.dataset, train=False, data_dir=self.data_dir)
            self._data = (images, labels.long())
        return self._data

    def test_size(self) -> int:
        return int(self.data()[1].shape[0])

    def model(self, arm: str, eval_alpha: float | None = None) -> torch.nn.Module:
        """The arm's model in eval mode, as deployed; with ``eval_alpha``, a copy whose soft quantizer uses it."""
        key = (arm, eval_alpha if self.arms[arm].soft_quantizer else None)
        if key not in self._models:
            if key[1] is not None:
                model = copy.deepcopy(self.model(arm))
                model.jpeg.alpha_luma.fill_(key[1])
                model.jpeg.alpha_chroma.fill_(key[1])
            else:
                provided = provided_arm(self.arm_dirs[arm])
                model = provided.model.to(self.device) if provided else load_model(self.arm_dirs[arm], self.device)
                model.requires_grad_(False)  # only input gradients are needed
                self._fingerprints[arm] = weights_fingerprint(model)
                if self.channels_last:
                    model.to(memory_format=torch.channels_last)
            self._models[key] = model.eval()
        return self._models[key]

    def fingerprint(self, arm: str) -> str:
        self.model(arm)
        return self._fingerprints[arm]

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.data()
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64))
        return images[idx].to(self.device).float().div_(255.0), labels[idx].to(self.device)

    @torch.no_grad()
    def correct(self, arm: str, x: torch.Tensor, y: torch.Tensor, eval_alpha: float | None = None) -> np.ndarray:
        return (self.model(arm, eval_alpha)(x).argmax(dim=1) == y).cpu().numpy()

    # cells
    def clean_correct(self, cell: Cell, lo: int, hi: int, bar: Any = None) -> np.ndarray:
        """Images ``lo..hi-1`` of a clean cell (this rank's shard): classified correctly, as deployed."""
        if cell.n > self.test_size():
            raise ValueError(f"cell needs {cell.n} test images but {self.dataset} has {self.test_size()}")
        out = np.zeros(hi - lo, dtype=bool)
        for first in range(lo, hi, cell.batch_size):
            index = np.arange(first, min(first + cell.batch_size, hi))
            out[index - lo] = self.correct(cell.arm, *self.batch(index), eval_alpha=cell.setting.eval_alpha)
            if bar is not None:
                bar.update(1)
        return out

    def fooled(self, cell: Cell, restart: int, first: int, index: np.ndarray) -> np.ndarray:
        """One restart of ``cell`` on the test images ``index`` (of the batch starting at image ``first``): crafted on
        the source arm, scored on the evaluated arm as deployed; per image, whether it was fooled."""
        setting = cell.setting
        method = get_method(setting.attack)
        target = self.model(cell.arm, setting.eval_alpha)
        crafting = self.model(cell.source_arm, setting.eval_alpha) if method.uses_gradient else target
        x, y = self.batch(index)
        starts = [start_seed(cell.cell_id, restart, int(i)) for i in index] if method.per_sample_random else None
        seed = (
            setting.attack_seed if method.seed_per_cell and restart == 0 else derive_seed(cell.cell_id, restart, first)
        )
        with use_engine(setting.engine or DEFAULT_ENGINE):  # the engine the cell records, whatever the context
            adv, fooled = run_attack(
                crafting,
                x,
                y,
                setting,
                target=None if crafting is target else target,
                seed=seed,
                start_seeds=starts,
                num_classes=self.num_classes,
            )
        batch = f"{first}-{int(index.max()) + 1}-r{restart}"
        save_broken(self.arm_dirs[cell.arm].parent, cell, batch, index, x, y, adv, fooled, target)
        return fooled.cpu().numpy()

    def row(
        self, cell: Cell, clean: np.ndarray, correct: np.ndarray, wall: float, spec: SpecFile, world: int
    ) -> dict[str, Any]:
        """The results.csv row of a computed cell (docs/run-format.md), from the cell record and what was measured."""
        versions = library_versions()
        result = CellResult(
            spec=spec.name,
            spec_hash=spec.hash,
            spec_path=spec.path or "",
            clean_acc=float(clean.mean()),
            robust_acc=float(correct.mean()),
            n_correct=int(correct.sum()),
            n_clean_correct=int(clean.sum()),
            world_size=world,
            wall_s=round(wall, 3),
            git_sha=git_sha(),
            torch=versions["torch"],
            torchattacks=versions["torchattacks"] if cell.setting.engine == "torchattacks" else ENGINE_NOT_USED,
            device=device_name(self.device) + (", channels_last" if self.channels_last else ""),
            timestamp=now_iso(),
        )
        computed = dataclasses.replace(
            cell, fingerprint=self.fingerprint(cell.arm), source_fingerprint=self.fingerprint(cell.source_arm)
        )
        return computed.row(result)


def progress_units(cell: Cell) -> int:
    """How far one batch of ``cell`` moves the progress bar: once per restart of an attack, once for a clean batch."""
    return cell.setting.restarts if not cell.is_clean and cell.setting.eps > 0 else 1


def batches_of(lo: int, hi: int, batch_size: int) -> int:
    """Batches a shard ``[lo, hi)`` of a cell takes (what the progress bar counts)."""
    return math.ceil((hi - lo) / batch_size) if hi > lo else 0


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
