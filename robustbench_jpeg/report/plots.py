"""Figures: robust accuracy vs eps (one panel per attack, the worst case, and the worst-case difference with its
interval), and a one-column version of the worst case for a paper.

Built with :class:`matplotlib.figure.Figure` (no pyplot): importing the report never switches the user's backend.
Colours are the Okabe-Ito colour-blind-safe set, one per arm.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..provenance import atomic_write_bytes
from ..runfolder import BASELINE, JPEG_FROZEN, JPEG_STANDARD, JPEGDL, arm_display, arm_order
from . import fmt
from .attack_tables import informative
from .cells import WORST, select_rows
from .compare import diff_name
from .tables import rank_of

COLORS = {BASELINE: "#0072B2", JPEGDL: "#D55E00", JPEG_FROZEN: "#009E73", JPEG_STANDARD: "#CC79A7"}
EXTRA_COLORS = ("#E69F00", "#56B4E9", "#000000", "#F0E442")  # the rest of Okabe-Ito, for arms the registry lacks
MARKERS = {BASELINE: "o", JPEGDL: "s", JPEG_FROZEN: "^", JPEG_STANDARD: "D"}
DASHES = {"": "-", "soft": "-", "bpda": (0, (5, 2)), "bpda-hard": (0, (2, 1.5)), "surrogate": (0, (6, 1.5, 1, 1.5))}
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "figure.dpi": 100,
    "svg.hashsalt": "robustbench-jpeg",  # fixed ids: a regenerated SVG is byte-identical
}
GRID_WIDTH, COLUMN_WIDTH = 7.0, 3.4  # inches: a two-column paper's text width and column width
TITLE_CHARS = {GRID_WIDTH: 34, COLUMN_WIDTH: 44}  # characters per title line that fit a panel at axes.titlesize


def arm_color(arm: str) -> str:
    if arm in COLORS:
        return COLORS[arm]
    return EXTRA_COLORS[arm_order(arm)[0] % len(EXTRA_COLORS)]


def _palette_png(data: bytes) -> bytes:
    """The PNG as 256 colours on white (no dithering): a third of the bytes of matplotlib's RGBA at the same 200 dpi,
    no visible change for line plots and 8 x 8 heatmaps, and deterministic (committed reports stay small)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        rgba = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    paletted = flat.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    paletted.save(out, format="png", optimize=True)
    return out.getvalue()


