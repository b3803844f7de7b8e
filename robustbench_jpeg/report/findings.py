"""What the numbers let the conclusion claim: per radius, whether the worst-case difference survives both the 95%
paired interval and the Holm correction of its table (:class:`RadiusFinding`), what the checks say about masking
(:class:`MaskingFindings`), whether anything was attacked, and the closing sentences on the worst case.

A difference is claimed only where the raw interval and the Holm-corrected test agree; where they disagree, the text
names the radius and claims nothing there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..evaluation import ALPHA, Masking, MaskingStatus, assess_masking
from ..runfolder import BASELINE, JPEGDL
from .fmt import eps_text, p_general, signed
from .load import Run
from .views import excludes_zero, seeds_agree


def direction(row) -> int:
    """+1 / -1 when the paired interval excludes zero (all seeds on the same side), else 0."""
    return excludes_zero(row)


def eps_list(values) -> str:
    return ", ".join(eps_text(v) for v in values) if len(values) else "none"


@dataclass(frozen=True)
class RadiusFinding:
    """JPEG-DL minus baseline under the worst case at one eps, as the conclusion judges it.

    ``interval``: +1 / -1 when the 95% paired interval excludes zero, else 0; with several seeds the interval
    pooled over them, and every seed's difference on the same side.
    ``corrected``: +1 / -1 when the Holm-adjusted p of the table is below ALPHA, on the side of the mean difference,
    else 0; with several seeds the test pooled over them (stats.pooled_sign_flip_p), and every seed's difference
    on that side. A difference is claimed only where the two agree (:attr:`survives`).
    """

    eps: float
    points: float  # mean difference in percentage points
    interval: int
    corrected: int
    p_holm: tuple[float, ...]

    @property
    def survives(self) -> bool:
        return self.interval != 0 and self.corrected == self.interval

    @property
    def disagree(self) -> bool:
        return self.interval != self.corrected


def _corrected_side(row) -> int:
    """+1 / -1 when the Holm-adjusted p is below ALPHA on the side of the mean: with several seeds the test pooled
    over them, with every seed's difference on that side; else every seed's own test."""
    if "holm_pooled" in row and pd.notna(row["holm_pooled"]) and int(row["seeds"]) > 1:
        side = 1 if float(row["mean"]) > 0 else -1 if float(row["mean"]) < 0 else 0
        return side if float(row["holm_pooled"]) < ALPHA and seeds_agree(row, side) else 0
    holm = [float(p) for p in row["holm_all"] if pd.notna(p)] if "holm_all" in row else [float(row["p_holm"])]
    if not holm or not all(p < ALPHA for p in holm):
        return 0
    mean = float(row["mean"] if "mean" in row else row["diff"])
    return 1 if mean > 0 else -1 if mean < 0 else 0


def radius_findings(worst: pd.DataFrame) -> list[RadiusFinding]:
    """One :class:`RadiusFinding` per eps of the worst-case differences (rows of the aggregated ``dif``)."""
    out = []
    for _, r in worst.sort_values("eps_key").iterrows():
        holm = tuple(float(p) for p in r["holm_all"]) if "holm_all" in r else (float(r["p_holm"]),)
        mean = float(r["mean"] if "mean" in r else r["diff"])
        out.append(RadiusFinding(float(r["eps_key"]), 100 * mean, direction(r), _corrected_side(r), holm))
    return out


def nothing_correct(cells: pd.DataFrame) -> list[str]:
    """The arms on which no image was classified correctly (clean cells, else every cell, all zero): nothing was
    attacked there."""
    out = []
    for arm in (BASELINE, JPEGDL):
        mine = cells[cells["arm"] == arm]
        clean = mine[mine["kind"] == "clean"]
        basis = clean if not clean.empty else mine
        if not basis.empty and int(basis["n_correct"].sum()) == 0:
            out.append(arm)
    return out


@dataclass(frozen=True)
class MaskingFindings:
    """What the checks say about JPEG-DL's white-box numbers, over the runs of one model."""

    masked: tuple[Masking, ...]
    unchecked: bool
    inconclusive: bool
    failed: tuple[str, ...]


def masking_findings(runs: list[Run], model: str) -> MaskingFindings:
    model_runs = [run for run in runs if run.model == model]
    found = [assess_masking(run.checks_now, JPEGDL) for run in model_runs if run.checks_now is not None]
    failed = {f"{ch.name} ({ch.arm})" for run in model_runs for ch in (run.checks_now or []) if ch.status == "fail"}
    return MaskingFindings(
        tuple(m for m in found if m.status == MaskingStatus.MASKED),
        not found or all(m.status == MaskingStatus.UNCHECKED for m in found),
        any(m.status == MaskingStatus.INCONCLUSIVE for m in found),
        tuple(sorted(failed)),
    )


