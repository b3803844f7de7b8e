"""Adversarial examples/s: PGD through the attack sweep's own path vs plain torchattacks, same model and images.

    python benchmarks/attack_throughput.py --device cpu --model tiny --n 64 --steps 2   # CI-sized
    python benchmarks/attack_throughput.py --device cuda --model resnet56 --n 10000 --steps 10

A temporary run folder is trained (one step per arm, so the weights are a trained run's, whatever their accuracy)
and both paths attack every one of the first ``--n`` test images (cifar100-mini's test split, tiled beyond its 1000
images) with PGD at 8/255, random start, step size 2.5*eps/steps:

* ours: ``sweep.compute.Evaluator`` on the run folder, the loop ``jpeg-robust attack`` runs for a cell:
  exact float32 (``device.exact_fp32``, as ``run_sweep``), per-image random starts, the sweep's batch size
  (``--batch-size``, default the specs' 500), test images kept as uint8 and converted per batch, every iterate
  scored. Every image is attacked (as if all were classified correctly; a sweep attacks only those that are);
* usual: the upstream script's way, a torchvision DataLoader (ToTensor, batch 32) and ``torchattacks.PGD`` per
  batch, in the default precision.

Both arms. Without torchattacks (the upstream way it compares with; install the extra robustbench-jpeg[torchattacks])
nothing is compared: the script says so and exits 0.
Rows go to benchmarks/results.csv and $OUT.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import append_result, describe, timed  # noqa: E402
from robustbench_jpeg.attack.spec import DEFAULT_BATCH_SIZE, AttackSpec  # noqa: E402
from robustbench_jpeg.checkpoint import find_arms, read_model_card  # noqa: E402
from robustbench_jpeg.config import RunOptions, TrainConfig  # noqa: E402
from robustbench_jpeg.data import load_split  # noqa: E402
from robustbench_jpeg.device import exact_fp32, resolve_device  # noqa: E402
from robustbench_jpeg.sweep import evaluate_cell  # noqa: E402
from robustbench_jpeg.sweep.compute import Evaluator  # noqa: E402
from robustbench_jpeg.sweep.plan import arm_infos_from_cards, clean_cell, plan_cells  # noqa: E402
from robustbench_jpeg.train import train_pair  # noqa: E402

EPS = 8 / 255


def test_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split("cifar100-mini", train=False)
    reps = -(-n // images.shape[0])
    return images.repeat(reps, 1, 1, 1)[:n].contiguous(), labels.repeat(reps)[:n].contiguous()


class TiledEvaluator(Evaluator):
    """The sweep's evaluator with the test split tiled to ``n`` images (cifar100-mini's test split has 1000)."""

    def __init__(self, *args, n: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._data = test_images(n)


def make_run(model: str, run_dir: Path, device: torch.device, arms: tuple[str, ...]) -> None:
    config = TrainConfig(model=model, dataset="cifar100-mini", epochs=1, batch_size=64, arms=arms)
    options = RunOptions(device=str(device), progress=False, checkpoint_every_s=0, train_subset=64)
    train_pair(config, run_dir, options)


def sweep_path(run_dir: Path, arm: str, n: int, steps: int, batch: int, device: torch.device) -> tuple[float, object]:
    """Seconds for PGD-``steps`` on ``n`` images through the sweep's protocol (exact fp32), and the arm's model."""
    arm_dirs = find_arms(run_dir, (arm,))
    cards = {a: read_model_card(d) for a, d in arm_dirs.items()}
    infos = arm_infos_from_cards(cards)
    evaluator = TiledEvaluator(arm_dirs, infos, cards[arm].num_classes, device, None, n=n)
    spec = AttackSpec(method="pgd", eps=(EPS,), steps=steps, random_start=True, n_examples=n, batch_size=batch)
    (cell,) = [c for c in plan_cells(spec, infos, n) if not c.is_clean]  # soft gradients for JPEG-DL, as deployed
    every = {clean_cell(infos[arm], n).cell_id: np.ones(n, dtype=bool)}  # every image attacked
    with exact_fp32(device):
        evaluate_cell(evaluator, cell, every, 0, min(batch, n))  # warm-up: model load, cuDNN, the first batch
        seconds = timed(lambda: evaluate_cell(evaluator, cell, every, 0, n), device)
    return seconds, evaluator.model(arm)


def plain_path(model, images, labels, steps, batch, workers, device) -> float:
    import torchattacks
    from torchvision import transforms

    class _Dataset(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.images, self.labels = images.permute(0, 2, 3, 1).numpy(), labels.numpy()
            self.to_tensor = transforms.ToTensor()

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i):
            return self.to_tensor(self.images[i]), int(self.labels[i])

    loader = torch.utils.data.DataLoader(
        _Dataset(), batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda"
    )
    attack = torchattacks.PGD(model, eps=EPS, alpha=2.5 * EPS / steps, steps=steps, random_start=True)

    def run() -> None:
        for x, y in loader:
            attack(x.to(device), y.to(device))

    return timed(run, device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet56")
    p.add_argument("--n", type=int, default=256, help="test images attacked (cifar100-mini's 1000, tiled)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="the sweep's batch size")
    p.add_argument("--plain-batch-size", type=int, default=32)
    p.add_argument(
        "--plain-n",
        type=int,
        default=None,
        help="images of the usual loop (the first of the same n; default all n): its rate is what is compared",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--arms", default="baseline,jpegdl")
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results.csv ($OUT still)")
    args = p.parse_args(argv)
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        print("attack throughput: skipped, torchattacks (the upstream way it compares with) is not importable")
        return 0
    device = resolve_device(args.device)
    arms = tuple(args.arms.split(","))
    print(f"attack throughput, PGD-{args.steps} at 8/255, {args.model}, {args.n} images, {describe(device)}")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        make_run(args.model, run_dir, device, arms)
        images, labels = test_images(args.n)
        for arm in arms:
            ours_s, model = sweep_path(run_dir, arm, args.n, args.steps, args.batch_size, device)
            plain_n = min(args.plain_n or args.n, args.n)
            usual_s = plain_path(
                model, images[:plain_n], labels[:plain_n], args.steps, args.plain_batch_size, args.workers, device
            )
            ours, usual = args.n / ours_s, plain_n / usual_s
            print(
                f"  {arm:8s} usual {usual:9.1f} adv/s ({plain_n} in {usual_s:.2f} s)   sweep path {ours:9.1f} adv/s "
                f"({args.n} in {ours_s:.2f} s)   x{ours / usual:.2f}",
                flush=True,
            )
            append_result(
                {
                    "benchmark": "attack_throughput",
                    "model": args.model,
                    "arm": arm,
                    "n": args.n,
                    "steps": args.steps,
                    "batch": args.batch_size,
                    "plain_batch": args.plain_batch_size,
                    "plain_n": plain_n,
                    "path": "sweep evaluate_cell, exact fp32, per-image starts, every image attacked",
                    "device": describe(device),
                    "plain_adv_s": usual,
                    "ours_adv_s": ours,
                    "plain_s": usual_s,
                    "ours_s": ours_s,
                    "speedup": ours / usual,
                },
                save=not args.no_save,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
