"""The judgement: the worst case over attacks, per-image comparisons of attack cells, the sanity checks and the
verdict (is an arm's white-box number masked?). A pure function of a run's results rows and per-image vectors, used
by the sweep, the report and export alike; it imports nothing from attack crafting, the sweep, training or the
report."""

from .check_record import MEANINGS, Check, CheckStatus
from .checks import ADAPTIVE_GRADS, LARGE_EPS, run_checks
from .comparison import ALPHA, Comparison, Outcome, compare, judge, tolerance
from .verdict import Masking, MaskingStatus, assess_masking, checks_payload, verdict, verdict_status
from .worst_case import WorstCase, worst_cases

__all__ = [
    "ADAPTIVE_GRADS",
    "ALPHA",
    "LARGE_EPS",
    "MEANINGS",
    "Check",
    "CheckStatus",
    "Comparison",
    "Masking",
    "MaskingStatus",
    "Outcome",
    "WorstCase",
    "assess_masking",
    "checks_payload",
    "compare",
    "judge",
    "run_checks",
    "tolerance",
    "verdict",
    "verdict_status",
    "worst_cases",
]
