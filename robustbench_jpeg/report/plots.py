"""Figures: robust accuracy vs eps (one panel per attack) and the learned quantization tables (8x8 heat maps)."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..provenance import atomic_write_bytes  # noqa: E402
from .cells import WORST, arm_name  # noqa: E402
from .tables import eps_header, label_order  # noqa: E402

COLORS = {"baseline": "#0072B2", "jpegdl": "#D55E00"}  # Okabe-Ito blue / vermillion: colour-blind safe
MARKERS = {"baseline": "o", "jpegdl": "s"}
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 7.5, "figure.dpi": 100}


def save_figure(fig, *paths) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically, then close it."""
    for path in paths:
        buf = io.BytesIO()
        fig.savefig(buf, format=str(path).rsplit(".", 1)[-1], dpi=200,
                    metadata={"Date": None} if str(path).endswith(".svg") else None)
        atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)


def _panels(acc: pd.DataFrame) -> list[tuple]:
    keys = acc[["model", "norm", "pair", "transfer"]].drop_duplicates()
    return sorted(map(tuple, keys.itertuples(index=False)),
                  key=lambda k: (k[0], k[1], k[2] == WORST, bool(k[3]), label_order(k[2])))


def plot_accuracy_vs_eps(acc: pd.DataFrame, png, svg, title: str) -> None:
    """One panel per attack setting (both arms; soft vs BPDA as line styles), plus the worst case."""
    panels = _panels(acc)
    models = acc["model"].nunique()
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.5 * nrows), squeeze=False, sharey=True)
        for ax, (model, norm, pair, transfer) in zip(axes.flat, panels, strict=False):
            data = acc[(acc["model"] == model) & (acc["norm"] == norm) & (acc["pair"] == pair)
                       & (acc["transfer"] == transfer)]
            _draw_panel(ax, data, acc[(acc["model"] == model) & (acc["norm"] == norm)], pair)
            name = "Worst case over all attacks" if pair == WORST else pair + (" — transfer" if transfer else "")
            ax.set_title(f"{model}: {name}" if models > 1 else name)
            ax.set_xlabel(eps_header(norm).replace("eps", "ε"))
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("Accuracy (%)")
        seeds = int(acc["seeds"].max())
        n = sorted(set(acc["n_min"]) | set(acc["n_max"]))
        sub = (f"first {n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'} test images; star = clean accuracy (eps 0), "
               "dotted = clean level; dashed/open = BPDA"
               + (f"; mean over {seeds} seeds, band = ±1 std" if seeds > 1 else "; one seed"))
        fig.suptitle(f"{title}\n{sub}", fontsize=11)
        fig.tight_layout()
        save_figure(fig, png, svg)


def _draw_panel(ax, data: pd.DataFrame, group: pd.DataFrame, pair: str) -> None:
    clean = group[group["eps_key"] == 0].groupby("arm")["mean"].max()
    for arm, value in clean.items():
        ax.axhline(100 * value, color=COLORS.get(arm, "grey"), linestyle=":", linewidth=1.0, alpha=0.8)
    ax.plot([], [], color="grey", linestyle=":", linewidth=1.0, label="clean accuracy (ε = 0)")
    for (arm, label), line in sorted(data.groupby(["arm", "label"]), key=lambda kv: (kv[0][0], label_order(kv[0][1]))):
        line = line.sort_values("eps_key")
        extra = label[len(pair):].strip() if label.startswith(pair) else label
        color = COLORS.get(arm, "grey")
        bpda = "(bpda)" in label
        x, y = line["eps_key"].to_numpy(), 100 * line["mean"].to_numpy()
        if pair == WORST and (unchecked := _soft_only_eps(group)):
            # eps where no BPDA/transfer attack ran: the worst case there is not adaptive; show it, unjoined
            soft_only = np.isin(x, sorted(unchecked))
            ax.plot(x[soft_only], y[soft_only], color=color, marker=MARKERS.get(arm, "^"), markersize=4.5,
                    markerfacecolor="white", linestyle="none", alpha=0.6)
            line = line[~soft_only]
            x, y = x[~soft_only], y[~soft_only]
        ax.plot(x, y, color=color, linestyle=(0, (5, 2)) if bpda else "-", marker=MARKERS.get(arm, "^"),
                markersize=4.5, markerfacecolor="white" if bpda else color, linewidth=1.6,
                label=f"{arm_name(arm)} {extra}".strip())
        if int(line["seeds"].max()) > 1:
            sd = 100 * np.nan_to_num(line["std"].to_numpy())
            ax.fill_between(x, y - sd, y + sd, color=color, alpha=0.18, linewidth=0)
        at0 = x == 0
        ax.plot(x[at0], y[at0], marker="*", markersize=10, color=color, linestyle="none")
    if pair == WORST and _soft_only_eps(group):
        ax.plot([], [], color="grey", marker="o", markerfacecolor="white", linestyle="none", alpha=0.6,
                label="eps with soft-gradient attacks only (not adaptive)")
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", frameon=True, framealpha=0.9)


def _soft_only_eps(group: pd.DataFrame) -> set[float]:
    """Attacked eps at which no BPDA or transfer attack was run against JPEG-DL (empty if none was run at all)."""
    jpeg = group[(group["arm"] == "jpegdl") & (group["pair"] != WORST) & (group["eps_key"] > 0)]
    adaptive = jpeg["label"].str.contains("(bpda)", regex=False) | jpeg["transfer"].astype(bool)
    if not adaptive.any():
        return set()
    return set(jpeg["eps_key"]) - set(jpeg.loc[adaptive, "eps_key"])


def plot_qtables(tables: list[dict], png) -> None:
    """Learned luma/chroma step tables beside their initial values and the standard JPEG quality-50 tables.

    ``tables`` items: ``{"title": str, "learned": {"luma", "chroma"} | None, "init": ... | None}``.
    """
    from ..jpeg.tables import standard_tables

    std_luma, std_chroma = (t.numpy() for t in standard_tables(50))
    standard = {"luma": std_luma, "chroma": std_chroma}
    blocks = tables or [{"title": "no JPEG-DL card with learned tables", "learned": None, "init": None}]
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(14, 7.6 * len(blocks)))
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
                _heatmap(row[2], standard[channel].astype(float),
                         f"{channel.capitalize()}: standard JPEG quality 50 (T.81 Annex K)", (None, None), integer=True)
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
