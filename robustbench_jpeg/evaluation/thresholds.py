"""The checks against a fixed threshold rather than another cell: survivors of a huge radius, exactly-zero input
gradients, and clean accuracy against the model card (docs/attacks.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .check_record import MEANINGS, NOTHING_ATTACKED_TEXT, Check, CheckStatus

LARGE_EPS = {"linf": 32 / 255, "l2": 4.0}
LARGE_SURVIVAL = 0.05  # at most this share of the clean-correct images may survive a huge radius
ZERO_GRAD_MAX_FRACTION = 0.10
CARD_TOLERANCE = 0.01


def check_large_eps_near_zero(cells: pd.DataFrame, samples: Mapping[str, np.ndarray], arm: str) -> Check:
    """White-box gradient cells at a huge radius leave at most 5% of the clean-correct images robust."""
    name = "large_eps_near_zero"
    white_box = cells[(cells["arm"] == arm) & (cells["source_arm"] == arm) & cells["_gradient"] & ~cells["_chained"]]
    large = [
        float(e) >= LARGE_EPS.get(nm, np.inf) - 1e-9 for e, nm in zip(white_box["eps"], white_box["norm"], strict=True)
    ]
    sub = white_box[large]
    if sub.empty:
        already = _near_zero_below_large_eps(white_box)
        if already:
            return Check(
                name,
                arm,
                CheckStatus.PASS,
                "no attack at >= 32/255 (L-inf) or >= 4 (L2), and none is needed: at its largest radius already "
                + "; ".join(already)
                + f" (at most {100 * LARGE_SURVIVAL:g}%)",
                MEANINGS[name],
                (),
                len(already),
            )
        return Check(
            name,
            arm,
            CheckStatus.WARN,
            "could not compare anything: no white-box gradient attack at >= 32/255 (L-inf) or >= 4 (L2), and none "
            "at a smaller radius leaves at most 5% of the clean-correct images; the standard-linf spec has one",
            MEANINGS[name],
        )
    parts, failed, evidence = [], False, []
    for _, r in sub.iterrows():
        clean = int(r["n_clean_correct"])
        share = int(r["n_correct"]) / clean if clean else 0.0
        bad = clean > 0 and share > LARGE_SURVIVAL
        failed |= bad
        parts.append(
            f"{r['_label']}: {int(r['n_correct'])} of {clean} clean-correct images survive ({100 * share:.1f}%)"
        )
        if bad:
            evidence.append({"cell": r["_label"], "survivors": int(r["n_correct"]), "clean_correct": clean})
    if (sub["_attackable"] == 0).all():
        return Check(name, arm, CheckStatus.NOTHING_ATTACKED, NOTHING_ATTACKED_TEXT, MEANINGS[name], (), len(sub))
    return Check(
        name,
        arm,
        CheckStatus.FAIL if failed else CheckStatus.PASS,
        "; ".join(parts) + f" (at most {100 * LARGE_SURVIVAL:g}%)",
        MEANINGS[name],
        tuple(evidence),
        len(sub),
    )


def _near_zero_below_large_eps(white_box: pd.DataFrame) -> list[str]:
    """Where every threat model's largest attacked radius already leaves at most LARGE_SURVIVAL of the clean-correct
    images robust under a white-box gradient attack, those cells (the condition of the check holds a fortiori);
    else nothing."""
    found = []
    for _, by_norm in white_box.groupby("norm"):
        top = by_norm[by_norm["eps"] == by_norm["eps"].max()].dropna(subset=["n_clean_correct", "n_correct"])
        clean, kept = top["n_clean_correct"].astype(int), top["n_correct"].astype(int)
        near_zero = top[(clean > 0) & (kept <= LARGE_SURVIVAL * clean)]
        if near_zero.empty:
            return []
        r = near_zero.iloc[0]
        share = int(r["n_correct"]) / int(r["n_clean_correct"])
        found.append(
            f"{r['_label']}: {int(r['n_correct'])} of {int(r['n_clean_correct'])} clean-correct images survive "
            f"({100 * share:.1f}%)"
        )
    return found


def check_zero_input_gradients(diagnostics: Mapping[str, Any] | None, arm: str) -> Check:
    """Exact-zero input gradients on clean test images: in pixels, and at the quantizer's input (DCT coefficients,
    per channel and frequency band) for arms with a JPEG layer."""
    name = "zero_input_gradients"
    stats = (diagnostics or {}).get(arm, {}).get("gradients")
    if not stats:
        return Check(
            name,
            arm,
            CheckStatus.WARN,
            "could not compare anything: no gradient statistics for this arm",
            MEANINGS[name],
        )
    pixel = float(stats["pixel_zero_fraction"])
    parts = [
        f"pixels: {100 * pixel:.2f}% of {int(stats['pixel_entries'])} gradient entries exactly zero on "
        f"{int(stats['n_images'])} clean test images"
    ]
    failed = pixel > ZERO_GRAD_MAX_FRACTION
    coeff = stats.get("coefficients")
    if coeff:
        overall = float(coeff["zero_fraction"])
        failed |= overall > ZERO_GRAD_MAX_FRACTION
        dead = [f"{band['channel']} {band['band']}" for band in coeff["bands"] if band["zero_fraction"] >= 1.0]
        failed |= bool(dead)
        worst = sorted(coeff["bands"], key=lambda b: -b["zero_fraction"])[:4]
        parts.append(
            f"DCT coefficients at the quantizer's input: {100 * overall:.2f}% exactly zero ("
            + ", ".join(f"{b['channel']} {b['band']} {100 * b['zero_fraction']:.0f}%" for b in worst)
            + ")"
        )
        if dead:
            parts.append(f"entirely zero: {', '.join(dead)}")
    detail = "; ".join(parts) + f" (fail above {100 * ZERO_GRAD_MAX_FRACTION:g}% or when a band is entirely zero)"
    return Check(name, arm, CheckStatus.FAIL if failed else CheckStatus.PASS, detail, MEANINGS[name], (), 1)


def check_clean_matches_card(df: pd.DataFrame, card: Mapping[str, Any] | None, arm: str, test_size: int) -> Check:
    """The clean cell over the whole test set matches the card's ``clean_top1`` within 1 point."""
    name = "clean_matches_card"
    card = card or {}
    top1 = card.get("clean_top1")
    clean = (
        df[(df["attack"] == "clean") & (df["arm"] == arm) & (df["n"].astype(int) == test_size)]
        if df is not None and not df.empty
        else pd.DataFrame()
    )
    if "eval_alpha" in clean:
        clean = clean[clean["eval_alpha"].isna()]
    if top1 is None:
        return Check(name, arm, CheckStatus.SKIP, "the card records no clean_top1", MEANINGS[name])
    if not card.get("finished", True):
        return Check(
            name,
            arm,
            CheckStatus.SKIP,
            "training unfinished: the checkpoint may be newer than clean_top1",
            MEANINGS[name],
        )
    if clean.empty:
        return Check(
            name,
            arm,
            CheckStatus.WARN,
            f"could not compare anything: no clean cell over the whole test set ({test_size} images)",
            MEANINGS[name],
        )
    acc = float(clean.iloc[-1]["clean_acc"])
    status = CheckStatus.PASS if abs(acc - float(top1)) <= CARD_TOLERANCE else CheckStatus.FAIL
    return Check(
        name,
        arm,
        status,
        f"sweep {100 * acc:.2f}% vs card {100 * float(top1):.2f}% on {test_size} images "
        f"(tolerance {100 * CARD_TOLERANCE:g} points)",
        MEANINGS[name],
        (),
        1,
    )
