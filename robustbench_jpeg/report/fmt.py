"""How numbers are written in the report's tables: percentages with 2 decimals, a real minus sign (U+2212), no sign
on zero, p-values with 2 significant digits, and a dash where there is nothing to show (n = 0 or no cell).

The same text goes into Markdown and HTML; :func:`robustbench_jpeg.report.latex.tex_cell` turns it into LaTeX.
"""

from __future__ import annotations

import math

from ..stats import TINY_P, format_p

MINUS = "\u2212"
DASH = "\u2013"
PM = " \u00b1 "
DAGGER = "\u2020"
LINF = "L\u221e"


def missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x) -> str:
    """An accuracy in percent: ``41.70``; a dash when missing."""
    return DASH if missing(x) else f"{100 * x:.2f}"


def signed(x) -> str:
    """A difference in points: ``+13.40``, ``\u22122.10``, ``0.00`` (no sign on a rounded zero)."""
    if missing(x):
        return DASH
    text = f"{100 * x:.2f}"
    if text.lstrip("-") == "0.00":
        return "0.00"
    return MINUS + text[1:] if text.startswith("-") else "+" + text


def interval(lo, hi) -> str:
    return DASH if missing(lo) or missing(hi) else f"[{signed(lo)}, {signed(hi)}]"


p_general = format_p  # the report's name for stats.format_p


def pvalue(p) -> str:
    """``0.62``, ``0.030``, ``0.0012``, ``3.3e-27``, ``<1e-300`` (underflow); a dash when missing."""
    if missing(p):
        return DASH
    if p < TINY_P:
        return p_general(p)
    if p >= 0.01:
        return f"{p:.2f}"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.1e}".replace("e-0", "e-")


def mean_pm(mean, std, seeds: int, diff: bool = False) -> str:
    """``60.00 \u00b1 14.14`` over several seeds, the plain number for one."""
    head = signed(mean) if diff else pct(mean)
    return head + (PM + f"{100 * std:.2f}" if seeds > 1 and not missing(std) else "")


def eps_text(eps: float) -> str:
    """Eps as printed in tables: at most 2 decimals (4/3 -> 1.33)."""
    return f"{round(eps, 2):g}" if eps >= 0.01 or eps == 0 else f"{eps:.3g}"


def norm_text(norm: str) -> str:
    return LINF if norm == "linf" else norm.upper()


def eps_header(norm: str) -> str:
    return "eps (/255)" if norm == "linf" else f"eps ({norm.upper()})"


def eps_unit(norm: str) -> str:
    return "/255" if norm == "linf" else f" ({norm.upper()})"


def counted(k: int, noun: str) -> str:
    """``one training seed``, ``3 training seeds``."""
    return f"one {noun}" if k == 1 else f"{k} {noun}s"
