"""The attack harness: typed specs, torchattacks builders, the resumable sweep and its sanity checks."""

from .builders import build_attack, craft, jpeg_mode
from .checks import Check, run_checks, verdict, zero_gradient_fraction
from .spec import AttackSpec, AttackSpecError, SpecFile, attacks_dir, list_specs, load_spec
from .sweep import (
    Cell,
    SanityCheckWarning,
    SpecChangedError,
    SweepLockedError,
    plan_cells,
    quick_sweep,
    read_results,
    run_sweep,
)

__all__ = [
    "AttackSpec",
    "AttackSpecError",
    "SpecFile",
    "attacks_dir",
    "list_specs",
    "load_spec",
    "build_attack",
    "craft",
    "jpeg_mode",
    "Check",
    "run_checks",
    "verdict",
    "zero_gradient_fraction",
    "Cell",
    "SpecChangedError",
    "SanityCheckWarning",
    "SweepLockedError",
    "plan_cells",
    "run_sweep",
    "quick_sweep",
    "read_results",
]
