"""The attack sweep: every arm of a run folder x every cell of a spec, resumable, one row per cell.

A *cell* is one attack configuration at one radius on one evaluated arm (see :class:`Cell`); its id is a stable
hash of its key, its per-sample correctness goes to ``samples/<cell_id>.npy`` and its row to ``results.csv``
(see docs/run-format.md). A cell is done when both exist; a rerun skips done cells, so an interrupted sweep
resumes at the next undone cell and a repeated sweep does no work.

Robustness is counted as RobustBench/AutoAttack do: a sample is robust only if it is classified correctly clean
AND under every restart of the attack, so ``robust_acc <= clean_acc`` always holds. Only clean-correct samples
are attacked, and each restart only attacks the samples that survived the previous ones.

Random starts are per sample: image i's start in restart r is drawn from its own generator seeded by
(cell id, r, i), so results do not depend on the batch size or on how the images are spread over processes.
Under ``torchrun --nproc_per_node=N`` every cell's images are split into N contiguous shards, one per rank, the
per-sample results are gathered in test-set order, and rank 0 alone writes files (docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import distributed
from ..checkpoint import CheckpointError, find_arms, load_model, read_card
from ..provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, device_name, git_sha, read_json
from ..train import resolve_device
from .builders import craft, derive_seed, exact_fp32, jpeg_mode
from .checks import checks_payload, run_checks, verdict, zero_gradient_fraction
from .random_starts import PerSampleRandom, start_seed
from .spec import DEFAULT_BATCH_SIZE, AttackSpec, AttackSpecError, SpecFile, load_spec, resolve_step_size

__all__ = [
    "Cell",
    "SpecChangedError",
    "SweepLockedError",
    "SanityCheckWarning",
    "RESULT_COLUMNS",
    "TEST_SIZES",
    "GRAD_CHECK_IMAGES",
    "plan_cells",
    "run_sweep",
    "quick_sweep",
    "read_results",
    "resolve_device",
]

RESULTS_NAME = "results.csv"
SAMPLES_DIR = "samples"
STATE_NAME = "sweep_state.json"
CHECKS_NAME = "checks.json"
LOCK_NAME = ".attack.lock"
STATE_FORMAT = 1
TEST_SIZES = {"cifar100": 10000, "cifar100-mini": 1000}
GRAD_CHECK_IMAGES = 256

RESULT_COLUMNS = [
    "model", "arm", "dataset", "train_seed", "attack", "norm", "eps", "eps_255", "steps", "step_size", "step_rule",
    "restarts", "random_start", "grad", "source_arm", "attack_seed", "spec", "n", "clean_acc", "robust_acc",
    "n_correct", "n_clean_correct", "batch_size", "wall_s", "cell_id", "git_sha", "torch", "torchattacks", "device",
    "timestamp",
]


class SpecChangedError(ValueError):
    """A spec name whose content changed since its cells were computed in this run folder."""


class SweepLockedError(RuntimeError):
    """Another attack sweep holds the run folder."""


class SanityCheckWarning(UserWarning):
    """Issued by :func:`run_sweep` when a sanity check fails (details in checks.json and the returned attrs)."""


# --- cells --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One attack configuration at one radius on one evaluated arm. The key fields define ``cell_id``."""

    model: str
    arm: str
    dataset: str
    train_seed: int | None
    attack: str  # clean | fgsm | pgd
    norm: str  # none (clean) | linf | l2
    eps: float
    steps: int
    step_size: float
    restarts: int
    random_start: bool
    grad: str  # none | soft | bpda
    source_arm: str
    attack_seed: int
    n: int
    step_rule: str = "none"  # not part of the key (step_size is)
    batch_size: int = DEFAULT_BATCH_SIZE  # not part of the key

    KEY_FIELDS = ("model", "arm", "dataset", "train_seed", "attack", "norm", "eps", "steps", "step_size", "restarts",
                  "random_start", "grad", "source_arm", "attack_seed", "n")

    def key(self) -> dict[str, Any]:
        key = {f: getattr(self, f) for f in self.KEY_FIELDS}
        key["eps"] = f"{self.eps:.12g}"
        key["step_size"] = f"{self.step_size:.12g}"
        return key

    @property
    def cell_id(self) -> str:
        return hashlib.sha1(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def is_clean(self) -> bool:
        return self.attack == "clean"

    def label(self) -> str:
        if self.is_clean:
            return f"{self.arm} clean"
        eps = f"{self.eps * 255:.4g}/255" if self.norm == "linf" else f"{self.eps:.4g}"
        name = "FGSM" if self.attack == "fgsm" else f"PGD{'-L2' if self.norm == 'l2' else ''}-{self.steps}"
        if self.restarts > 1:
            name += f"x{self.restarts}"
        src = f" from {self.source_arm}" if self.source_arm != self.arm else ""
        grad = f" {self.grad}" if self.grad != "none" else ""
        return f"{self.arm} {name}{grad}{src} eps {eps}"


def clean_cell(info: dict[str, Any], n: int, batch_size: int = DEFAULT_BATCH_SIZE) -> Cell:
    return Cell(model=info["model"], arm=info["arm"], dataset=info["dataset"], train_seed=info["train_seed"],
                attack="clean", norm="none", eps=0.0, steps=0, step_size=0.0, restarts=0, random_start=False,
                grad="none", source_arm=info["arm"], attack_seed=0, n=n, step_rule="none", batch_size=batch_size)


def _resolve_n(n_examples: int | None, dataset: str, size: int | None = None) -> int:
    size = size if size is not None else TEST_SIZES.get(dataset)
    if size is None:
        raise ValueError(f"unknown test-set size for data set {dataset!r}")
    if n_examples is None:
        return size
    if n_examples > size:
        warnings.warn(f"n_examples={n_examples} exceeds the {dataset} test set ({size}); using all {size}",
                      stacklevel=3)
        return size
    return n_examples


def plan_cells(spec: AttackSpec, arms: dict[str, dict[str, Any]], test_size: int | None = None) -> list[Cell]:
    """The cells of one attack spec on a run whose arms are described by ``arms[arm]`` (model, arm, dataset,
    train_seed, has_jpeg): clean cells of the evaluated arms first, then attack cells (arm, grad, eps order)."""
    any_info = next(iter(arms.values()))
    n = _resolve_n(spec.n_examples, any_info["dataset"], test_size)
    if spec.transfer_from is not None:
        if spec.transfer_from not in arms:
            raise AttackSpecError(
                f"transfer_from={spec.transfer_from!r} but the run has no {spec.transfer_from!r} arm "
                f"(arms: {', '.join(arms)})"
            )
        eval_arms = [a for a in arms if a != spec.transfer_from]
        if not eval_arms:
            raise AttackSpecError(f"transfer_from={spec.transfer_from!r} needs another arm to evaluate on")
    else:
        eval_arms = list(arms)
    cells = [clean_cell(arms[a], n, spec.batch_size) for a in eval_arms]
    for arm in eval_arms:
        source = spec.transfer_from or arm
        grads = spec.grad if arms[source]["has_jpeg"] else ("none",)
        for grad in grads:
            for eps in spec.eps:
                step, rule = resolve_step_size(spec.step_size, eps, spec.steps, spec.norm)
                if spec.method == "fgsm":
                    step, rule = eps, "eps"
                info = arms[arm]
                cells.append(Cell(
                    model=info["model"], arm=arm, dataset=info["dataset"], train_seed=info["train_seed"],
                    attack=spec.method, norm=spec.norm, eps=float(eps), steps=int(spec.steps), step_size=float(step),
                    restarts=int(spec.restarts), random_start=bool(spec.random_start), grad=grad, source_arm=source,
                    attack_seed=int(spec.seed), n=n, step_rule=rule, batch_size=spec.batch_size,
                ))
    return cells


# --- run folder IO ----------------------------------------------------------------------------------------------


def read_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """``RUN/results.csv`` as a DataFrame (empty, with the documented columns, when absent)."""
    path = Path(run_dir) / RESULTS_NAME
    if not path.is_file():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    text_columns = ("model", "arm", "dataset", "attack", "norm", "step_rule", "grad", "source_arm", "spec", "cell_id",
                    "git_sha", "torch", "torchattacks", "device", "timestamp")
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in text_columns})


