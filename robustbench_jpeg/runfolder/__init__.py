"""The run folder and its one owner (docs/run-format.md).

* :mod:`.cell`: the typed cell record (:class:`Setting`, :class:`Cell`), from which the results columns, the cell id,
  the eps key and the labels derive.
* :mod:`.names`: the vocabulary (file names, the arm registry ``ARMS``, the results columns, :class:`ModelCard`,
  safe names), standard library only, so every layer can use it; re-exported here.
* :mod:`.files`: safe access (regular files inside the folder only: no links, no FIFOs).
* :mod:`.records`: ``results.csv`` and ``samples.bin`` as bytes in, tables out; :func:`read_samples` is the public
  per-image reader.
* :mod:`.folder`: :class:`RunFolder`, the reader (what a folder is, arms, cards, results checked against the cards).
* :mod:`.store`: :class:`RunStore`, the attack's writer (appends, repairs, stale rows, sweep state, the lock).

The record, folder and store modules import numpy and pandas; they load on first use (``runfolder.RunFolder``), so
importing the names stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .names import *  # noqa: F403
from .names import __all__ as _names

_LAZY = {
    "RESULT_COLUMNS": "cell",
    "TEXT_COLUMNS": "cell",
    "Setting": "cell",
    "Cell": "cell",
    "MethodKind": "cell",
    "read_samples": "records",
    "read_results": "records",
    "pack_record": "records",
    "RunFolder": "folder",
    "FolderKind": "folder",
    "folder_kind": "folder",
    "StoreWarning": "folder",
    "UnsafeFileError": "files",
    "RunStore": "store",
    "SweepLockedError": "store",
}

__all__ = [*_names, *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
