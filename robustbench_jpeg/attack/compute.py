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
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import load_model, weights_fingerprint
from ..provenance import device_name, git_sha, library_versions, now_iso
from ..run_format import ROW_FORMAT
from .adversarial import save_broken
from .crafting import run_attack
from .gradients import has_jpeg
from .methods import ENGINE_NOT_USED, current_engine, get_method
from .plan import ArmInfo, Cell
from .provided import provided_arm
from .random_starts import derive_seed, start_seed

__all__ = ["Evaluator"]


class Evaluator:
    """Test data and models of one run folder on one device, loaded on first use; computes cells on a shard."""

    def __init__(
        self,
        arm_dirs: dict[str, Path],
        arms: dict[str, ArmInfo],
        num_classes: int,
        device: torch.device,
        data_dir: str | None,
    ) -> None:
        self.arm_dirs, self.arms, self.num_classes, self.device = arm_dirs, arms, num_classes, device
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
    def compute(self, cell: Cell, alive: np.ndarray | None, lo: int, hi: int, bar: Any = None) -> np.ndarray:
        """Images ``lo..hi-1`` of ``cell`` (this rank's shard): correct (clean cell) or robust (attack cell).

        ``alive`` (length n) marks the images to attack: clean-correct and, for a chained cell, robust under the
        cell it follows. Images outside it come back False.
        """
        if cell.n > self.test_size():
            raise ValueError(f"cell needs {cell.n} test images but {self.dataset} has {self.test_size()}")
        bs = cell.batch_size
        out = np.zeros(hi - lo, dtype=bool) if cell.is_clean else np.asarray(alive[lo:hi], dtype=bool).copy()
        for first in range(lo, hi, bs):
            last = min(first + bs, hi)
            if cell.is_clean:
                index = np.arange(first, last)
                out[index - lo] = self.correct(cell.arm, *self.batch(index), eval_alpha=cell.eval_alpha)
            elif cell.eps > 0:
                self._attack_batch(cell, out, lo, first, last)
            if bar is not None:
                bar.update(1)
        return out

    def _attack_batch(self, cell: Cell, robust: np.ndarray, lo: int, first: int, last: int) -> None:
        source = self.model(cell.source_arm, cell.eval_alpha)
        target = self.model(cell.arm, cell.eval_alpha)
        method = get_method(cell.attack)
        for r in range(cell.restarts):
            alive = np.nonzero(robust[first - lo : last - lo])[0] + first
            if alive.size == 0:
                return
            x, y = self.batch(alive)
            seeds = [start_seed(cell.cell_id, r, int(i)) for i in alive] if method.per_sample_random else None
            crafting = source if method.uses_gradient else target
            adv, fooled = run_attack(
                crafting,
                x,
                y,
                cell.attack,
                cell.norm,
                cell.eps,
                cell.steps,
                cell.step_size,
                cell.random_start,
                grad=cell.grad if (method.uses_gradient and has_jpeg(crafting)) else "none",
                seed=cell.attack_seed if method.seed_per_cell and r == 0 else derive_seed(cell.cell_id, r, first),
                params=dict(cell.params),
                surrogate_alpha=cell.surrogate_alpha,
                target=None if crafting is target else target,
                start_seeds=seeds,
                num_classes=self.num_classes,
            )
            save_broken(self.arm_dirs[cell.arm].parent, cell, f"{first}-{last}-r{r}", alive, x, y, adv, fooled, target)
            robust[alive - lo] &= ~fooled.cpu().numpy()

    def row(
        self, cell: Cell, clean: np.ndarray, correct: np.ndarray, wall: float, spec: str, world: int
    ) -> dict[str, Any]:
        """The results.csv row of a computed cell (docs/run-format.md)."""
        versions = library_versions()
        return {
            "model": cell.model,
            "arm": cell.arm,
            "dataset": cell.dataset,
            "train_seed": cell.train_seed,
            "attack": cell.attack,
            "norm": cell.norm,
            "eps": cell.eps,
            "eps_255": cell.eps * 255,
            "steps": cell.steps,
            "step_size": cell.step_size,
            "step_rule": cell.step_rule,
            "restarts": cell.restarts,
            "random_start": cell.random_start,
            "grad": cell.grad,
            "surrogate_alpha": cell.surrogate_alpha,
            "eval_alpha": cell.eval_alpha,
            "source_arm": cell.source_arm,
            "attack_seed": cell.attack_seed,
            "after": cell.after,
            "params": _params_text(cell.params),
            "spec": spec,
            "n": cell.n,
            "clean_acc": float(clean.mean()),
            "robust_acc": float(correct.mean()),
            "n_correct": int(correct.sum()),
            "n_clean_correct": int(clean.sum()),
            "batch_size": cell.batch_size,
            "world_size": world,
            "wall_s": round(wall, 3),
            "cell_id": cell.cell_id,
            "fingerprint": self.fingerprint(cell.arm),
            "source_fingerprint": self.fingerprint(cell.source_arm),
            "row_format": ROW_FORMAT,
            "git_sha": git_sha(),
            "torch": versions["torch"],
            "torchattacks": versions["torchattacks"] if current_engine() == "torchattacks" else ENGINE_NOT_USED,
            "device": device_name(self.device),
            "timestamp": now_iso(),
        }


def _params_text(params: tuple[tuple[str, float], ...]) -> str:
    return ";".join(f"{k}={v:g}" for k, v in params)


def batches_of(n: int, lo: int, hi: int, batch_size: int) -> int:
    """Batches a shard ``[lo, hi)`` of a cell takes (what the progress bar counts)."""
    return math.ceil((hi - lo) / batch_size) if hi > lo else 0


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