def _write_results(run_dir: Path, df: pd.DataFrame) -> None:
    cols = RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS]
    atomic_write_text(run_dir / RESULTS_NAME, df.reindex(columns=cols).to_csv(index=False))


def _samples_path(run_dir: Path, cell_id: str) -> Path:
    return run_dir / SAMPLES_DIR / f"{cell_id}.npy"


def _save_samples(run_dir: Path, cell_id: str, correct: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(correct, dtype=bool), allow_pickle=False)
    atomic_write_bytes(_samples_path(run_dir, cell_id), buffer.getvalue())


def _load_samples(run_dir: Path, cell_id: str, n: int) -> np.ndarray | None:
    path = _samples_path(run_dir, cell_id)
    if not path.is_file():
        return None
    arr = np.load(path, allow_pickle=False)
    if arr.dtype != bool or arr.shape != (n,):
        raise ValueError(f"{path} holds {arr.dtype} {arr.shape}, expected bool ({n},); delete it to recompute")
    return arr


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_NAME
    if not path.is_file():
        return {"format": STATE_FORMAT, "specs": {}, "gradient_stats": {}}
    state = read_json(path)
    state.setdefault("specs", {})
    state.setdefault("gradient_stats", {})
    return state


@contextlib.contextmanager
def _lock(run_dir: Path) -> Iterator[None]:
    """An exclusive advisory lock on the run folder (POSIX); results.csv is read-modify-written per cell."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    handle = open(run_dir / LOCK_NAME, "a+")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepLockedError(f"another attack sweep is running on {run_dir}; wait for it to finish") from None
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def _main_lock(run_dir: Path) -> Iterator[None]:
    """:func:`_lock` held by rank 0 (the only writer) for the duration; a refusal reaches every rank."""
    with contextlib.ExitStack() as stack:

        def acquire() -> None:
            stack.enter_context(_lock(run_dir))

        distributed.run_on_main(acquire)
        yield


def _checkpoint_fingerprint(arm_dir: Path) -> str:
    stat = (arm_dir / "checkpoint.pt").stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


# --- the runner ---------------------------------------------------------------------------------------------------


class _Runner:
    """Lazily loads the test data and the models; computes cells; writes their files and rows."""

    def __init__(self, run_dir: Path, arm_dirs: dict[str, Path], arms: dict[str, dict[str, Any]],
                 device: torch.device, data_dir: str | None, spec_name: str, progress: bool) -> None:
        self.run_dir, self.arm_dirs, self.arms = run_dir, arm_dirs, arms
        self.device, self.data_dir, self.spec_name, self.progress = device, data_dir, spec_name, progress
        self.dataset = next(iter(arms.values()))["dataset"]
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        self._models: dict[str, torch.nn.Module] = {}
        self.versions = _versions()
        self.sha = git_sha()
        self.device_label = device_name(device)

    # data and models
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._data is None:
            from ..data import load_split

            images, labels = load_split(self.dataset, train=False, data_dir=self.data_dir)
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(
                    f"test split of {self.dataset} is not uint8 NCHW: {images.dtype} {tuple(images.shape)}"
                )
            self._data = (images, labels.long())
        return self._data

    def model(self, arm: str) -> torch.nn.Module:
        if arm not in self._models:
            model = load_model(self.arm_dirs[arm], self.device)
            model.requires_grad_(False)  # only input gradients are needed
            if getattr(model, "has_jpeg", False):
                model.jpeg.mode = "soft"
            self._models[arm] = model.eval()
        return self._models[arm]

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.data()
        idx = torch.from_numpy(index)
        x = images[idx].to(self.device).float().div_(255.0)
        return x, labels[idx].to(self.device)

    @torch.no_grad()
    def predict_correct(self, arm: str, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        model = self.model(arm)
        if getattr(model, "has_jpeg", False) and model.jpeg.mode != "soft":
            raise RuntimeError("JPEG layer not in soft (deployed) mode at evaluation")
        return (model(x).argmax(dim=1) == y).cpu().numpy()

    # cells
    def clean_correct(self, arm: str, n: int, batch_size: int) -> np.ndarray:
        """Clean correctness of ``arm`` on the first n images: from its clean cell, computed first if needed.

        Collective under torchrun: rank 0 reads the stored cell and hands it to every rank."""
        cell = clean_cell(self.arms[arm], n, batch_size)

        def stored() -> np.ndarray | None:
            found = _load_samples(self.run_dir, cell.cell_id, n)
            return found if found is not None and cell.cell_id in self.done_ids() else None

        found = distributed.run_on_main(stored)
        if found is not None:
            return found
        return self.compute(cell, None)[1]

    def done_ids(self) -> set[str]:
        df = read_results(self.run_dir)
        return {c for c in df["cell_id"].astype(str) if _samples_path(self.run_dir, c).is_file()}

    def compute(self, cell: Cell, bar: Any) -> tuple[dict[str, Any] | None, np.ndarray]:
        """Compute one cell; returns its row (None on ranks other than 0) and per-sample correctness (every rank).

        Under torchrun each rank computes its contiguous shard of the n images; the shards are gathered in
        test-set order and rank 0 writes the samples file and the row."""
        start = time.perf_counter()
        n, bs = cell.n, cell.batch_size
        if n > len(self.data()[1]):
            raise ValueError(f"cell needs {n} test images but {self.dataset} has {len(self.data()[1])}")
        lo, hi = distributed.shard_bounds(n)
        if cell.is_clean:
            local = np.zeros(hi - lo, dtype=bool)
            for first in range(lo, hi, bs):
                index = np.arange(first, min(first + bs, hi))
                local[index - lo] = self.predict_correct(cell.arm, *self.batch(index))
                if bar is not None:
                    bar.update(1)
            correct = clean = distributed.gather_shards(local, n)
        else:
            clean = self.clean_correct(cell.arm, n, bs)
            correct = distributed.gather_shards(self._attack(cell, clean, lo, hi, bar), n)
        wall = time.perf_counter() - start
        if bool((correct & ~clean).any()):
            raise RuntimeError("internal error: a sample counted robust without being clean-correct")
        if not distributed.is_main():
            return None, correct
        _save_samples(self.run_dir, cell.cell_id, correct)
        row = self._row(cell, clean, correct, wall)
        df = read_results(self.run_dir)
        df = df[df["cell_id"].astype(str) != cell.cell_id]
        new = pd.DataFrame([row])
        df = new if df.empty else pd.concat([df, new], ignore_index=True)
        _write_results(self.run_dir, df)
        return row, correct

    def _attack(self, cell: Cell, clean: np.ndarray, lo: int, hi: int, bar: Any) -> np.ndarray:
        """Robustness of images ``lo..hi-1`` (this rank's shard), in batches of ``cell.batch_size``."""
        robust = clean[lo:hi].copy()
        if cell.eps == 0:
            if bar is not None:
                bar.update(math.ceil((hi - lo) / cell.batch_size))
            return robust
        source = self.model(cell.source_arm)
        self.model(cell.arm)  # load before timing-sensitive loop
        for first in range(lo, hi, cell.batch_size):
            last = min(first + cell.batch_size, hi)
            for r in range(cell.restarts):
                alive = np.nonzero(robust[first - lo : last - lo])[0] + first
                if alive.size == 0:
                    break
                x, y = self.batch(alive)
                with PerSampleRandom([start_seed(cell.cell_id, r, int(i)) for i in alive]):
                    adv = craft(source, x, y, cell.attack, cell.norm, cell.eps, cell.steps, cell.step_size,
                                cell.random_start, cell.grad, seed=derive_seed(cell.cell_id, r))
                robust[alive - lo] &= self.predict_correct(cell.arm, adv, y)
            if bar is not None:
                bar.update(1)
        return robust

    def _row(self, cell: Cell, clean: np.ndarray, correct: np.ndarray, wall: float) -> dict[str, Any]:
        from ..provenance import now_iso

        return {
            "model": cell.model, "arm": cell.arm, "dataset": cell.dataset, "train_seed": cell.train_seed,
            "attack": cell.attack, "norm": cell.norm, "eps": cell.eps, "eps_255": cell.eps * 255,
            "steps": cell.steps, "step_size": cell.step_size, "step_rule": cell.step_rule,
            "restarts": cell.restarts, "random_start": cell.random_start, "grad": cell.grad,
            "source_arm": cell.source_arm, "attack_seed": cell.attack_seed, "spec": self.spec_name, "n": cell.n,
            "clean_acc": float(clean.mean()), "robust_acc": float(correct.mean()), "n_correct": int(correct.sum()),
            "n_clean_correct": int(clean.sum()), "batch_size": cell.batch_size, "wall_s": round(wall, 3),
            "cell_id": cell.cell_id, "git_sha": self.sha, "torch": self.versions["torch"],
            "torchattacks": self.versions["torchattacks"], "device": self.device_label, "timestamp": now_iso(),
        }

    def gradient_stats(self, arm: str) -> dict[str, Any]:
        images, labels = self.data()
        k = min(GRAD_CHECK_IMAGES, len(labels))
        x, y = self.batch(np.arange(k))
        model = self.model(arm)
        with jpeg_mode(model, "soft" if getattr(model, "has_jpeg", False) else "none"):
            stats = zero_gradient_fraction(model, x, y, batch_size=min(k, 256))
        stats["fingerprint"] = _checkpoint_fingerprint(self.arm_dirs[arm])
        return stats


def _versions() -> dict[str, str]:
    try:
        import torchattacks
    except ImportError:
        return {"torch": torch.__version__, "torchattacks": "not installed"}
    return {"torch": torch.__version__, "torchattacks": getattr(torchattacks, "__version__", "unknown")}


def _arm_infos(run_dir: Path) -> tuple[dict[str, Path], dict[str, dict[str, Any]]]:
    arm_dirs = find_arms(run_dir)
    infos: dict[str, dict[str, Any]] = {}
    for arm, arm_dir in arm_dirs.items():
        card = read_card(arm_dir)
        if card["arm"] != arm:
            raise CheckpointError(f"{arm_dir}/card.json says arm={card['arm']!r} but lives in folder {arm!r}")
        infos[arm] = {
            "model": card["model"], "arm": arm, "dataset": card["dataset"], "train_seed": card.get("seed"),
            "has_jpeg": bool(card.get("jpeg")), "clean_top1": card.get("clean_top1"),
            "finished": card.get("epochs_done", card.get("epochs")) == card.get("epochs"),
        }
    datasets = {info["dataset"] for info in infos.values()}
    if len(datasets) > 1:
        detail = ", ".join(f"{a}: {i['dataset']}" for a, i in infos.items())
        raise ValueError(f"arms of {run_dir} were trained on different data sets ({detail}); one run folder must hold "
                         "one data set, attack them from separate run folders")
    return arm_dirs, infos


def _as_specfile(specs: SpecFile | AttackSpec | Sequence[AttackSpec] | str, spec_name: str) -> SpecFile:
    if isinstance(specs, SpecFile):
        return specs
    if isinstance(specs, str):
        return load_spec(specs)
    attacks = (specs,) if isinstance(specs, AttackSpec) else tuple(specs)
    spec = SpecFile(name=spec_name, attacks=attacks, version=1, description="")
    if spec_name == "cli":  # ad-hoc attacks: one spec per distinct content, so different calls never clash
        spec = dataclasses.replace(spec, name=f"cli-{spec.hash[:8]}")
    return spec


# --- public entry points ------------------------------------------------------------------------------------------


def run_sweep(
    run_dir: str | os.PathLike,
    specs: SpecFile | AttackSpec | Sequence[AttackSpec] | str,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    spec_name: str = "cli",
) -> pd.DataFrame:
    """Attack every arm of ``run_dir`` with every cell of ``specs``; resumable; returns this sweep's rows.

    Args:
        run_dir: a run folder with ``baseline/`` and/or ``jpegdl/`` (card.json + checkpoint.pt).
        specs: a :class:`SpecFile` (its name is used), a spec name/path (loaded with :func:`load_spec`), or one or
            more :class:`AttackSpec` (named ``spec_name``; the default ``cli`` becomes ``cli-<hash8>``).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        data_dir: CIFAR-100 folder for ``cifar100`` runs (default: the run's config.json ``data_dir``, then the
            data layer's default); ignored for ``cifar100-mini``.
        progress: show a tqdm bar (stderr).

    Under ``torchrun`` (``WORLD_SIZE > 1``) every rank calls this: each cell's images are sharded over the ranks,
    rank 0 writes every file, and every rank returns the same table (see docs/distributed.md).

    Returns:
        The ``results.csv`` rows of every cell this spec plans (computed now or earlier), in plan order, with
        ``attrs``: ``computed`` (cell ids computed by this call), ``spec_name``, ``spec_hash``, ``checks`` (list
        of check dicts, as in checks.json), ``verdict`` and ``results_path``.

    Raises:
        SpecChangedError: the spec name was used in this folder with different content.
        CheckpointError: no trained arms; AttackSpecError / ValueError: invalid specs, mixed data sets.
    """
    run_dir = Path(run_dir)
    spec = _as_specfile(specs, spec_name)
    arm_dirs, arms = _arm_infos(run_dir)
    dev = resolve_device(device)
    main = distributed.init_from_env(dev).is_main
    dev = distributed.local_device(dev)
    if data_dir is None and (run_dir / "config.json").is_file():
        data_dir = read_json(run_dir / "config.json").get("data_dir")

    cells: list[Cell] = []
    seen: set[str] = set()
    for attack in spec.attacks:
        for cell in plan_cells(attack, arms):
            if cell.cell_id not in seen:
                seen.add(cell.cell_id)
                cells.append(cell)

    # Under torchrun every rank runs this function; rank 0 alone reads the sweep's bookkeeping, decides and writes,
    # and hands its decisions to the others (distributed.run_on_main), so all ranks compute the same cells.
    with _main_lock(run_dir):
        runner = _Runner(run_dir, arm_dirs, arms, dev, None if data_dir is None else str(data_dir), spec.name,
                         progress)
        planned = [c.cell_id for c in cells]
        book: dict[str, Any] = {}  # rank 0's sweep state

        def prepare() -> list[str]:
            state = book["state"] = _read_state(run_dir)
            old = state["specs"].get(spec.name)
            if old is not None and old.get("hash") != spec.hash:
                raise SpecChangedError(
                    f"spec {spec.name!r} changed since cells were computed in {run_dir} (stored hash "
                    f"{old['hash'][:12]}, now {spec.hash[:12]}); never mixing cells of two versions of a spec: save "
                    f"the new version under a new spec name or use a new --out run folder (or delete the "
                    f"{spec.name!r} entry of {run_dir / STATE_NAME} together with its rows in results.csv to "
                    "recompute from scratch)"
                )
            entry = {
                "hash": spec.hash, "version": spec.version, "description": spec.description, "path": spec.path,
                "attacks": [a.to_dict() for a in spec.attacks], "cells": planned,
            }
            state_changed = old is None or any(old.get(k) != v for k, v in entry.items() if k != "path")
            if state_changed:
                entry["created"] = (old or {}).get("created") or _now()
                state["specs"][spec.name] = {**(old or {}), **entry}
                atomic_write_json(run_dir / STATE_NAME, state)
            done = runner.done_ids()
            with exact_fp32(dev):
                grad_stats = book["grad_stats"] = dict(state.get("gradient_stats", {}))
                stale = [
                    a for a in arms
                    if grad_stats.get(a, {}).get("fingerprint") != _checkpoint_fingerprint(arm_dirs[a])
                ]
                for arm in stale:
                    grad_stats[arm] = runner.gradient_stats(arm)
                if stale:
                    state["gradient_stats"] = grad_stats
                    atomic_write_json(run_dir / STATE_NAME, state)
            return [c.cell_id for c in cells if c.cell_id not in done]

        todo_ids = set(distributed.run_on_main(prepare))
        todo = [c for c in cells if c.cell_id in todo_ids]
        computed: list[str] = []

        def batches(cell: Cell) -> int:  # this rank's batches of a cell (the progress bar counts them)
            lo, hi = distributed.shard_bounds(cell.n)
            return math.ceil((hi - lo) / cell.batch_size)

        with exact_fp32(dev):
            if todo:
                from tqdm.auto import tqdm

                total = sum(batches(c) for c in todo)
                with tqdm(total=total, disable=not (progress and main), desc=f"attack {spec.name}", unit="batch",
                          dynamic_ncols=True) as bar:
                    for cell in todo:
                        # e.g. a clean cell computed as a dependency
                        if distributed.run_on_main(lambda cid=cell.cell_id: cid in runner.done_ids()):
                            bar.update(batches(cell))
                            continue
                        bar.set_postfix_str(cell.label(), refresh=False)
                        runner.compute(cell, bar)
                        computed.append(cell.cell_id)

        def finish() -> tuple[pd.DataFrame, str | None]:
            state = book["state"]
            done_now = runner.done_ids()
            finished = all(c in done_now for c in planned)
            if state["specs"][spec.name].get("finished") != finished or computed:
                state["specs"][spec.name]["finished"] = finished
                state["specs"][spec.name]["updated"] = _now()
                atomic_write_json(run_dir / STATE_NAME, state)

            results = read_results(run_dir)
            test_size = TEST_SIZES.get(runner.dataset)
            cards = {a: {"clean_top1": i["clean_top1"], "finished": i["finished"], "test_size": test_size}
                     for a, i in arms.items()}
            checks = run_checks(results, book["grad_stats"], cards)
            payload = checks_payload(checks)
            checks_path = run_dir / CHECKS_NAME
            if not checks_path.is_file() or read_json(checks_path) != payload:
                atomic_write_json(checks_path, payload)
            order = {cid: i for i, cid in enumerate(planned)}
            table = results[results["cell_id"].astype(str).isin(order)].copy()
            table = table.iloc[np.argsort([order[c] for c in table["cell_id"].astype(str)], kind="stable")]
            table = table.reset_index(drop=True)
            table.attrs.update({
                "computed": computed, "spec_name": spec.name, "spec_hash": spec.hash, "checks": payload["checks"],
                "verdict": verdict(checks), "results_path": str(run_dir / RESULTS_NAME),
            })
            failed = any(c.status == "fail" for c in checks)
            return table, (verdict(checks) if failed else None)

        table, failure = distributed.run_on_main(finish)

    if failure is not None and main:
        warnings.warn(f"{run_dir}: {failure}", SanityCheckWarning, stacklevel=2)
    return table


def _now() -> str:
    from ..provenance import now_iso

    return now_iso()


def quick_sweep(run_dir: str | os.PathLike, device: str | torch.device = "cpu", progress: bool = True,
                data_dir: str | os.PathLike | None = None, n_examples: int = 500) -> pd.DataFrame:
    """The quickstart's short sweep (spec ``quick``): FGSM and PGD-5 (step 2.5*eps/steps, random start;
    soft and BPDA gradients on the JPEG-DL arm) at 1, 2, 4, 8/255 on the first 500 test images of the run's
    data set (``n_examples``). Its cost grows with the number of clean-correct images (only those are attacked):
    see docs/attacks.md for measured times."""
    spec = load_spec("quick").with_overrides(n_examples=n_examples)  # renamed quick+nN unless 500
    return run_sweep(run_dir, spec, device=device, data_dir=data_dir, progress=progress)
