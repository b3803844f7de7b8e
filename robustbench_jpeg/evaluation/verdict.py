"""From checks to one verdict, and the one place that decides whether an arm's white-box numbers are masked.

The verdict has three states:

* ``FAIL``: some check failed (a significant violation, or a hard threshold such as zero gradients);
* ``WARN``: nothing failed, but a check was inconclusive (a violation not significant after Holm, or a comparison
  too small to fail), attacked nothing (no clean-correct image), could not compare anything, more than half of the
  applicable checks were skipped, or an arm with a quantizer faced no adaptive attack;
* ``OK``: every applicable check compared something, each comparison could have failed, and every one held.

:func:`assess_masking` is used by ``checks.json`` and by the report's conclusion alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from .check_record import Check, CheckStatus

__all__ = [
    "verdict_status",
    "verdict",
    "Masking",
    "MaskingStatus",
    "assess_masking",
    "checks_payload",
    "MASKING_SIGNS",
]

MASKING_SIGNS = (
    "zero_input_gradients",
    "adaptive_not_stronger",
    "square_not_stronger",
    "large_eps_near_zero",
    "pgd_not_weaker_than_fgsm",
    "monotone_in_eps",
    "more_iterations_not_weaker",
)
# the checks that show an arm was attacked adaptively at all (their warnings mean "unchecked")
_ADAPTIVE_PRESENCE = ("adaptive_not_stronger", "square_not_stronger")


_NOT_CLEAN = (CheckStatus.WARN, CheckStatus.INCONCLUSIVE, CheckStatus.NOTHING_ATTACKED)


def verdict_status(checks: Iterable[Check]) -> str:
    checks = list(checks)
    if any(c.status == CheckStatus.FAIL for c in checks):
        return "FAIL"
    skips = sum(c.status == CheckStatus.SKIP for c in checks)
    if any(c.status in _NOT_CLEAN for c in checks) or (checks and skips > len(checks) / 2):
        return "WARN"
    return "OK"


def verdict(checks: Iterable[Check]) -> str:
    """One line: the status, then which checks failed, were inconclusive, attacked nothing or warned, and the
    counts (inconclusive and nothing-attacked counts only when there are any)."""
    checks = list(checks)
    status = verdict_status(checks)
    counts = {s: sum(c.status == s for c in checks) for s in CheckStatus}
    shown = [(CheckStatus.PASS, "passed"), (CheckStatus.FAIL, "failed")]
    shown += [(s, str(s)) for s in (CheckStatus.INCONCLUSIVE, CheckStatus.NOTHING_ATTACKED) if counts[s]]
    shown += [(CheckStatus.WARN, "warned"), (CheckStatus.SKIP, "skipped")]
    tail = ", ".join(f"{counts[s]} {word}" for s, word in shown) + "; see checks.json"
    parts = []
    for s, word in (
        (CheckStatus.FAIL, "failed"),
        (CheckStatus.INCONCLUSIVE, "inconclusive"),
        (CheckStatus.NOTHING_ATTACKED, "nothing attacked"),
        (CheckStatus.WARN, "warnings"),
    ):
        names = [f"{c.name}[{c.arm}]" for c in checks if c.status == s]
        if names:
            parts.append(f"{word}: {', '.join(names)}")
    if status == "WARN" and not parts:
        parts.append(f"more than half of the checks were skipped ({counts[CheckStatus.SKIP]} of {len(checks)})")
    return f"{status}: " + ("; ".join(parts) + ". " if parts else "") + tail + "."


class MaskingStatus(StrEnum):
    """Is an arm's white-box (soft-gradient) robustness number masked? (:func:`assess_masking`)"""

    MASKED = "masked"  # a masking sign failed
    NOTHING_ATTACKED = "nothing attacked"  # no test image was classified correctly: there is nothing to judge
    UNCHECKED = "unchecked"  # no adaptive or gradient-free attack ran, so masking is not ruled out
    INCONCLUSIVE = "inconclusive"  # a masking sign was too small to tell (not significant, or could not fail)
    NOT_DETECTED = "not detected"  # adaptive attacks ran, every masking sign could have failed and none did


@dataclass(frozen=True)
class Masking:
    """The :class:`MaskingStatus` of one arm; ``signs``: the checks behind it (failed or inconclusive ones)."""

    arm: str
    status: MaskingStatus
    signs: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        out["signs"] = list(self.signs)
        return out


def assess_masking(checks: Iterable[Check], arm: str) -> Masking:
    """The one place that decides whether an arm's white-box numbers are masked (docs/attacks.md)."""
    mine = [c for c in checks if c.arm == arm]
    signs = tuple(c.name for c in mine if c.status == CheckStatus.FAIL and c.name in MASKING_SIGNS)
    if signs:
        return Masking(arm, MaskingStatus.MASKED, signs, "failed: " + ", ".join(signs))
    compared = [c for c in mine if c.name in MASKING_SIGNS[1:]]  # every sign but the gradient statistics
    if compared and all(c.status == CheckStatus.NOTHING_ATTACKED for c in compared):
        return Masking(arm, MaskingStatus.NOTHING_ATTACKED, (), "no test image is classified correctly")
    adaptive = [c for c in mine if c.name in _ADAPTIVE_PRESENCE]
    if not any(c.compared for c in adaptive):
        reason = "no adaptive (BPDA, surrogate, transfer) or gradient-free attack was run"
        return Masking(arm, MaskingStatus.UNCHECKED, (), reason)
    unclear = tuple(c.name for c in mine if c.status == CheckStatus.INCONCLUSIVE and c.name in MASKING_SIGNS)
    if unclear:
        reason = "too few images to tell (a gap not significant after Holm, or a comparison that could not fail): "
        return Masking(arm, MaskingStatus.INCONCLUSIVE, unclear, reason + ", ".join(unclear))
    reason = "adaptive or gradient-free attacks ran, every masking sign could have failed and none did"
    return Masking(arm, MaskingStatus.NOT_DETECTED, (), reason)


def checks_payload(checks: list[Check], arms_with_quantizer: Iterable[str] = ()) -> dict[str, Any]:
    """The ``checks.json`` document (docs/run-format.md)."""
    quantizer = list(arms_with_quantizer)
    return {
        "verdict": verdict(checks),
        "status": verdict_status(checks),
        "masking": {arm: assess_masking(checks, arm).as_dict() for arm in quantizer},
        "checks": [c.to_dict() for c in checks],
    }
