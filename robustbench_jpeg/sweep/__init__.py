"""How a sweep runs: the plan of a spec's cells on a run's arms, the models and data, the evaluation protocol (attack
only the images still standing), the per-arm gradient diagnostics, and the resumable, distributed sweep."""

from .plan import ArmInfo, clean_cell, plan_cells, plan_spec
from .protocol import SanityCheckWarning, SpecChangedError, evaluate_cell, quick_sweep, run_sweep

__all__ = [
    "ArmInfo",
    "clean_cell",
    "plan_cells",
    "plan_spec",
    "evaluate_cell",
    "run_sweep",
    "quick_sweep",
    "SpecChangedError",
    "SanityCheckWarning",
]
