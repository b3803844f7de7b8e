"""What an attack is: typed specs, the attack methods (torchattacks as the engine), crafting and scoring, gradients
through a JPEG front end, random starts; the worst case over attacks and the sanity checks. How a sweep runs lives in
:mod:`robustbench_jpeg.sweep`. torchattacks is imported only when an attack is built."""

from .checks import Check, run_checks
from .crafting import attack_setting, craft, run_attack
from .gradients import GRAD_MODES, jpeg_mode
from .methods import METHODS, get_method
from .spec import AttackSpec, AttackSpecError, SpecFile
from .spec_files import attacks_dir, list_specs, load_spec
from .store import SweepLockedError, read_results
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
    "attack_setting",
    "jpeg_mode",
    "Check",
    "run_checks",
    "verdict",
    "verdict_status",
    "assess_masking",
    "SweepLockedError",
    "read_results",
    "WorstCase",
    "worst_cases",
]
