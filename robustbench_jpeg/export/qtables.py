"""The learned quantization tables of each JPEG arm, for use in ordinary JPEG encoders.

Per arm, in ``OUT/<arm>/``:

* ``qtables.json``: the learned float steps and the integer steps a baseline JPEG encoder accepts (1..255), both
  8x8 in natural order (row = vertical frequency u, column = horizontal frequency v), and the warnings below;
* ``qtables.txt``: the integer tables in the text format of libjpeg's ``cjpeg -qtables`` (64 whitespace-separated
  decimal values per table in natural order, not zigzag; ``#`` starts a comment; table 0 luma, table 1 chroma);
* ``example.jpg``: the first cifar100-mini test image encoded by Pillow with exactly these tables (4:4:4, no chroma
  subsampling, as the layer), so any JPEG reader can check them.

Warnings: steps below 1 are clipped to 1 (a JPEG step is an integer of at least 1), steps above 255 to 255
(baseline JPEG), float steps are rounded, and a non-zero ``chroma_offset`` of the layer (its +0.5 shift of the
chroma channels) has no counterpart in standard JPEG.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..jpeg.tables import ZIGZAG
from ..provenance import atomic_write_bytes, atomic_write_text
from ..runfolder import ARMS
from .common import ExportError, arm_cards

ORDER = "natural (row-major): row = vertical frequency u, column = horizontal frequency v"
README = """# Learned quantization tables (robustbench-jpeg export)

Per JPEG arm: `qtables.json` (float and integer steps, natural order), `qtables.txt` (for libjpeg's cjpeg) and
`example.jpg` (a test image encoded with these tables by Pillow). Use the tables with:

    cjpeg -qtables qtables.txt -qslots 0,1,1 -sample 1x1,1x1,1x1 -baseline input.ppm > output.jpg

(no `-quality`: cjpeg would rescale the tables), or in Python:
`Image.save(path, "JPEG", qtables=[luma64, chroma64], subsampling=0)` with the 64 values in natural order.

A standard JPEG encoder rounds coefficients; the JPEG-DL layer quantizes softly (alpha) and, by default, shifts the
chroma channels by +0.5. The exported file therefore approximates, not reproduces, what the model saw; the warnings in
each `qtables.json` say where.
"""


def learned_tables(arm_dir: Path, card: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """(luma, chroma) float 8x8 steps from the checkpoint (the weights), else from the card; and the source."""
    from ..checkpoint import CheckpointError, checkpoint_path, load_model

    if checkpoint_path(arm_dir).is_file():
        try:
            model = load_model(arm_dir)
        except CheckpointError as exc:
            raise ExportError(str(exc)) from None
        layer = model.jpeg
        return (
            layer.q_luma.detach().double().numpy(),
            layer.q_chroma.detach().double().numpy(),
            f"checkpoint {checkpoint_path(arm_dir).name}",
        )
    tables = card.get("qtables") or {}
    if tables.get("luma") is None or tables.get("chroma") is None:
        raise ExportError(f"{arm_dir}: no checkpoint and no qtables in card.json; nothing to export")
    return np.asarray(tables["luma"], float), np.asarray(tables["chroma"], float), "card.json qtables"


def integer_table(steps: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """Steps rounded and clipped to 1..255, with a warning for each kind of change."""
    if steps.shape != (8, 8) or not np.isfinite(steps).all():
        raise ExportError(f"the {name} table is not a finite 8x8 table (shape {steps.shape})")
    ints = np.clip(np.rint(steps), 1, 255).astype(np.int64)
    notes = []
    low = steps < 1
    if low.any():
        notes.append(
            f"{name}: {int(low.sum())} learned step(s) below 1 (smallest {steps.min():.4g}) clipped to 1; "
            "JPEG cannot quantize more finely than step 1"
        )
    high = steps > 255
    if high.any():
        notes.append(f"{name}: {int(high.sum())} step(s) above 255 clipped to 255 (baseline JPEG)")
    err = np.abs(np.clip(steps, 1, 255) - ints).max()
    if err > 1e-6:
        notes.append(f"{name}: steps rounded to integers (largest change {err:.3g})")
    return ints, notes


def cjpeg_text(luma: np.ndarray, chroma: np.ndarray, header: list[str]) -> str:
    lines = [f"# {h}" for h in header]
    for name, table in (("table 0: luma", luma), ("table 1: chroma (both Cb and Cr)", chroma)):
        lines.append(f"# {name}, natural order")
        lines += [" ".join(f"{int(v):3d}" for v in row) for row in table]
    return "\n".join(lines) + "\n"


def example_jpeg(luma: np.ndarray, chroma: np.ndarray) -> bytes:
    from PIL import Image

    from ..data import load_split

    images, _ = load_split("cifar100-mini", train=False)
    pixels = images[0].permute(1, 2, 0).numpy().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(
        buf, "JPEG", qtables=[luma.ravel().tolist(), chroma.ravel().tolist()], subsampling=0
    )
    return buf.getvalue()


def export_tables(run_dir: Path, out: Path, arms: tuple[str, ...] | None) -> tuple[list[Path], list[str]]:
    cards = {a: c for a, c in arm_cards(run_dir, arms).items() if c.get("jpeg")}
    if not cards:
        raise ExportError(f"{run_dir}: no arm with a JPEG layer (card field 'jpeg'); the baseline has no tables")
    written, warnings = [], []
    for arm, card in cards.items():
        luma_f, chroma_f, source = learned_tables(run_dir / arm, card)
        luma, notes = integer_table(luma_f, "luma")
        chroma, more = integer_table(chroma_f, "chroma")
        notes += more
        offset = float((card.get("jpeg") or {}).get("chroma_offset", 0.5))
        if offset != 0:
            notes.append(
                f"chroma_offset {offset:g}: the layer shifts the chroma channels by {offset:g} (on the "
                "+/-128 scale) before the DCT; standard JPEG has no such shift, so it is not in the file"
            )
        info = ARMS.get(arm)
        if info is not None and not info.learns_tables:
            notes.append(f"arm {arm} does not learn its tables: these are its fixed tables")
        folder = out / arm
        payload = {
            "arm": arm,
            "model": card.get("model"),
            "source": source,
            "order": ORDER,
            "luma": luma_f.tolist(),
            "chroma": chroma_f.tolist(),
            "luma_int": luma.tolist(),
            "chroma_int": chroma.tolist(),
            "zigzag": ZIGZAG,
            "chroma_offset": offset,
            "warnings": notes,
        }
        atomic_write_text(folder / "qtables.json", json.dumps(payload, indent=2) + "\n")
        atomic_write_text(
            folder / "qtables.txt",
            cjpeg_text(
                luma,
                chroma,
                [
                    f"quantization tables of arm {arm} ({card.get('model')}), from {source}",
                    "for: cjpeg -qtables qtables.txt -qslots 0,1,1 -sample 1x1,1x1,1x1 -baseline",
                    *notes,
                ],
            ),
        )
        atomic_write_bytes(folder / "example.jpg", example_jpeg(luma, chroma))
        written += [folder / "qtables.json", folder / "qtables.txt", folder / "example.jpg"]
        warnings += [f"arm {arm}: {n}" for n in notes]
    atomic_write_text(out / "README.md", README)
    return [*written, out / "README.md"], warnings
