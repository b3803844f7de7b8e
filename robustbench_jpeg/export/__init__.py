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

from .common import ExportError

FORMATS = ("robustbench", "tables", "weights")

__all__ = ["FORMATS", "ExportError", "export_run"]


def export_run(
    run_dir: str | os.PathLike, fmt: str, out_dir: str | os.PathLike, arms: tuple[str, ...] | None = None
) -> tuple[list[Path], list[str]]:
    """Write export ``fmt`` of the run folder ``run_dir`` into ``out_dir``; returns (files written, warnings).

    Raises:
        ExportError: unknown format, missing files, a name that is not a safe file name, an output folder that is a
            run folder.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if (out / "results.csv").exists():
        raise ExportError(
            f"{out} holds a results.csv: refusing to write an export into a run folder; choose another --out"
        )
    if fmt == "robustbench":
        from .robustbench import export_robustbench

        return export_robustbench(Path(run_dir), out, arms)
    if fmt == "tables":
        from .qtables import export_tables

        return export_tables(Path(run_dir), out, arms)
    from .weights import export_weights

    return export_weights(Path(run_dir), out, arms)
