"""The quantizer in numbers: the mechanism behind gradient masking, per JPEG arm, from the run's diagnostics.json.

Per DCT frequency (luma; chroma = Cb and Cr, which share a table): the hardness alpha * q^2 of the trained tables,
the share of the test images' coefficients where the soft quantizer's local slope is below 1% of the identity's
(there the input gradient through the layer is close to zero), and the share of exactly-zero loss gradients at the
quantizer's input. Heat maps and a summary table (docs/method.md, section 2).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..runfolder import arm_display
from .load import Run
from .plots import STYLE, save_figure

__all__ = ["quantizer_rows", "plot_quantizer", "FIGURE"]

FIGURE = "quantizer.png"


def _arms(runs: list[Run]) -> list[tuple[Run, str, dict]]:
    """(run, arm, diagnostics) of every JPEG arm with an audit, the lowest seed of each model first."""
    out = []
    for run in sorted(runs, key=lambda r: (r.model, r.seed)):
        for arm, diag in sorted((run.diagnostics or {}).items()):
            if isinstance(diag, dict) and diag.get("hardness"):
                out.append((run, arm, diag))
    return out


def quantizer_rows(runs: list[Run]) -> pd.DataFrame:
    """One row per run, JPEG arm and channel: hardness range, slope and zero-gradient shares."""
    rows = []
    for run, arm, diag in _arms(runs):
        slopes = diag.get("slopes") or {}
        below = (slopes.get("below_threshold") or {}).get("channel") or {}
        zero = (((diag.get("gradients") or {}).get("coefficients")) or {}).get("per_channel") or {}
        threshold = slopes.get("threshold", 0.01)
        for channel, table in (("Y", "luma"), ("Cb", "chroma"), ("Cr", "chroma")):
            hard = np.asarray(diag["hardness"][table], dtype=float)
            rows.append(
                {
                    "run": run.name,
                    "arm": arm_display(arm),
                    "channel": channel,
                    "alpha q^2 (median; min-max)": f"{np.median(hard):.3g} ({hard.min():.3g}-{hard.max():.3g})",
                    "frequencies with alpha q^2 >= 20": f"{int((hard >= 20).sum())} of 64",
                    f"coefficients with slope < {threshold:g}": _pct(below.get(channel)),
                    "exactly-zero loss gradients": _pct(zero.get(channel)),
                }
            )
    return pd.DataFrame(rows)


def _pct(value) -> str:
    return f"{100 * float(value):.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else ""


def plot_quantizer(runs: list[Run], png) -> bool:
    """Heat maps per JPEG arm: alpha q^2 (log scale), the share of near-zero slopes and of zero gradients, luma and
    chroma. Returns False (and writes nothing) when no run has an audit."""
    arms = _arms(runs)
    if not arms:
        return False
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(8, 4.1 * len(arms)))  # three square heat maps and their colour bars per row
        subfigs = np.atleast_1d(fig.subfigures(len(arms), 1))
        for sub, (run, arm, diag) in zip(subfigs, arms, strict=True):
            axes = sub.subplots(2, 3)
            sub.subplots_adjust(left=0.08, right=0.92, bottom=0.12, top=0.86, wspace=0.6, hspace=0.5)
            sub.suptitle(
                f"{arm_display(arm)} quantizer, run {run.name} (train seed {run.seed})", fontsize=11, fontweight="bold"
            )
            slopes = diag.get("slopes") or {}
            zero_maps = (((diag.get("gradients") or {}).get("coefficients")) or {}).get("maps") or {}
            for row, (table, name) in zip(axes, (("luma", "luma (Y)"), ("chroma", "chroma (Cb, Cr)")), strict=True):
                hard = np.asarray(diag["hardness"][table], dtype=float)
                _heat(row[0], hard, f"{name}: alpha q^2", log=True)
                below = (slopes.get("below_threshold") or {}).get(table)
                _heat(
                    row[1],
                    None if below is None else np.asarray(below, dtype=float),
                    f"{name}: slope < {slopes.get('threshold', 0.01):g}",
                    share=True,
                )
                zero = _zero_map(zero_maps, table)
                _heat(row[2], zero, f"{name}: zero gradients", share=True)
        save_figure(fig, png)
    return True


def _zero_map(maps: dict, table: str) -> np.ndarray | None:
    if table == "luma":
        return np.asarray(maps["Y"], dtype=float) if "Y" in maps else None
    parts = [np.asarray(maps[c], dtype=float) for c in ("Cb", "Cr") if c in maps]
    return np.mean(parts, axis=0) if parts else None


def _heat(ax, values: np.ndarray | None, title: str, log: bool = False, share: bool = False) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(0, 8, 2))
    ax.set_yticks(range(0, 8, 2))
    ax.set_xlabel("horizontal frequency v", fontsize=7)
    ax.set_ylabel("vertical frequency u", fontsize=7)
    if values is None or np.shape(values) != (8, 8):
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        return
    if log:
        image = ax.imshow(
            np.clip(values, 1e-3, None),
            cmap="magma",
            norm=LogNorm(vmin=max(values.min(), 1e-3), vmax=max(values.max(), 1e-2)),
        )
    else:
        image = ax.imshow(100 * values if share else values, cmap="viridis", vmin=0, vmax=100 if share else None)
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("%" if share else "alpha q^2", fontsize=7)
