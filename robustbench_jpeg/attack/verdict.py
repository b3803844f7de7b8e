"""From checks to one verdict, and the one place that decides whether an arm's white-box numbers are masked.

The verdict has three states:

* ``FAIL``: some check failed (a significant violation, or a hard threshold such as zero gradients);
* ``WARN``: nothing failed, but a check could not compare anything, a violation was not significant, more than
  half of the applicable checks were skipped, or an arm with a quantizer faced no adaptive attack;
* ``OK``: every applicable check compared something and held.

:func:`assess_masking` is used by ``checks.json`` and by the report's conclusion alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .checks import Check

__all__ = ["verdict_status", "verdict", "Masking", "assess_masking", "checks_payload", "MASKING_SIGNS"]

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


def verdict_status(checks: Iterable[Check]) -> str:
    checks = list(checks)
    if any(c.status == "fail" for c in checks):
        return "FAIL"
    skips = sum(c.status == "skip" for c in checks)
    if any(c.status == "warn" for c in checks) or (checks and skips > len(checks) / 2):
        return "WARN"
    return "OK"


def verdict(checks: Iterable[Check]) -> str:
    """One line: the status, then which checks failed or warned, and the counts."""
    checks = list(checks)
    status = verdict_status(checks)
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "fail", "warn", "skip")}
    tail = (
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['warn']} warned, {counts['skip']} skipped; "
        "see checks.json"
    )
    fails = [f"{c.name}[{c.arm}]" for c in checks if c.status == "fail"]
    warns = [f"{c.name}[{c.arm}]" for c in checks if c.status == "warn"]
    parts = []
    if fails:
        parts.append(f"failed: {', '.join(fails)}")
    if warns:
        parts.append(f"warnings: {', '.join(warns)}")
    if status == "WARN" and not warns:
        parts.append(f"more than half of the checks were skipped ({counts['skip']} of {len(checks)})")
    return f"{status}: " + ("; ".join(parts) + ". " if parts else "") + tail + "."


@dataclass(frozen=True)
class Masking:
    """Is an arm's white-box (soft-gradient) robustness number masked?

    ``status``: ``masked`` (a masking sign failed), ``unchecked`` (no adaptive or gradient-free attack ran, so masking
    is not ruled out), ``not detected`` (adaptive attacks ran and no sign failed). ``signs``: the failed checks.
    """

    arm: str
    status: str
    signs: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["signs"] = list(self.signs)
        return out


def assess_masking(checks: Iterable[Check], arm: str) -> Masking:
    mine = [c for c in checks if c.arm == arm]
    signs = tuple(c.name for c in mine if c.status == "fail" and c.name in MASKING_SIGNS)
    if signs:
        return Masking(arm, "masked", signs, "failed: " + ", ".join(signs))
    adaptive = [c for c in mine if c.name in _ADAPTIVE_PRESENCE]
    if not any(c.compared for c in adaptive):
        return Masking(arm, "unchecked", (), "no adaptive (BPDA, surrogate, transfer) or gradient-free attack was run")
    return Masking(arm, "not detected", (), "adaptive or gradient-free attacks ran and no masking sign failed")


def checks_payload(checks: list[Check], arms_with_quantizer: Iterable[str] = ()) -> dict[str, Any]:
    """The ``checks.json`` document (docs/run-format.md)."""
    quantizer = list(arms_with_quantizer)
    return {
        "verdict": verdict(checks),
        "status": verdict_status(checks),
        "masking": {arm: assess_masking(checks, arm).as_dict() for arm in quantizer},
        "checks": [c.to_dict() for c in checks],
    }
