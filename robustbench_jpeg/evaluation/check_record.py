"""What a sanity check reports (:class:`Check`, :class:`CheckStatus`) and what each check means (:data:`MEANINGS`,
shown beside every failure and in docs/attacks.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MEANINGS = {
    "monotone_in_eps": "Robust accuracy must not rise with eps for a fixed attack; if it does, the attack is failing "
    "at large eps (gradient masking or a broken attack) and the curve understates the true robustness loss.",
    "pgd_not_weaker_than_fgsm": "Multi-step PGD/APGD must be at least as strong as single-step FGSM at equal eps; if "
    "it is weaker, the iterative attack is obstructed (masked or noisy gradients) and its numbers are not reliable.",
    "large_eps_near_zero": "At a huge radius (>= 32/255 L-inf, >= 4 L2) a working white-box attack breaks almost "
    "every clean-correct image; if more than 5% survive, gradients are masked or the attack is broken.",
    "more_iterations_not_weaker": "More steps or restarts of the same attack must not raise robust accuracy; if they "
    "do, the attack has not converged or the gradients are unreliable.",
    "adaptive_not_stronger": "BPDA, surrogate-gradient and transfer attacks must not beat a white-box attack of at "
    "least the same budget; if they do, the white-box number is masked: report the adaptive / worst-case number.",
    "square_not_stronger": "A gradient-free attack (Square) must not beat the gradient attacks at equal eps; if it "
    "does, the gradient attacks are being fooled (masking) and their numbers overstate robustness.",
    "zero_input_gradients": "A healthy differentiable model has almost no exactly-zero input gradients; many exact "
    "zeros (in pixels, or at the quantizer's input in DCT space) mean the gradient is blocked and gradient attacks "
    "through it are meaningless.",
    "clean_matches_card": "Clean accuracy measured by the sweep must match the model card's recorded test accuracy; "
    "a mismatch means the model is loaded or evaluated differently from training (e.g. wrong alpha or tables).",
}


NOTHING_ATTACKED_TEXT = (
    "nothing was attacked: no test image is classified correctly, so every robust accuracy is 0 by default and no "
    "comparison can fail"
)


class CheckStatus(StrEnum):
    """The outcome of one check on one arm (docs/attacks.md, "Sanity checks")."""

    PASS = "pass"  # every comparison held and each one could have failed
    FAIL = "fail"  # a violation significant after Holm within the check, or a hard threshold crossed
    INCONCLUSIVE = "inconclusive"  # a violation not significant after Holm, or a comparison that could not fail
    NOTHING_ATTACKED = "nothing attacked"  # no test image was classified correctly, so no attack had anything to do
    WARN = "warn"  # nothing to compare, or an arm with a quantizer that faced no adaptive attack
    SKIP = "skip"  # the check does not apply


@dataclass(frozen=True)
class Check:
    """One check on one arm, with a :class:`CheckStatus`."""

    name: str
    arm: str
    status: CheckStatus
    detail: str
    meaning: str
    evidence: tuple[dict, ...] = ()
    compared: int = 0  # comparisons (or measurements) the check made; 0 = it could not compare anything

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["status"] = str(self.status)
        out["evidence"] = list(self.evidence)
        return out
