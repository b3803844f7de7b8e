"""The attack harness: typed specs, the attack methods (AutoAttack's reference code and the toolkit's own FGSM/PGD;
torchattacks optional), the resumable sweep, the worst case over attacks and the sanity checks. The engines are
imported only when an attack is built."""

from .checks import Check, run_checks
from .crafting import craft, run_attack
from .gradients import GRAD_MODES, jpeg_mode
from .methods import METHODS, get_method
from .plan import ArmInfo, Cell, plan_cells, plan_spec
from .spec import AttackSpec, AttackSpecError, SpecFile
from .spec_files import attacks_dir, list_specs, load_spec
from .store import SweepLockedError, read_results
from .sweep import SanityCheckWarning, SpecChangedError, quick_sweep, run_sweep
from .verdict import assess_masking, verdict, verdict_status
from .worst_case import WorstCase, worst_cases

__all__ = [
    "AttackSpec",
    "AttackSpecError",
    "SpecFile",
    "attacks_dir",
    "list_specs",
    "load_spec",
    "METHODS",
    "get_method",
    "GRAD_MODES",
    "craft",
    "run_attack",
    "jpeg_mode",
    "Check",
    "run_checks",
    "verdict",
    "verdict_status",
    "assess_masking",
    "ArmInfo",
    "Cell",
    "plan_cells",
    "plan_spec",
    "SpecChangedError",
    "SanityCheckWarning",
    "SweepLockedError",
    "run_sweep",
    "quick_sweep",
    "read_results",
    "WorstCase",
    "worst_cases",
]