def worst_case_text(found: list[RadiusFinding], adaptive_eps, checked: bool, masked: bool, unit: str) -> str:
    """The closing sentences on the worst case: a difference is claimed only at radii where the 95% interval and
    the Holm-corrected test agree; radii where they disagree are named."""
    up = [f for f in found if f.survives and f.interval > 0]
    down = [f for f in found if f.survives and f.interval < 0]
    rule = "beyond the 95% paired interval and after the Holm correction"
    if up:
        text = _gain_text(up, adaptive_eps, masked, unit, rule)
        text += f" It falls below the baseline {rule} at eps {eps_list([f.eps for f in down])}{unit}." if down else ""
        text += " This worst case covers only the attacks listed; stronger attacks could lower either arm."
        if not checked:
            text += (
                " Because gradient masking has not been ruled out (no adaptive attack), this gain is not yet "
                "evidence of robustness."
            )
    elif down:
        text = (
            f"Under the worst case over the attacks run, JPEG-DL is less robust than the baseline {rule} at eps "
            f"{eps_list([f.eps for f in down])}{unit}, and no eps shows a gain {rule}."
        )
    else:
        text = (
            f"Under the worst case over the attacks run, no robustness difference {rule} is shown at any eps: "
            "these data do not support a robustness gain from JPEG-DL."
        )
    return (text + _disagreement_text(found, unit)).strip()


def _gain_text(up: list[RadiusFinding], adaptive_eps, masked: bool, unit: str, rule: str) -> str:
    checked = [f for f in up if f.eps in adaptive_eps]
    soft_only = [f for f in up if f.eps not in adaptive_eps]
    text = ""
    if checked:
        text = (
            f"Under the worst case over the attacks run, adaptive attacks included, JPEG-DL's robust accuracy "
            f"exceeds the baseline's {rule} at eps {eps_list([f.eps for f in checked])}{unit} (by "
            f"{range_text([f.points for f in checked])} points)."
        )
    if soft_only and adaptive_eps:
        text += (
            f" At eps {eps_list([f.eps for f in soft_only])}{unit} JPEG-DL's worst case also exceeds the "
            f"baseline's (by {range_text([f.points for f in soft_only])} points), but no adaptive attack was run "
            "at that radius itself (the worst case there holds adaptive attacks only from smaller radii), so that "
            "gain is not fully checked for gradient masking"
            + (" and should be read in the light of the masking found above." if masked else ".")
        )
    elif soft_only:
        text += (
            f" Under the worst case over the attacks run, JPEG-DL's robust accuracy exceeds the baseline's {rule} "
            f"at eps {eps_list([f.eps for f in soft_only])}{unit} (by {range_text([f.points for f in soft_only])}"
            " points), but no adaptive attack was run at any radius, so the gain is not checked for gradient "
            "masking."
        )
    return text.strip()


def _disagreement_text(found: list[RadiusFinding], unit: str) -> str:
    """Name the radii where the raw interval and the Holm-corrected test disagree (no difference claimed there)."""
    raw_only = [f for f in found if f.interval != 0 and f.corrected != f.interval]
    holm_only = [f for f in found if f.interval == 0 and f.corrected != 0]
    text = ""
    if raw_only:
        ps = ", ".join(f"{eps_list([f.eps])}{unit}: {', '.join(p_general(p) for p in f.p_holm)}" for f in raw_only)
        text += (
            f" At eps {eps_list([f.eps for f in raw_only])}{unit} the 95% paired interval excludes zero but the "
            f"difference does not survive the Holm correction over the table (p (Holm) {ps}), so no difference is "
            "claimed there."
        )
    if holm_only:
        text += (
            f" At eps {eps_list([f.eps for f in holm_only])}{unit} the Holm-corrected p is below {ALPHA:g} but "
            "the 95% paired interval includes zero, so no difference is claimed there either."
        )
    return text


def range_text(values: list[float]) -> str:
    """Points (already x100) as ``+1.50`` or ``\u22122.10 to +1.50``."""
    low, high = min(values) / 100, max(values) / 100
    return signed(low) if math.isclose(low, high) else f"{signed(low)} to {signed(high)}"