def save_figure(fig: Figure, *paths) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically, without timestamps in the file; PNGs with a
    256-colour palette (:func:`_palette_png`)."""
    for path in paths:
        ext = str(path).rsplit(".", 1)[-1]
        meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(ext)
        buf = io.BytesIO()
        with matplotlib.rc_context(STYLE):  # svg.hashsalt: fixed SVG ids wherever the figure was built
            fig.savefig(buf, format=ext, dpi=200, metadata=meta)
        atomic_write_bytes(path, _palette_png(buf.getvalue()) if ext == "png" else buf.getvalue())


def _style(grad_shown: str, transfer: bool) -> tuple:
    """The line style of a column and the mode the legend names: transfers dotted, each gradient mode its dashes."""
    if transfer:
        return ":", "transfer"
    return DASHES.get(grad_shown, (0, (3, 1))), grad_shown


def _band(ax, x, lo, hi, color) -> None:
    ok = ~(np.isnan(lo) | np.isnan(hi))
    if ok.any():
        ax.fill_between(x[ok], lo[ok], hi[ok], color=color, alpha=0.18, linewidth=0)


def _accuracy_lines(ax, data: pd.DataFrame, mark_unchecked: set[float] | None = None) -> None:
    rank = rank_of(data)
    for (arm, _label), line in sorted(
        data.groupby(["arm", "label"]), key=lambda kv: (arm_order(kv[0][0]), rank[kv[0][1]])
    ):
        line = line[[informative(nm, e) for nm, e in zip(line["norm"], line["eps_key"], strict=True)]]
        line = line.sort_values("eps_key")
        x, y = line["eps_key"].to_numpy(float), 100 * line["mean"].to_numpy(float)
        if int(line["seeds"].max()) > 1:
            sd = 100 * np.nan_to_num(line["std"].to_numpy(float))
            lo, hi = y - sd, y + sd
        else:
            lo, hi = 100 * line["wilson_low"].to_numpy(float), 100 * line["wilson_high"].to_numpy(float)
        color, marker = arm_color(arm), MARKERS.get(arm, "v")
        dash, _ = _style(str(line["grad_shown"].iloc[0]), bool(line["transfer"].iloc[0]))
        _band(ax, x, lo, hi, color)
        if mark_unchecked:
            open_pts = np.isin(x, sorted(mark_unchecked))
            ax.plot(
                x[open_pts],
                y[open_pts],
                linestyle="none",
                marker=marker,
                markersize=3.5,
                color=color,
                markerfacecolor="white",
                alpha=0.7,
            )
            x, y = x[~open_pts], y[~open_pts]
        ax.plot(x, y, color=color, linestyle=dash, marker=marker, markersize=3, linewidth=1.3)
        ax.plot(x[x == 0], y[x == 0], marker="*", markersize=7, color=color, linestyle="none")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)


def _difference_lines(ax, d: pd.DataFrame) -> list[tuple[str, str]]:
    shown = []
    for (arm, partner), line in sorted(
        d.groupby(["arm", "partner"]), key=lambda kv: (arm_order(kv[0][0]), arm_order(kv[0][1]))
    ):
        line = line[[informative(nm, e) for nm, e in zip(line["norm"], line["eps_key"], strict=True)]]
        line = line.sort_values("eps_key")
        x, y = line["eps_key"].to_numpy(float), 100 * line["mean"].to_numpy(float)
        if int(line["seeds"].max()) > 1:
            sd = 100 * np.nan_to_num(line["std"].to_numpy(float))
            lo, hi = y - sd, y + sd
        else:
            lo, hi = 100 * line["ci_low"].to_numpy(float), 100 * line["ci_high"].to_numpy(float)
        color = arm_color(arm if partner == BASELINE else partner)
        _band(ax, x, lo, hi, color)
        ax.plot(x, y, color=color, marker="o", markersize=3, linewidth=1.3, label=diff_name(arm, partner))
        shown.append((arm, partner))
    ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.grid(True, alpha=0.3)
    ax.set_ylabel(f"{diff_name(*shown[0])} (points)" if len(shown) == 1 else "difference (points)")
    return shown


def _worst_diffs(dif: pd.DataFrame, model: str, norm: str) -> pd.DataFrame:
    d = select_rows(dif, model=model, norm=norm, label=WORST, trained_alpha=True)
    return d[d["arm"] == JPEGDL] if not d.empty and (d["arm"] == JPEGDL).any() else d


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure with its own Agg canvas (text can be measured before saving; no pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_pairs(g: pd.DataFrame) -> list[str]:
    """The attack settings of one (model, norm) that get a panel, in the report's column order. A chain's
    intermediate steps (APGD-CE, then APGD-CE → APGD-T, ...) are cumulative parts of the whole chain: a setting
    whose cells are all followed by another cell of their chain (the typed ``followed`` column) gets no panel, only
    the whole chain does (the tables keep every step)."""
    attacks = g[g["kind"] != "worst"]
    followed = attacks["followed"].astype(bool).groupby(attacks["pair"]).all()
    pairs = [p for p in set(attacks["pair"]) if not followed.get(p, False)]
    return sorted(pairs, key=rank_of(g, "pair_base").get)


def attack_title(g: pd.DataFrame, pair: str) -> str:
    """A panel's name for an attack setting: a whole chain is named by the spec that defines it (``autoattack``)
    with its steps; any other setting by itself."""
    specs = set(g.loc[g["pair"] == pair, "chain_spec"].astype(str)) - {""}
    return f"{specs.pop()} chain ({pair})" if len(specs) == 1 else pair


def _title(model: str, text: str, norm: str, models: int, width: float = GRID_WIDTH) -> str:
    title = (f"{model}: " if models > 1 else "") + f"{text} ({fmt.norm_text(norm)})"
    return textwrap.fill(title, TITLE_CHARS[width], break_on_hyphens=False)


def _legend(fig: Figure, acc: pd.DataFrame, ncols: int, unchecked: bool = False) -> None:
    arms = sorted(set(acc["arm"]), key=arm_order)
    handles = [
        Line2D([], [], color=arm_color(a), marker=MARKERS.get(a, "v"), markersize=4, label=arm_display(a)) for a in arms
    ]
    styles = zip(acc["grad_shown"], acc["transfer"].astype(bool), strict=True)
    modes = sorted({_style(grad, transfer)[1] for grad, transfer in styles} - {"", "soft"})
    if modes:
        handles.append(Line2D([], [], color="grey", linestyle="-", label="white-box / soft"))
    for mode in modes:
        dash = ":" if mode == "transfer" else DASHES.get(mode, (0, (3, 1)))
        handles.append(Line2D([], [], color="grey", linestyle=dash, label=mode))
    handles.append(Line2D([], [], color="grey", marker="*", linestyle="none", markersize=7, label="clean (eps 0)"))
    if unchecked:
        handles.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="o",
                markerfacecolor="white",
                linestyle="none",
                markersize=4,
                label="no adaptive attack at this eps",
            )
        )
    for columns in range(min(len(handles), ncols), 0, -1):  # as many columns as fit the figure's width
        legend = fig.legend(handles=handles, loc="outside upper center", ncols=columns, frameon=False)
        if legend.get_window_extent(fig.canvas.get_renderer()).width <= 0.98 * fig.bbox.width or columns == 1:
            return
        legend.remove()


def band_caption(acc: pd.DataFrame) -> str:
    seeds = int(acc["seeds"].max()) if not acc.empty else 1
    if seeds > 1:
        return f"Bands: mean \u00b1 1 std over {seeds} training seeds (accuracies and differences)."
    return (
        "Bands: 95% Wilson interval of each accuracy (one training seed: test-image sampling only); on the "
        "difference panels, the 95% paired interval (Newcombe hybrid score)."
    )


def plot_accuracy_vs_eps(acc: pd.DataFrame, dif: pd.DataFrame, unchecked: Mapping, png, svg) -> None:
    """Save :func:`accuracy_vs_eps_figure` as ``png`` and ``svg``."""
    save_figure(accuracy_vs_eps_figure(acc, dif, unchecked), png, svg)


def accuracy_vs_eps_figure(acc: pd.DataFrame, dif: pd.DataFrame, unchecked: Mapping) -> Figure:
    """One panel per attack setting (a chain drawn whole, see :func:`figure_pairs`), the worst case over every
    attack, and the worst-case difference, per model and threat model; 3 columns, 7 in wide. Radii beyond the
    informative range are left out (see the tables). ``unchecked``: per (model, norm), the radii drawn as open
    markers on the worst case (no adaptive attack there)."""
    main = acc[acc["eval_alpha"].isna()]
    groups = list(main[["model", "norm"]].drop_duplicates().itertuples(index=False, name=None))
    models = main["model"].nunique()
    panels = []
    for model, norm in groups:
        g = main[(main["model"] == model) & (main["norm"] == norm)]
        pairs = figure_pairs(g)
        panels += [("attack", model, norm, p) for p in pairs]
        if (g["label"] == WORST).any():
            panels.append(("worst", model, norm, WORST))
        if not _worst_diffs(dif, model, norm).empty:
            panels.append(("diff", model, norm, WORST))
    ncols = min(3, max(len(panels), 1))
    nrows = max(math.ceil(len(panels) / ncols), 1)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(GRID_WIDTH, 2.1 * nrows + 0.5)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, (kind, model, norm, pair) in zip(axes, panels, strict=False):
            g = main[(main["model"] == model) & (main["norm"] == norm)]
            if kind == "diff":
                pairs = _difference_lines(ax, _worst_diffs(dif, model, norm))
                ax.set_title(_title(model, "worst-case difference", norm, models))
                if len(pairs) > 1:
                    ax.legend(loc="best", frameon=True, framealpha=0.85, fontsize=6)
            else:
                data = g[g["pair"] == pair] if kind == "attack" else g[g["label"] == WORST]
                _accuracy_lines(ax, data, unchecked.get((model, norm)) if kind == "worst" else None)
                ax.set_title(
                    _title(model, "worst case, all attacks" if kind == "worst" else attack_title(g, pair), norm, models)
                )
                ax.set_ylabel("accuracy (%)")
            ax.set_xlabel(fmt.eps_header(norm).replace("eps", "\u03b5"))
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        _legend(
            fig,
            main,
            4,
            any(unchecked.get(group) for group in groups),
        )
    return fig


def plot_worst_case_column(acc: pd.DataFrame, dif: pd.DataFrame, unchecked: Mapping, stem) -> list[str]:
    """Save :func:`worst_case_column_figure` as ``stem``.pdf/.png/.svg; returns the paths."""
    paths = [f"{stem}.{ext}" for ext in ("pdf", "png", "svg")]
    save_figure(worst_case_column_figure(acc, dif, unchecked), *paths)
    return paths


def worst_case_column_figure(acc: pd.DataFrame, dif: pd.DataFrame, unchecked: Mapping) -> Figure:
    """The worst case and its difference, stacked, 3.4 in wide (one paper column)."""
    main = acc[acc["eval_alpha"].isna() & (acc["label"] == WORST)]
    groups = list(main[["model", "norm"]].drop_duplicates().itertuples(index=False, name=None))
    rows = [
        (m, nm, k) for m, nm in groups for k in ("worst", "diff") if k == "worst" or not _worst_diffs(dif, m, nm).empty
    ]
    models = main["model"].nunique()
    with matplotlib.rc_context(STYLE):
        fig = new_figure(COLUMN_WIDTH, 1.9 * max(len(rows), 1) + 0.45)
        axes = np.atleast_1d(fig.subplots(max(len(rows), 1), 1, squeeze=False)).ravel()
        for ax, (model, norm, kind) in zip(axes, rows, strict=False):
            if kind == "worst":
                _accuracy_lines(
                    ax, main[(main["model"] == model) & (main["norm"] == norm)], unchecked.get((model, norm))
                )
                ax.set_title(_title(model, "worst case, all attacks", norm, models, COLUMN_WIDTH))
                ax.set_ylabel("accuracy (%)")
            else:
                pairs = _difference_lines(ax, _worst_diffs(dif, model, norm))
                ax.set_title(_title(model, "worst-case difference", norm, models, COLUMN_WIDTH))
                if len(pairs) > 1:
                    ax.legend(loc="best", frameon=True, framealpha=0.85, fontsize=6)
            ax.set_xlabel(fmt.eps_header(norm).replace("eps", "\u03b5"))
        _legend(fig, main, 3, any(unchecked.get(group) for group in groups))
    return fig
