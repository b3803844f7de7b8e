"""Exports of a run folder for use outside this toolkit (``jpeg-robust export --run RUN --format FORMAT --out DIR``).

* ``robustbench``: per arm and threat model, an entry with the fields of RobustBench's leaderboard JSON files, filled
  from the model card and the worst case over every attack run (:mod:`.robustbench`);
* ``tables``: the learned quantization tables as JSON, as ``cjpeg -qtables`` text, and one real ``.jpg`` encoded with
  them (:mod:`.qtables`);
* ``weights``: ``model.safetensors`` and a Hugging Face-style model card per arm (:mod:`.weights`).

docs/report.md ("Exports") describes every file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..outputs import OutputFolderError, claim_output, finish_output, release_output
from .common import ExportError, arm_cards

FORMATS = ("robustbench", "tables", "weights")

__all__ = ["FORMATS", "ExportError", "export_run"]


def export_run(
    run_dir: str | os.PathLike,
    fmt: str,
    out_dir: str | os.PathLike,
    arms: tuple[str, ...] | None = None,
    force: bool = False,
) -> tuple[list[Path], list[str]]:
    """Write export ``fmt`` of the run folder ``run_dir`` into ``out_dir``; returns (files written, warnings).

    ``out_dir`` must be new, empty or hold only earlier exports (``jpeg-robust-output.json`` records them); ``force``
    writes into a folder with other files (never into a run folder). See :mod:`robustbench_jpeg.outputs`.

    Raises:
        ExportError: unknown format, missing files or cards, a name that is not a safe file name, an output folder
            that is a run folder or holds files the export did not write.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "robustbench":
        from .robustbench import export_robustbench as write
    elif fmt == "tables":
        from .qtables import export_tables as write
    else:
        from .weights import export_weights as write
    arm_cards(Path(run_dir), arms)  # every card there (or named), before anything is written
    try:
        claim = claim_output(Path(out_dir), "export", force)
    except OutputFolderError as exc:
        raise ExportError(str(exc)) from None
    try:
        written = write(Path(run_dir), Path(out_dir), arms)
    except ExportError:
        release_output(claim)
        raise
    finish_output(claim)
    return written
