"""Adaptive-attack comparisons computed from the per-sample files, and the plain-language conclusion.

Wording rules: every statement is derived from the numbers; "exceeds the interval" means the 95% paired interval
excludes zero (with several seeds: every seed's interval excludes zero on the same side); anything else is reported
as "not shown", never as "no effect".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation import ADAPTIVE_GRADS, ALPHA, CheckStatus, assess_masking, compare, judge
from ..runfolder import BASELINE, JPEGDL, arm_display, arm_order
from ..stats import mean_std, paired_from_samples
from .cells import WORST, adaptive_radii, select_rows, unchecked_radii
from .clean import clean_comparison
from .compare import controls, diff_name
from .findings import (
    MaskingFindings,
    direction,
    eps_list,
    masking_findings,
    nothing_correct,
    radius_findings,
    range_text,
    worst_case_text,
)
from .fmt import counted, eps_header, eps_text, eps_unit, interval, p_general, signed
from .load import Run
from .tables import rank_of

ADAPTIVE = ADAPTIVE_GRADS


def adaptive_comparisons(cells: pd.DataFrame, vectors: list[np.ndarray], quantizers: set[str]) -> pd.DataFrame:
    """Each JPEG arm under adaptive examples (BPDA, surrogate, transfer) vs the soft white-box attack of the same
    setting, same images.

    ``diff`` = accuracy under the adaptive attack minus accuracy under the soft white-box attack; ``stronger`` when
    the adaptive attack is lower beyond the checks' tolerance with an exact McNemar p below 0.05 after Holm over the
    arm's adaptive comparisons in the run (the rule of the ``adaptive_not_stronger`` check,
    :func:`robustbench_jpeg.evaluation.judge`).
    """
    jp = cells[cells["arm"].isin(quantizers) & (cells["kind"] == "attack") & (cells["eps_key"] > 0)]
    soft = jp[~jp["transfer"] & jp["grad"].isin(["soft", "none"])]
    refs = {}
    for r in soft.itertuples():
        refs.setdefault((r.run, r.arm, r.norm, r.pair, r.eps_key), r)
    out, rules = [], []
    for r in jp[jp["transfer"] | jp["grad"].isin(ADAPTIVE)].itertuples():
        ref = refs.get((r.run, r.arm, r.norm, r.pair, r.eps_key))
        if ref is None:
            continue
        m = min(r.n, ref.n)
        stat = paired_from_samples(vectors[r.sid][:m], vectors[ref.sid][:m])
        rules.append(compare(vectors[ref.sid], vectors[r.sid], ref.label, r.label))
        out.append(
            {
                "run": r.run,
                "model": r.model,
                "arm": r.arm,
                "train_seed": r.train_seed,
                "norm": r.norm,
                "eps_key": r.eps_key,
                "adaptive": r.label,
                "label_rank": r.label_rank,
                "reference": ref.label,
                "acc_reference": float(vectors[ref.sid][:m].mean()),
                "acc_adaptive": float(vectors[r.sid][:m].mean()),
                **stat.as_dict(),
            }
        )
    frame = pd.DataFrame(out)
    if not frame.empty:
        frame["stronger"] = False
        for _, grp in frame.groupby(["run", "arm"], sort=False):
            judged = judge([rules[i] for i in grp.index])
            frame.loc[grp.index, "stronger"] = [c.violated for c in judged]
    return frame


def adaptive_table(adaptive: pd.DataFrame, model: str, norm: str) -> pd.DataFrame:
    """Long, narrow view: one row per JPEG arm, eps and adaptive attack, with its soft white-box reference."""
    a = adaptive[(adaptive["model"] == model) & (adaptive["norm"] == norm)] if not adaptive.empty else adaptive
    if a.empty:
        return pd.DataFrame()
    rows = []
    rank = dict(zip(a["adaptive"], a["label_rank"], strict=True))
    for (arm, eps, label, ref), grp in sorted(
        a.groupby(["arm", "eps_key", "adaptive", "reference"]),
        key=lambda kv: (arm_order(kv[0][0]), kv[0][1], rank[kv[0][2]]),
    ):
        if len(grp) == 1:
            r = grp.iloc[0]
            diff, p, stronger = signed(r["diff"]), p_general(r["p_mcnemar"]), "yes" if r["stronger"] else "no"
        else:
            diff = f"{signed(grp['diff'].mean())} \u00b1 {100 * grp['diff'].std(ddof=1):.2f}"
            p = ", ".join(p_general(v) for v in grp["p_mcnemar"])
            stronger = f"in {int(grp['stronger'].sum())}/{len(grp)} seeds"
        rows.append(
            {
                eps_header(norm): eps_text(eps),
                "arm": arm_display(arm),
                "adaptive attack": label,
                "soft white-box reference": ref,
                "\u0394 (points)": diff,
                "p": p,
                "stronger": stronger,
            }
        )
    return pd.DataFrame(rows)


def _summarise(grp: pd.DataFrame, unit: str) -> str:
    grp = grp.sort_values("eps_key")
    dirs = [direction(r) for _, r in grp.iterrows()]
    up = [e for e, d in zip(grp["eps_key"], dirs, strict=True) if d > 0]
    down = [e for e, d in zip(grp["eps_key"], dirs, strict=True) if d < 0]
    lo, hi = signed(grp["mean"].min()), signed(grp["mean"].max())
    if len(grp) == 1:
        span = f"difference {lo} points at eps {eps_text(grp['eps_key'].iloc[0])}{unit}"
    else:
        span = (
            f"difference {lo} to {hi} points over eps {eps_text(grp['eps_key'].min())}-"
            f"{eps_text(grp['eps_key'].max())}{unit}"
        )
    # the rule of views.excludes_zero: with several seeds the pooled interval, every seed's difference on its side
    several = int(grp["seeds"].max()) > 1
    which = "the pooled 95% paired interval" if several else "the 95% paired interval"
    if not up and not down:
        if several:
            return (
                f"{span}; at no eps does the pooled 95% paired interval exclude zero with every seed's difference "
                "on the same side"
            )
        return f"{span}; the 95% paired interval includes zero at every eps"
    sides = [
        f"{side} at {len(where)} of {len(grp)} eps ({eps_list(where)})"
        for side, where in (("in JPEG-DL's favour", up), ("against JPEG-DL", down))
        if where
    ]
    agree = " (every seed's difference on that side)" if several else ""
    return f"{span}; {which} excludes zero{agree} " + " and ".join(sides)


def _scope_bullets(c: pd.DataFrame) -> list[str]:
    seeds = sorted(c["train_seed"].unique())
    n_min, n_max = int(c["n"].min()), int(c["n"].max())
    scope = f"{n_min}" if n_min == n_max else f"{n_min} to {n_max}"
    out = [
        f"Scope: {len(seeds)} training seed(s) ({', '.join(map(str, seeds))}); the first {scope} test "
        "images in test-set order; differences are JPEG-DL minus baseline in percentage points on the "
        "same images."
    ]
    if len(seeds) == 1:
        out.append(
            "With one training seed, the paired interval covers the sampling of test images only, not the "
            "variation between training runs; more seeds are needed before a difference can be generalised."
        )
    return out


def _clean_bullet(runs: list[Run], model: str) -> list[str]:
    clean = clean_comparison([run for run in runs if run.model == model])
    if clean.empty:
        return []
    mean, std, k = mean_std(clean["diff"])
    r = {
        "mean": mean,
        "std": std,
        "seeds": k,
        "lo_all": list(clean["ci_low"]),
        "hi_all": list(clean["ci_high"]),
        "ci_low": clean["ci_low"].iloc[0],
        "ci_high": clean["ci_high"].iloc[0],
        "p_mcnemar": clean["p_mcnemar"].iloc[0],
    }
    which = "every seed's 95% paired interval" if k > 1 else "the 95% paired interval"
    verdict = {
        1: f"{which} excludes zero, JPEG-DL higher",
        -1: f"{which} excludes zero, JPEG-DL lower",
        0: f"{which} does not exclude zero, so no clean-accuracy difference is shown",
    }[direction(r)]
    n = sorted(set(clean["n"]))
    return [
        f"Clean accuracy (first {'/'.join(map(str, n))} test images): baseline "
        f"{100 * clean['acc_baseline'].mean():.2f}%, JPEG-DL {100 * clean['acc_jpegdl'].mean():.2f}%"
        f"{' (means over seeds)' if k > 1 else ''}; {_diff_text(r)}: {verdict}."
    ]


def _threat(c: pd.DataFrame, label: str) -> str:
    """What a table label's attack is against JPEG-DL: ``adaptive`` (BPDA, surrogate gradients), ``transfer``,
    ``gradient-free`` (Square alone) or ``white-box`` (the model's own gradients, through the soft quantizer)."""
    rows = c[(c["label"] == label) & (c["arm"] == JPEGDL)]
    if rows["label_grad"].isin(ADAPTIVE).any():
        return "adaptive"
    if rows["transfer"].any():
        return "transfer"
    return "gradient-free" if (rows["label_grad"] == "none").all() and not rows.empty else "white-box"


def _largest_white_box_gain(c: pd.DataFrame, attacked: pd.DataFrame, unit: str) -> str:
    """`` (up to +X points, FGSM at eps 1/255)``: JPEG-DL's largest mean gain under a white-box attack, or nothing."""
    white = (
        attacked[[_threat(c, label) == "white-box" for label in attacked["label"]]] if not attacked.empty else attacked
    )
    white = white[white["kind"] != "worst"] if not white.empty else white
    if white.empty or white["mean"].max() <= 0:
        return ""
    best = white.loc[white["mean"].idxmax()]
    return f" (up to {signed(best['mean'])} points, {best['label']} at eps {eps_text(best['eps_key'])}{unit})"


def _attack_bullets(c, attacked, adaptive, masking: MaskingFindings, unit: str) -> list[str]:
    out = []
    shown = attacked[attacked["kind"] != "worst"] if not attacked.empty else attacked
    steps = set(c.loc[c["followed"].astype(bool), "label"])  # a chain's steps before its last: the chain says it
    labels = sorted(set(shown["label"]) - steps, key=rank_of(shown).get) if not shown.empty else []
    seeds = c["train_seed"].nunique()
    for label in labels:
        mine = attacked[attacked["label"] == label]
        fewer = f"; on {int(mine['seeds'].max())} of {seeds} seeds" if mine["seeds"].max() < seeds else ""
        out.append(f"{label} ({_threat(c, label)}{fewer}): " + _summarise(mine, unit) + ".")
    worst = attacked[attacked["label"] == WORST] if not attacked.empty else attacked
    if not worst.empty:
        out.append("Worst case over all attacks run at each eps: " + _summarise(worst, unit) + ".")
    jp = c[(c["arm"] == JPEGDL) & (c["kind"] == "attack")]
    stronger = adaptive[adaptive["stronger"]] if not adaptive.empty else adaptive
    if not jp.empty and not stronger.empty:
        out.append(
            f"Adaptive attacks are stronger than the soft white-box attack on JPEG-DL "
            f"({', '.join(sorted(set(stronger['adaptive'])))}) at eps "
            f"{eps_list(sorted(set(stronger['eps_key'])))}"
            f"{unit}, by up to {-100 * stronger['diff'].min():.2f} points (exact McNemar, Holm-adjusted p < {ALPHA})."
        )
    if masking.failed:
        out.append(f"Failed sanity checks (recomputed from the per-sample data): {', '.join(masking.failed)}.")
    if not jp.empty and masking.unchecked:
        out.append(
            "No adaptive (BPDA, surrogate, transfer) or gradient-free attack was run against JPEG-DL: its "
            "white-box numbers use gradients through the soft quantizer only and have not been checked "
            "for gradient masking."
        )
    elif not jp.empty and masking.inconclusive and not masking.masked:
        out.append(
            "Adaptive or gradient-free attacks were run against JPEG-DL, but on too few images to tell whether its "
            "white-box numbers are masked (see the sanity checks: inconclusive)."
        )
    elif not jp.empty and not masking.masked:
        out.append(
            "Adaptive or gradient-free attacks were run against JPEG-DL and no sign of gradient masking "
            "failed (see the sanity checks)."
        )
    return out


def conclusion(
    model: str,
    norm: str,
    acc: pd.DataFrame,
    dif: pd.DataFrame,
    adaptive: pd.DataFrame,
    cells: pd.DataFrame,
    runs: list[Run],
) -> tuple[list[str], str]:
    """Bullet points and a closing verdict for one model and norm (JPEG-DL vs baseline), from the numbers only.
    Cells scored with an evaluation-time alpha are left out (they have their own section)."""
    unit = eps_unit(norm)
    c = select_rows(cells, model=model, norm=norm, trained_alpha=True)
    if not {BASELINE, JPEGDL} <= set(c["arm"]):
        arms = ", ".join(arm_display(a) for a in sorted(set(c["arm"]), key=arm_order))
        return [], f"**Conclusion:** no JPEG-DL vs baseline comparison: the arms attacked are {arms}."
    empty = nothing_correct(c)
    if empty:
        which = " and ".join(arm_display(a) for a in empty)
        return _scope_bullets(c), (
            f"**Conclusion:** nothing was attacked: no test image is classified correctly by {which}, so every "
            "robust accuracy there is zero by default and no robustness conclusion can be drawn."
        )
    d = select_rows(dif, model=model, norm=norm, arm=JPEGDL, partner=BASELINE, trained_alpha=True)
    a = select_rows(adaptive, arm=JPEGDL, model=model, norm=norm)
    attacked = d[d["eps_key"] > 0] if not d.empty else d
    masking = masking_findings(runs, model)
    bullets = _scope_bullets(c) + _clean_bullet(runs, model) + _attack_bullets(c, attacked, a, masking, unit)
    parts = []
    if masking.masked:
        why = "; ".join(sorted({m.reason for m in masking.masked}))
        parts.append(
            f"The white-box soft-quantizer numbers for JPEG-DL{_largest_white_box_gain(c, attacked, unit)} are likely "
            f"inflated by gradient masking ({why}); the adaptive / worst-case numbers are the ones to trust."
        )
    worst = attacked[attacked["label"] == WORST] if not attacked.empty else attacked
    jp = c[(c["arm"] == JPEGDL) & (c["kind"] == "attack")]
    has_adaptive = bool(jp["grad"].isin(ADAPTIVE).any() or jp["transfer"].any())
    if not worst.empty:
        adaptive_eps = adaptive_radii(cells, model, norm, [JPEGDL])
        checked = has_adaptive and not masking.unchecked
        parts.append(worst_case_text(radius_findings(worst), adaptive_eps, checked, bool(masking.masked), unit))
    elif not attacked.empty:
        parts.append("No worst-case comparison is available.")
    else:
        parts.append("No attack was run for both arms, so no robustness conclusion can be drawn.")
    return bullets, "**Conclusion:** " + " ".join(parts)


def _diff_text(r) -> str:
    if r["seeds"] > 1:
        return (
            f"difference {signed(r['mean'])} \u00b1 {100 * r['std']:.2f} points (mean \u00b1 std over "
            f"{r['seeds']} seeds)"
        )
    return (
        f"difference {signed(r['mean'])} points, 95% CI {interval(r['ci_low'], r['ci_high'])}, "
        f"McNemar p = {p_general(r['p_mcnemar'], '.3g')}"
    )


def masking_sentences(runs: list[Run], model: str, quantizers: set[str]) -> list[str]:
    """One sentence per JPEG arm: is its soft white-box number masked? (:func:`~robustbench_jpeg.evaluation.verdict.
    assess_masking` over the checks recomputed from the per-sample data, per run.)"""
    out = []
    mine = [run for run in runs if run.model == model and run.checks_now is not None]
    arms = sorted({a for run in mine for a in run.results["arm"].unique() if a in quantizers}, key=arm_order)
    for arm in arms:  # only the runs that have the arm (controls are often trained on one seed of several)
        found = [(run.name, assess_masking(run.checks_now, arm)) for run in mine if arm in set(run.results["arm"])]
        statuses = {m.status for _, m in found}
        if len(statuses) == 1:
            m = found[0][1]
            text = f"**{m.status}** ({m.reason})" + (f" in all {len(found)} runs" if len(found) > 1 else "")
            if len(found) == 1 and len(mine) > 1:
                text += f" in run `{found[0][0]}`, the only run with this arm"
        else:
            text = "; ".join(f"**{m.status}** in run `{name}` ({m.reason})" for name, m in found)
        out.append(f"Gradient masking of {arm_display(arm)}'s white-box numbers: {text}.")
    return out


def gradient_free_stronger(runs: list[Run], model: str) -> set[str]:
    """The arms of ``model`` on which Square beat the gradient attacks in some run (``square_not_stronger`` failed):
    gradient attacks, adaptive ones included, are unreliable there, so the arm's worst case may be an overestimate."""
    return {
        c.arm
        for run in runs
        if run.model == model and run.checks_now is not None
        for c in run.checks_now
        if c.name == "square_not_stronger" and c.status == CheckStatus.FAIL
    }


def _control_caveat(name: str, unchecked: list[float], unit: str, square_beats: bool) -> str:
    out = ""
    if unchecked:
        out += (
            f" No adaptive attack (BPDA, surrogate, transfer) ran against {name} at eps {eps_list(unchecked)}{unit}: "
            "its worst case there may be inflated by gradient masking, so a difference there is not evidence."
        )
    if square_beats:
        out += (
            f" The gradient-free Square attack broke images that the gradient attacks against {name}, adaptive ones "
            f"included, left standing (square_not_stronger fails): gradient attacks are unreliable on {name}, so its "
            "worst case may still overstate its robustness and a stronger attack could narrow a gap in its favour."
        )
    return out


def control_sentences(
    dif: pd.DataFrame, cells: pd.DataFrame, model: str, norm: str, square_beats: set[str] = frozenset()
) -> list[str]:
    """Per control arm: where JPEG-DL's worst-case robust accuracy differs from the control's beyond the 95% paired
    interval (every seed's, with several) and after the Holm correction of its table, per eps; everything else is
    "not shown", never "no effect", and radii where the interval and the corrected test disagree are named.
    ``square_beats``: the arms whose gradient attacks Square beat (:func:`gradient_free_stronger`), said so."""
    unit = eps_unit(norm)
    out = []
    if dif.empty:
        return out
    for control in controls(cells.loc[(cells["model"] == model) & (cells["norm"] == norm), "arm"]):
        d = select_rows(dif, model=model, norm=norm, arm=JPEGDL, partner=control, label=WORST, trained_alpha=True)
        d = d[d["eps_key"] > 0].sort_values("eps_key")
        if d.empty:
            out.append(f"{diff_name(JPEGDL, control)}: no worst case shared by both arms, so nothing to compare.")
            continue
        found = radius_findings(d)
        up = [f.eps for f in found if f.survives and f.interval > 0]
        down = [f.eps for f in found if f.survives and f.interval < 0]
        none = [f.eps for f in found if not f.survives]
        name, parts, rule = arm_display(control), [], "beyond the interval and after Holm"
        if up:
            parts.append(f"JPEG-DL exceeds {name} {rule} at eps {eps_list(up)}{unit}")
        if down:
            parts.append(f"JPEG-DL falls below {name} {rule} at eps {eps_list(down)}{unit}")
        if none:
            parts.append(f"a difference is not shown at eps {eps_list(none)}{unit}")
        split = [f.eps for f in found if f.disagree]
        if split:
            parts.append(f"the interval and the Holm-corrected test disagree at eps {eps_list(split)}{unit}")
        spread = range_text([100 * v for v in d["mean"]])
        noun = "differences" if len(d) > 1 else "difference"
        unchecked = sorted(unchecked_radii(cells, model, norm, [control]) & set(d["eps_key"]))
        caveat = _control_caveat(name, unchecked, unit, control in square_beats)
        seeds, all_seeds = int(d["seeds"].max()), _seeds_of(cells, model, norm, JPEGDL)
        on = (
            f" on the {counted(seeds, 'training seed')} {name} was trained for, of {all_seeds}"
            if seeds < all_seeds
            else ""
        )
        out.append(
            f"{diff_name(JPEGDL, control)}, worst case over every attack{on} ({noun} {spread} points): "
            + "; ".join(parts)
            + "."
            + caveat
        )
    return out


def _seeds_of(cells: pd.DataFrame, model: str, norm: str, arm: str) -> int:
    """The number of training seeds ``arm`` has cells for."""
    mine = cells[(cells["model"] == model) & (cells["norm"] == norm) & (cells["arm"] == arm)]
    return int(mine["train_seed"].nunique())
