"""The reporter: run folders (docs/run-format.md) in; tables, figures, statistics and report.md/report.html out.

See docs/report.md for every output file and the formulas.
"""

from ..stats import PairedDifference, mcnemar_exact_p, mean_std, paired_difference, paired_from_samples
from .build import build_report
from .load import ReportFileNotFoundError, ReportInputError, expand_inputs, load_runs

__all__ = [
    "build_report",
    "load_runs",
    "expand_inputs",
    "ReportInputError",
    "ReportFileNotFoundError",
    "PairedDifference",
    "paired_difference",
    "paired_from_samples",
    "mcnemar_exact_p",
    "mean_std",
]
