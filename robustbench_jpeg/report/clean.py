"""Clean-accuracy comparisons from the per-sample ``clean`` cells: JPEG-DL against the baseline, and each arm with a
soft quantizer scored at an evaluation-time alpha (the official script's protocol) against its trained alpha."""

from __future__ import annotations

import pandas as pd

from ..runfolder import ARMS, BASELINE, JPEGDL, arm_display, arm_order
from ..stats import paired_from_samples
from .cells import CLEAN
from .fmt import pct, pvalue
from .load import Run


def _clean_vectors(run: Run, alpha: float | None) -> dict:
    """Per arm, the correctness vector of its largest ``clean`` cell at ``alpha`` (None: the trained alpha)."""
    clean = run.results[run.results["attack"] == CLEAN]
    if "eval_alpha" in clean:
        values = clean["eval_alpha"].astype(float)
        clean = clean[values.isna()] if alpha is None else clean[(values - alpha).abs() < 1e-12]
    elif alpha is not None:
        return {}
    return {row.arm: run.samples[row.cell_id] for row in clean.sort_values("n").itertuples()}  # largest n wins


def clean_comparison(runs: list[Run]) -> pd.DataFrame:
    """Per run: JPEG-DL minus baseline clean accuracy from the two ``clean`` cells, on their common first-n images."""
    out = []
    for run in runs:
        vec = _clean_vectors(run, None)
        if BASELINE in vec and JPEGDL in vec:
            m = min(vec[BASELINE].size, vec[JPEGDL].size)
            jpeg, base = vec[JPEGDL][:m], vec[BASELINE][:m]
            out.append(
                {
                    "run": run.name,
                    "acc_jpegdl": float(jpeg.mean()),
                    "acc_baseline": float(base.mean()),
                    **paired_from_samples(jpeg, base).as_dict(),
                }
            )
    return pd.DataFrame(out)


def alpha_clean_sentences(runs: list[Run], alpha: float) -> list[str]:
    """Per run and soft-quantizer arm: clean accuracy at ``alpha`` against the trained alpha on the same images, with
    the images whose correctness changes (exact McNemar). Says so when there is nothing to compare."""
    out = []
    for run in runs:
        at_alpha, trained = _clean_vectors(run, alpha), _clean_vectors(run, None)
        soft = [a for a in at_alpha if a in ARMS and ARMS[a].deployed_quantizer == "soft"]
        for arm in sorted(soft, key=arm_order):
            where = f" (run `{run.name}`)" if len(runs) > 1 else ""
            if arm not in trained:
                out.append(f"{arm_display(arm)}{where}: no clean cell at the trained alpha to compare with.")
                continue
            m = min(at_alpha[arm].size, trained[arm].size)
            d = paired_from_samples(at_alpha[arm][:m], trained[arm][:m])
            card = run.cards.get(arm)
            card_alpha = (card.jpeg or {}).get("alpha") if card is not None else None
            trained_text = f"the trained alpha {card_alpha:g}" if card_alpha is not None else "the trained alpha"
            out.append(
                f"{arm_display(arm)}{where}, clean accuracy on the first {m} test images: "
                f"{pct(float(at_alpha[arm][:m].mean()))}% at alpha {alpha:g}, {pct(float(trained[arm][:m].mean()))}% "
                f"at {trained_text}; {d.b + d.c} images change correctness ({d.b} correct only at alpha {alpha:g}, "
                f"{d.c} only at {trained_text}; McNemar p = {pvalue(d.p_mcnemar)})."
            )
    return out
