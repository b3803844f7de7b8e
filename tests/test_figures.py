"""Every report figure, rendered from each committed report's data/ folder: no text leaves the canvas and no two
texts overlap (titles, axis labels, tick labels, legends), and a chained attack is drawn as one panel."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text

from robustbench_jpeg.report import plot_qtables as qtables_module
from robustbench_jpeg.report import plots
from robustbench_jpeg.report import quantizer as quantizer_module
from robustbench_jpeg.report.build import qtable_blocks
from robustbench_jpeg.report.cells import adaptive_radii, build_cells, unchecked_radii
from robustbench_jpeg.report.compare import arm_pairs, paired_differences, quantizer_arms
from robustbench_jpeg.report.load import load_runs
from robustbench_jpeg.report.tables import aggregate

REPORTS = Path(__file__).resolve().parents[1] / "reports"
DATA = sorted(p.parent.parent.name for p in REPORTS.glob("*/data/manifest.json"))


def text_problems(fig: Figure) -> list[str]:
    """Texts (and legends) outside the canvas, and pairs of texts whose boxes overlap, among what a draw draws."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    drawn: list[Text] = []
    original = Text.draw

    def recording(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Text, "draw", recording)
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    boxes = [(t, t.get_window_extent(renderer)) for t in dict.fromkeys(drawn)]
    legends = [leg for leg in fig.findobj(Legend) if leg.get_visible() and (leg.axes is None or leg.axes.get_visible())]
    problems = []
    for artist, box in boxes + [(leg, leg.get_window_extent(renderer)) for leg in legends]:
        if box.x0 < canvas.x0 - 1 or box.y0 < canvas.y0 - 1 or box.x1 > canvas.x1 + 1 or box.y1 > canvas.y1 + 1:
            problems.append(f"leaves the canvas: {_name(artist)}")
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if overlap_x > 1 and overlap_y > 1:
            problems.append(f"overlap: {_name(a)} / {_name(b)}")
    return problems


def _name(artist) -> str:
    return repr(artist.get_text()) if isinstance(artist, Text) else type(artist).__name__


@pytest.fixture(scope="module", params=DATA)
def figures(request, tmp_path_factory) -> dict[str, Figure]:
    """Every figure a report of ``reports/<name>/data`` draws, captured instead of saved."""
    captured: dict[str, Figure] = {}

    def capture(fig, *paths):
        captured[Path(str(paths[0])).stem] = fig

    with pytest.MonkeyPatch.context() as patch:
        for module in (plots, qtables_module, quantizer_module):
            patch.setattr(module, "save_figure", capture)
        runs = load_runs([REPORTS / request.param / "data"])
        quantizers = quantizer_arms(runs)
        cells, vectors = build_cells(runs)
        diffs = paired_differences(cells, vectors, arm_pairs(set(cells["arm"]), quantizers), quantizers)
        acc, dif = aggregate(cells, diffs)
        groups = list(acc[["model", "norm"]].drop_duplicates().itertuples(index=False, name=None))
        unchecked = {
            g: unchecked_radii(cells, *g, quantizers) if adaptive_radii(cells, *g, quantizers) else set()
            for g in groups
        }
        out = tmp_path_factory.mktemp("figures")
        plots.plot_accuracy_vs_eps(acc, dif, unchecked, out / "accuracy_vs_eps.png", out / "accuracy_vs_eps.svg")
        plots.plot_worst_case_column(acc, dif, unchecked, out / "worst_case_column")
        qtables_module.plot_qtables(qtable_blocks(runs), out / "qtables.png")
        quantizer_module.plot_quantizer(runs, out / "quantizer.png")
    return captured


def test_no_text_leaves_the_canvas_or_overlaps_another(figures):
    assert {"accuracy_vs_eps", "worst_case_column"} <= set(figures)
    problems = {name: text_problems(fig) for name, fig in figures.items()}
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items())


def test_the_checker_sees_a_clipped_legend_and_overlapping_titles():
    fig = Figure(figsize=(2, 2))
    left, right = fig.subplots(1, 2)
    left.set_title("a long title that runs into its neighbour")
    right.set_title("another long title")
    fig.legend(handles=[Line2D([], [], label="a legend entry far wider than this small figure")], loc="upper center")
    problems = text_problems(fig)
    assert any(p.startswith("overlap:") for p in problems)
    assert any(p.startswith("leaves the canvas:") for p in problems)


def test_a_chain_is_one_panel_named_by_its_spec():
    """From typed columns: a setting whose cells another cell of its chain follows is a cumulative step (no panel);
    the whole chain is named by its spec; unchained settings keep their own name."""
    chain = ["APGD-CE-100", "APGD-CE-100 → APGD-T-100", "APGD-CE-100 → APGD-T-100 → FAB-T-100"]
    whole = "APGD-CE-100 → APGD-T-100 → FAB-T-100 → Square-5000"
    pairs = ["FGSM", "PGD-20", *chain, whole]
    g = pd.DataFrame(
        {
            "kind": "attack",
            "pair": pairs,
            "pair_base": pairs,
            "pair_rank": range(len(pairs)),
            "followed": [False, False, True, True, True, False],
            "chain_spec": ["", "", "autoattack", "autoattack", "autoattack", "autoattack"],
        }
    )
    assert plots.figure_pairs(g) == ["FGSM", "PGD-20", whole]
    assert plots.attack_title(g, whole) == f"autoattack chain ({whole})"
    assert plots.attack_title(g, "PGD-20") == "PGD-20"


def test_png_figures_are_saved_as_a_deterministic_palette_on_white(tmp_path):
    from PIL import Image

    from robustbench_jpeg.report.plots import save_figure

    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.imshow(np.arange(64.0).reshape(8, 8), cmap="magma")  # a heatmap like the quantizer figures
    fig.patch.set_alpha(0.0)  # even a transparent figure lands on white, not black
    save_figure(fig, tmp_path / "a.png", tmp_path / "b.png")
    first, second = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    assert first == second
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "P" and image.size == (600, 400)  # 200 dpi
        assert image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)
