"""The learned quantization tables as annotated 8x8 heat maps, beside their initial values and the standard JPEG
quality-50 tables (object-oriented matplotlib: importing this never switches the user's backend)."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .plots import STYLE, save_figure


def plot_qtables(tables: list[dict], png) -> None:
    """Learned luma/chroma step tables beside their initial values and the standard JPEG quality-50 tables.

    ``tables`` items: ``{"title": str, "learned": {"luma", "chroma"} | None, "init": ... | None}``.
    """
    from ..jpeg.tables import standard_tables

    std_luma, std_chroma = (t.numpy() for t in standard_tables(50))
    standard = {"luma": std_luma, "chroma": std_chroma}
    blocks = tables or [{"title": "no JPEG-DL card with learned tables", "learned": None, "init": None}]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(14, 7.6 * len(blocks)))
        subfigs = np.atleast_1d(fig.subfigures(len(blocks), 1))
        for sub, block in zip(subfigs, blocks, strict=True):
            axes = sub.subplots(2, 3)
            sub.subplots_adjust(left=0.05, right=0.95, bottom=0.06, top=0.9, wspace=0.4, hspace=0.35)
            sub.suptitle(f"JPEG-DL quantization step tables: {block['title']}", fontsize=11, fontweight="bold")
            for row, channel in zip(axes, ("luma", "chroma"), strict=True):
                pair = [_table(block["learned"], channel), _table(block["init"], channel)]
                known = [t for t in pair if t is not None]
                scale = (min(t.min() for t in known), max(t.max() for t in known)) if known else (None, None)
                _heatmap(row[0], pair[0], f"{channel.capitalize()}: learned", scale)
                _heatmap(row[1], pair[1], f"{channel.capitalize()}: initial (same colour scale)", scale)
                _heatmap(
                    row[2],
                    standard[channel].astype(float),
                    f"{channel.capitalize()}: standard JPEG quality 50 (T.81 Annex K)",
                    (None, None),
                    integer=True,
                )
        save_figure(fig, png)


def _table(source: dict | None, channel: str) -> np.ndarray | None:
    if not source or source.get(channel) is None:
        return None
    values = np.asarray(source[channel], dtype=float)
    return values if values.shape == (8, 8) else None


def _heatmap(ax, values, title: str, scale: tuple, integer: bool = False) -> None:
    ax.set_title(title)
    if values is None:
        ax.text(0.5, 0.5, "not recorded in the card", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    image = ax.imshow(values, cmap="viridis", vmin=scale[0], vmax=scale[1])
    cbar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("quantization step")
    lo, hi = image.get_clim()
    for (i, j), v in np.ndenumerate(values):
        text = f"{v:.0f}" if integer or v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"
        light = (v - lo) / (hi - lo + 1e-12) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="black" if light else "white")
    ax.set_xticks(range(8))
    ax.set_yticks(range(8))
    ax.set_xlabel("horizontal frequency v")
    ax.set_ylabel("vertical frequency u")
