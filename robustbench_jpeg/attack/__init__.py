"""What an attack is: typed specs, the attack methods (AutoAttack's reference code and the toolkit's own FGSM/PGD;
torchattacks optional), crafting and scoring, gradients through a JPEG front end, random starts. How a sweep runs
lives in :mod:`robustbench_jpeg.sweep`, the judgement (worst case, checks, verdict) in
:mod:`robustbench_jpeg.evaluation`, the run folder in :mod:`robustbench_jpeg.runfolder`. The engines are imported
only when an attack is built."""

from .crafting import attack_setting, craft, run_attack
from .gradients import GRAD_MODES, jpeg_mode
from .methods import METHODS, get_method
from .spec import AttackSpec, AttackSpecError, SpecFile
from .spec_files import attacks_dir, list_specs, load_spec

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
]
