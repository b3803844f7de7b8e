"""Sanity checks over attack results: do the numbers behave like a sound attack on an unmasked model?

Every check is a pure function of the results table (the rows of ``results.csv``) and, for the gradient check,
of a per-arm gradient statistic, so each can be unit-tested on a constructed DataFrame. Each returns one
:class:`Check` per arm: status ``pass``, ``fail`` or ``skip`` (nothing to compare), human-readable numbers in
``detail``, and what a failure means in ``meaning``. docs/attacks.md explains each check at length.

Tolerance: two accuracies on n images are "equal" within ``max(1/n, 0.005)`` (one image or half a point,
whichever is larger), which absorbs the noise of random starts without hiding real violations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Check",
    "MEANINGS",
    "tolerance",
    "check_monotone_in_eps",
    "check_pgd_not_weaker_than_fgsm",
    "check_large_eps_near_zero",
    "check_more_iterations_not_weaker",
    "check_adaptive_not_stronger",
    "check_zero_input_gradients",
    "check_clean_matches_card",
    "zero_gradient_fraction",
    "run_checks",
    "verdict",
    "checks_payload",
    "LARGE_EPS",
    "LARGE_EPS_MAX_ACC",
    "ZERO_GRAD_MAX_FRACTION",
    "CARD_TOLERANCE",
]

LARGE_EPS = 32 / 255
LARGE_EPS_MAX_ACC = 0.05
ZERO_GRAD_MAX_FRACTION = 0.10
CARD_TOLERANCE = 0.01

MEANINGS = {
    "monotone_in_eps": "Robust accuracy must not rise with eps for a fixed attack; if it does, the attack is failing "
    "at large eps (gradient masking or a broken attack) and the curve understates the true robustness loss.",
    "pgd_not_weaker_than_fgsm": "Multi-step PGD must be at least as strong as single-step FGSM at equal eps; if it is "
    "weaker, the iterative attack is being obstructed (masked or noisy gradients) and its numbers are not reliable.",
    "large_eps_near_zero": "At a huge radius (>= 32/255 L-inf) a working white-box attack drives accuracy to about "
    "0; if it does not, gradients are masked or the attack is broken, and every number of that attack is suspect.",
    "more_iterations_not_weaker": "More PGD steps or restarts must not raise robust accuracy; if they do, the attack "
    "has not converged or the gradients are unreliable, so report the strongest configuration only.",
    "adaptive_not_stronger": "BPDA and transfer attacks must not beat the white-box soft-gradient attack; if they do, "
    "the white-box soft number is masked; report the BPDA/transfer/worst-case number.",
    "zero_input_gradients": "A healthy differentiable model has almost no exactly-zero input gradients; many exact "
    "zeros mean the gradient is blocked (e.g. hard rounding) and gradient attacks on this arm are meaningless.",
    "clean_matches_card": "Clean accuracy measured by the sweep must match the model card's recorded test accuracy; "
    "a mismatch means the model is loaded or evaluated differently from training (e.g. wrong alpha or tables).",
}


@dataclass(frozen=True)
class Check:
    """One verdict. ``status`` is ``pass``, ``fail`` or ``skip``."""

    name: str
    arm: str
    status: str
    detail: str
    meaning: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def tolerance(n: int) -> float:
    """Accuracy slack when comparing two cells on ``n`` images: one image or 0.5 points, whichever is larger."""
    return max(1.0 / max(int(n), 1), 0.005)


# --- helpers ------------------------------------------------------------------------------------------------------


def _attacks(df: pd.DataFrame) -> pd.DataFrame:
    if df is None or df.empty:
        return pd.DataFrame(columns=["arm", "attack"])
    out = df[df["attack"] != "clean"].copy()
    if out.empty:
        return out
    out["_eps"] = out["eps"].astype(float).round(10)
    pairs = zip(out["step_rule"], out["step_size"], strict=True)
    out["_step"] = [(f"abs:{float(s):.6g}" if r == "absolute" else str(r)) for r, s in pairs]
    out["random_start"] = out["random_start"].map(_as_bool)
    return out


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def _arms(df: pd.DataFrame | None, extra: Iterable[str] = ()) -> list[str]:
    arms = set(extra)
    if df is not None and not df.empty:
        arms.update(str(a) for a in df["arm"].unique())
    order = {"baseline": 0, "jpegdl": 1}
    return sorted(arms, key=lambda a: (order.get(a, 9), a))


def _eps_label(row: Any) -> str:
    eps = float(row["eps"])
    return f"{eps * 255:.4g}/255" if row["norm"] == "linf" else f"{eps:.4g} (L2)"


def _cell_label(row: Any) -> str:
    name = "FGSM" if row["attack"] == "fgsm" else f"PGD{'-L2' if row['norm'] == 'l2' else ''}-{int(row['steps'])}"
    if int(row["restarts"]) > 1:
        name += f"x{int(row['restarts'])}"
    if row["grad"] != "none":
        name += f" {row['grad']}"
    if row["source_arm"] != row["arm"]:
        name += f" from {row['source_arm']}"
    return name


def _pct(v: float) -> str:
    return f"{100 * float(v):.2f}%"


def _summarise(name: str, arm: str, violations: list[str], compared: int, what: str) -> Check:
    if compared == 0:
        return Check(name, arm, "skip", f"no {what} to compare", MEANINGS[name])
    if violations:
        shown = "; ".join(violations[:6]) + (f"; ... ({len(violations)} in all)" if len(violations) > 6 else "")
        return Check(name, arm, "fail", f"{len(violations)} of {compared} comparisons violate: {shown}", MEANINGS[name])
    return Check(name, arm, "pass", f"{compared} comparisons hold (tolerance max(1/n, 0.5%))", MEANINGS[name])


_CONFIG = ["attack", "norm", "steps", "_step", "restarts", "random_start", "grad", "source_arm", "attack_seed", "n"]


# --- (a) monotone in eps ----------------------------------------------------------------------------------------


def check_monotone_in_eps(df: pd.DataFrame) -> list[Check]:
    """(a) Per arm and attack configuration, robust accuracy is non-increasing in eps (within tolerance)."""
    rows = _attacks(df)
    out = []
    for arm in _arms(df):
        sub = rows[rows["arm"] == arm] if not rows.empty else rows
        violations, compared = [], 0
        for _, group in (sub.groupby(_CONFIG, dropna=False) if not sub.empty else []):
            group = group.sort_values("_eps")
            best = None  # lowest accuracy at any smaller eps
            for _, row in group.iterrows():
                acc = float(row["robust_acc"])
                if best is not None:
                    compared += 1
                    if acc > float(best["robust_acc"]) + tolerance(row["n"]):
                        violations.append(
                            f"{_cell_label(row)}: {_pct(acc)} at eps {_eps_label(row)} > "
                            f"{_pct(best['robust_acc'])} at eps {_eps_label(best)}"
                        )
                if best is None or acc < float(best["robust_acc"]):
                    best = row
        out.append(_summarise("monotone_in_eps", arm, violations, compared, "eps grids with two or more radii"))
    return out


# --- (b) PGD vs FGSM --------------------------------------------------------------------------------------------


def check_pgd_not_weaker_than_fgsm(df: pd.DataFrame) -> list[Check]:
    """(b) At equal eps (same arm, grad, source, n) every L-inf PGD cell is at most the FGSM accuracy + tolerance."""
    rows = _attacks(df)
    out = []
    for arm in _arms(df):
        violations, compared = [], 0
        if not rows.empty:
            sub = rows[(rows["arm"] == arm) & (rows["norm"] == "linf")]
            for _, group in sub.groupby(["_eps", "grad", "source_arm", "n"]):
                fgsm = group[group["attack"] == "fgsm"]
                pgd = group[group["attack"] == "pgd"]
                for _, p in pgd.iterrows():
                    for _, f in fgsm.iterrows():
                        compared += 1
                        if float(p["robust_acc"]) > float(f["robust_acc"]) + tolerance(p["n"]):
                            violations.append(
                                f"eps {_eps_label(p)}: {_cell_label(p)} {_pct(p['robust_acc'])} > "
                                f"{_cell_label(f)} {_pct(f['robust_acc'])}"
                            )
        out.append(_summarise("pgd_not_weaker_than_fgsm", arm, violations, compared, "PGD/FGSM cells at equal eps"))
    return out


# --- (c) huge eps ---------------------------------------------------------------------------------------------


def check_large_eps_near_zero(
    df: pd.DataFrame, min_eps: float = LARGE_EPS, max_acc: float = LARGE_EPS_MAX_ACC
) -> list[Check]:
    """(c) White-box L-inf PGD at eps >= ``min_eps`` leaves robust accuracy below ``max_acc`` (skip: no such cell)."""
    rows = _attacks(df)
    out = []
    name = "large_eps_near_zero"
    for arm in _arms(df):
        if rows.empty:
            out.append(Check(name, arm, "skip", "no attack cells", MEANINGS[name]))
            continue
        sub = rows[
            (rows["arm"] == arm) & (rows["attack"] == "pgd") & (rows["norm"] == "linf")
            & (rows["source_arm"] == rows["arm"]) & (rows["eps"].astype(float) >= min_eps - 1e-9)
        ]
        if sub.empty:
            out.append(Check(name, arm, "skip", f"no white-box L-inf PGD cell with eps >= {min_eps * 255:g}/255",
                             MEANINGS[name]))
            continue
        bad = sub[sub["robust_acc"].astype(float) >= max_acc]
        cells = "; ".join(f"{_cell_label(r)} at {_eps_label(r)}: {_pct(r['robust_acc'])}" for _, r in sub.iterrows())
        status = "fail" if not bad.empty else "pass"
        out.append(Check(name, arm, status, f"{cells} (must be < {_pct(max_acc)})", MEANINGS[name]))
    return out


# --- (d) more steps / restarts ----------------------------------------------------------------------------------


def check_more_iterations_not_weaker(df: pd.DataFrame) -> list[Check]:
    """(d) Among PGD cells that differ only in steps and/or restarts, more of either never raises accuracy."""
    rows = _attacks(df)
    out = []
    for arm in _arms(df):
        violations, compared = [], 0
        if not rows.empty:
            sub = rows[(rows["arm"] == arm) & (rows["attack"] == "pgd")]
            keys = ["norm", "_eps", "_step", "random_start", "grad", "source_arm", "n"]
            for _, group in sub.groupby(keys):
                recs = list(group.iterrows())
                for _, a in recs:
                    for _, b in recs:
                        sa, ra, sb, rb = int(a["steps"]), int(a["restarts"]), int(b["steps"]), int(b["restarts"])
                        if sb >= sa and rb >= ra and (sb, rb) != (sa, ra):
                            compared += 1
                            if float(b["robust_acc"]) > float(a["robust_acc"]) + tolerance(b["n"]):
                                violations.append(
                                    f"eps {_eps_label(a)}: {_cell_label(b)} {_pct(b['robust_acc'])} > "
                                    f"{_cell_label(a)} {_pct(a['robust_acc'])}"
                                )
        out.append(_summarise("more_iterations_not_weaker", arm, violations, compared,
                              "PGD cells differing only in steps/restarts"))
    return out


# --- (e) BPDA / transfer vs white-box soft ----------------------------------------------------------------------


def check_adaptive_not_stronger(df: pd.DataFrame) -> list[Check]:
    """(e) A BPDA or transfer cell must not be below the matching white-box cell (soft gradients, or the
    baseline's plain gradients) by more than the tolerance. Matching: same attack, norm, eps, steps, step rule,
    restarts, random start and n."""
    rows = _attacks(df)
    out = []
    keys = ["attack", "norm", "_eps", "steps", "_step", "restarts", "random_start", "n"]
    for arm in _arms(df):
        violations, compared = [], 0
        if not rows.empty:
            sub = rows[rows["arm"] == arm]
            white = sub[(sub["source_arm"] == sub["arm"]) & sub["grad"].isin(["soft", "none"])]
            adaptive = sub[(sub["grad"] == "bpda") | (sub["source_arm"] != sub["arm"])]
            if not white.empty and not adaptive.empty:
                white_best = white.groupby(keys)["robust_acc"].min()
                for _, row in adaptive.iterrows():
                    key = tuple(row[k] for k in keys)
                    if key not in white_best.index:
                        continue
                    compared += 1
                    wb = float(white_best.loc[key])
                    if float(row["robust_acc"]) < wb - tolerance(row["n"]):
                        violations.append(
                            f"eps {_eps_label(row)}: {_cell_label(row)} {_pct(row['robust_acc'])} < white-box "
                            f"{_pct(wb)}"
                        )
        out.append(_summarise("adaptive_not_stronger", arm, violations, compared,
                              "BPDA/transfer cells with a matching white-box cell"))
    return out


# --- (f) zero input gradients -----------------------------------------------------------------------------------


def zero_gradient_fraction(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256
) -> dict[str, Any]:
    """Input-gradient statistics of the summed cross-entropy on clean ``(x, y)`` (``x`` float in [0, 1]).

    Measured as deployed: a JPEG-DL model is put in ``soft`` mode. Returns ``zero_fraction`` (share of input
    entries whose gradient is exactly 0.0), ``all_zero_images`` (images whose whole gradient is 0), ``n_images``,
    ``n_entries`` and ``median_l2`` (median per-image L2 norm of the gradient).
    """
    was_training = model.training
    model.eval()
    jpeg = getattr(model, "jpeg", None)
    saved_mode = getattr(jpeg, "mode", None) if getattr(model, "has_jpeg", False) else None
    if saved_mode is not None:
        jpeg.mode = "soft"
    device = next(model.parameters()).device
    zeros, entries, all_zero, norms = 0, 0, 0, []
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device).float().detach().requires_grad_(True)
            yb = y[start:start + batch_size].to(device)
            loss = F.cross_entropy(model(xb), yb, reduction="sum")  # sum: no 1/B shrinking towards underflow
            (grad,) = torch.autograd.grad(loss, xb)
            flat = grad.reshape(len(xb), -1)
            zeros += int((flat == 0).sum())
            entries += flat.numel()
            all_zero += int((flat == 0).all(dim=1).sum())
            norms.append(flat.norm(dim=1).detach().cpu())
    finally:
        if saved_mode is not None:
            jpeg.mode = saved_mode
        model.train(was_training)
    norm = torch.cat(norms) if norms else torch.zeros(0)
    return {
        "zero_fraction": zeros / entries if entries else 0.0,
        "all_zero_images": all_zero,
        "n_images": int(len(x)),
        "n_entries": entries,
        "median_l2": float(norm.median()) if len(norm) else 0.0,
        "mode": "soft" if saved_mode is not None else "none",
    }


def check_zero_input_gradients(
    grad_stats: Mapping[str, Mapping[str, Any]] | None, max_fraction: float = ZERO_GRAD_MAX_FRACTION
) -> list[Check]:
    """(f) Per arm, at most ``max_fraction`` of input-gradient entries on clean test images are exactly zero."""
    name = "zero_input_gradients"
    out = []
    for arm, stats in sorted((grad_stats or {}).items()):
        frac = float(stats["zero_fraction"])
        detail = (
            f"{_pct(frac)} of {int(stats['n_entries'])} input-gradient entries exactly zero on "
            f"{int(stats['n_images'])} "
            f"clean test images ({stats.get('mode', 'none')} mode); {int(stats['all_zero_images'])} images with an "
            f"all-zero gradient; median per-image L2 norm {float(stats['median_l2']):.3g} "
            f"(fail above {_pct(max_fraction)})"
        )
        out.append(Check(name, arm, "fail" if frac > max_fraction else "pass", detail, MEANINGS[name]))
    return out


# --- (g) clean accuracy vs card ---------------------------------------------------------------------------------


def check_clean_matches_card(
    df: pd.DataFrame, cards: Mapping[str, Mapping[str, Any]] | None, tol: float = CARD_TOLERANCE
) -> list[Check]:
    """(g) The clean cell over the whole test set matches the card's ``clean_top1`` within ``tol``.

    ``cards[arm]`` needs ``clean_top1`` and ``test_size``; ``finished`` False (training paused mid-way, the
    checkpoint may be newer than the last evaluation) skips the check.
    """
    name = "clean_matches_card"
    out = []
    clean = df[df["attack"] == "clean"] if df is not None and not df.empty else pd.DataFrame()
    for arm in _arms(df, (cards or {}).keys()):
        card = (cards or {}).get(arm) or {}
        top1, size = card.get("clean_top1"), card.get("test_size")
        rows = clean[(clean["arm"] == arm) & (clean["n"] == size)] if not clean.empty and size else clean.iloc[0:0]
        if top1 is None:
            out.append(Check(name, arm, "skip", "the card records no clean_top1", MEANINGS[name]))
        elif not card.get("finished", True):
            out.append(Check(name, arm, "skip", "training unfinished: the checkpoint may be newer than clean_top1",
                             MEANINGS[name]))
        elif rows.empty:
            out.append(Check(name, arm, "skip", f"no clean cell over the whole test set ({size} images)",
                             MEANINGS[name]))
        else:
            acc = float(rows.iloc[0]["clean_acc"])
            status = "pass" if abs(acc - float(top1)) <= tol else "fail"
            out.append(Check(name, arm, status, f"sweep {_pct(acc)} vs card {_pct(top1)} on {size} images "
                             f"(tolerance {_pct(tol)})", MEANINGS[name]))
    return out


# --- all --------------------------------------------------------------------------------------------------------


def run_checks(
    df: pd.DataFrame,
    grad_stats: Mapping[str, Mapping[str, Any]] | None = None,
    cards: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Check]:
    """Every check over a results table (all cells of a run), the gradient statistics and the card accuracies."""
    if df is None:
        df = pd.DataFrame()
    checks: list[Check] = []
    if not df.empty:
        checks += check_monotone_in_eps(df)
        checks += check_pgd_not_weaker_than_fgsm(df)
        checks += check_large_eps_near_zero(df)
        checks += check_more_iterations_not_weaker(df)
        checks += check_adaptive_not_stronger(df)
    checks += check_zero_input_gradients(grad_stats)
    if cards is not None:
        checks += check_clean_matches_card(df, cards)
    return checks


def verdict(checks: list[Check]) -> str:
    """One line: how many checks passed, failed and were skipped, naming the failures."""
    fails = [c for c in checks if c.status == "fail"]
    passes = sum(c.status == "pass" for c in checks)
    skips = sum(c.status == "skip" for c in checks)
    if fails:
        names = ", ".join(f"{c.name}[{c.arm}]" for c in fails)
        return f"FAIL: {len(fails)} check(s) failed ({names}); {passes} passed, {skips} skipped. See checks.json."
    return f"OK: {passes} check(s) passed, {skips} skipped, none failed."


def checks_payload(checks: list[Check]) -> dict[str, Any]:
    """The ``checks.json`` document (see docs/run-format.md)."""
    return {"verdict": verdict(checks), "checks": [c.to_dict() for c in checks]}
