"""Redraw a published report's headline figure from its data/ folder, then attack a trained model directly.

The worst case is computed here in a few lines of numpy from the per-image records, so you can check the report's
definition: an image counts as robust at eps only if every attack run at eps or any smaller radius left it correct,
on the first n images that every attack covered. Then, optionally, a model is loaded from a run folder with
``robustbench_jpeg.load_model`` and attacked with the toolkit's PGD (``robustbench_jpeg.attack.craft``) on a few test
images.

    python examples/reproduce_figure.py                                    # reports/quickstart/data
    python examples/reproduce_figure.py --data reports/cifar100-resnet20-cpu/data --out r20.png
    python examples/reproduce_figure.py --run runs/my-run --arm jpegdl --n 16 --eps 2

Runs on CPU in seconds. Nothing here is printed from a stored number: everything is recomputed from the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from robustbench_jpeg.runfolder import read_samples
from robustbench_jpeg.stats import wilson_interval

REPO = Path(__file__).resolve().parents[1]
COLORS = {"baseline": "#0072B2", "jpegdl": "#D55E00", "jpeg-frozen": "#009E73", "jpeg-standard": "#CC79A7"}


def worst_case(data: Path, norm: str = "linf") -> pd.DataFrame:
    """Per run, arm and eps: accuracy under the worst case over every attack, on the images all attacks covered."""
    results = pd.read_csv(data / "results.csv", dtype={"cell_id": str})
    rows = []
    for run, table in results.groupby("run"):
        samples = read_samples(data / "runs" / str(run))  # cell_id -> bool per image (True = still correct)
        if "eval_alpha" in table:  # cells scored with an evaluation-time alpha are a different protocol
            table = table[table["eval_alpha"].isna()]
        attacks = table[(table["attack"] != "clean") & (table["norm"] == norm)]
        for arm, mine in attacks.groupby("arm"):
            n = int(mine["n"].min())  # the images every attack covered
            clean = table[(table["arm"] == arm) & (table["attack"] == "clean") & (table["n"] >= n)].iloc[0]
            robust = samples[clean["cell_id"]][:n].copy()
            rows.append({"run": run, "arm": arm, "eps": 0.0, "correct": int(robust.sum()), "n": n})
            for eps in sorted(mine["eps"].unique()):
                for cell_id in mine.loc[mine["eps"] == eps, "cell_id"]:
                    robust &= samples[cell_id][:n]  # eps' <= eps: the loop runs over radii in increasing order
                rows.append({"run": run, "arm": arm, "eps": float(eps), "correct": int(robust.sum()), "n": n})
    out = pd.DataFrame(rows)
    out["eps_255"] = (out["eps"] * 255).round(2)
    out["acc"] = out["correct"] / out["n"]
    return out


def draw(table: pd.DataFrame, path: Path) -> None:
    """Worst-case accuracy vs eps per arm with a 95% Wilson band (one seed), 3.4 in wide."""
    fig = Figure(figsize=(3.4, 2.6), layout="constrained")
    ax = fig.subplots()
    for arm, line in table.groupby("arm"):
        line = line.sort_values("eps_255")
        band = np.array([wilson_interval(c, n) for c, n in zip(line["correct"], line["n"], strict=True)])
        color = COLORS.get(str(arm), "grey")
        ax.fill_between(line["eps_255"], 100 * band[:, 0], 100 * band[:, 1], color=color, alpha=0.2, linewidth=0)
        ax.plot(line["eps_255"], 100 * line["acc"], marker="o", markersize=3, color=color, label=str(arm))
    ax.set_xlabel("\u03b5 (/255)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("worst case over every attack (L\u221e)", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7)
    fig.savefig(path, dpi=150)


def attack(run: Path, arm: str, n: int, eps_255: float, steps: int) -> tuple[float, float]:
    """Clean and PGD accuracy of one arm on the first ``n`` test images (soft gradients through a JPEG layer)."""
    import torch

    from robustbench_jpeg import load_model, load_split
    from robustbench_jpeg.attack import craft
    from robustbench_jpeg.checkpoint import read_card

    model = load_model(run / arm)  # eval mode, RGB in [0, 1] -> logits
    images, labels = load_split(read_card(run / arm)["dataset"], train=False)
    x, y = images[:n].float() / 255, labels[:n]
    eps = eps_255 / 255
    x_adv = craft(model, x, y, "pgd", "linf", eps, steps=steps, step_size=2.5 * eps / steps, random_start=True, seed=0)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
        robust = (model(x_adv).argmax(1) == y).float().mean().item()
    return clean, robust


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO / "reports" / "quickstart" / "data",
        help="a published report's data/ folder (default: reports/quickstart/data)",
    )
    parser.add_argument("--out", type=Path, default=Path("worst_case_reproduced.png"), help="figure to write")
    parser.add_argument("--run", type=Path, default=None, help="a run folder to load a model from and attack")
    parser.add_argument("--arm", default="jpegdl", help="arm to attack (default jpegdl)")
    parser.add_argument("--n", type=int, default=8, help="test images to attack (default 8)")
    parser.add_argument("--eps", type=float, default=8.0, help="L-inf radius in 1/255 units (default 8)")
    parser.add_argument("--steps", type=int, default=5, help="PGD steps (default 5)")
    args = parser.parse_args(argv)
    if not (args.data / "results.csv").is_file():
        parser.error(f"{args.data} has no results.csv; give a report's data/ folder with --data")
    table = worst_case(args.data)
    print(table.pivot_table(index="eps_255", columns="arm", values="acc").round(4).to_string())
    draw(table, args.out)
    print(f"figure: {args.out}")
    if args.run is not None:
        clean, robust = attack(args.run, args.arm, args.n, args.eps, args.steps)
        print(f"{args.arm}: clean {clean:.3f}, PGD-{args.steps} at {args.eps:g}/255 {robust:.3f} on {args.n} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
