"""What the JPEG-DL paper reports (Salamah et al., ICLR 2025, arXiv 2410.07081): shown beside, never inside, our tables.

Source labels (docs/method.md, section 5): [PAPER] the paper's own text, [REVIEW] third-party
reviews that cite the paper's tables (likely, not verified). The CRD baselines are the RepDistiller README values
(Tian et al. 2019), which the paper copied as its Table 1 baselines according to the reviews.
"""

from __future__ import annotations

import pandas as pd

PAPER_SOURCE = "Salamah, Zheng, Liu, Yang: JPEG Inspired Deep Learning, ICLR 2025, arXiv 2410.07081"

# CIFAR-100 top-1 (%) of the CRD / RepDistiller pretrained baselines (RepDistiller README, verified); per [REVIEW]
# these are the baselines of the paper's Table 1. Keys are this toolkit's registry names.
CRD_BASELINE_TOP1 = {
    "resnet56": 72.34,
    "resnet110": 74.31,
    "resnet32x4": 79.42,
    "wrn_40_2": 75.61,
    "vgg13": 74.64,
    "vgg8": 70.36,
    "resnet20": 69.06,
    "resnet32": 71.14,
    "resnet8x4": 72.50,
    "mobilenetv2": 64.60,
    "shufflenetv1": 70.50,
    "shufflenetv2": 71.82,
}
CRD_SOURCE = "[REVIEW] CRD baseline (RepDistiller README, Tian et al. 2019) copied as the paper's Table 1 baseline"

PAPER_CLAIMS = {
    "clean_gain": {
        "quantity": "JPEG-DL clean top-1 gain over the baseline, CIFAR-100",
        "value": "+0.67% to +1.55% over 7 architectures (Table 1; largest for VGG13; JPEG-DL mean ± std of 3 runs)",
        "source": "[REVIEW] paper Table 1 as cited by reviews",
    },
    "robust_gain": {
        "quantity": "Robust accuracy gain over the baseline, CIFAR-100, L-inf",
        "value": "up to ~15% (FGSM) and ~6% (PGD-5), eps 1-4/255 (Figure 4; per-eps values not published)",
        "source": "[REVIEW] paper Figure 4 as cited by reviews",
    },
    "abstract": {
        "quantity": "Abstract",
        "value": "accuracy improvements 'while enhancing robustness against adversarial attacks'",
        "source": "[PAPER] abstract",
    },
}


def paper_table(model: str) -> pd.DataFrame:
    """The "Reported in the paper (not our measurement)" rows for ``model``."""
    top1 = CRD_BASELINE_TOP1.get(model.lower())
    rows = [
        {
            "quantity": f"Baseline clean top-1 (%), {model}",
            "value": f"{top1:.2f}" if top1 is not None else "not reported for this architecture",
            "source": CRD_SOURCE,
        }
    ]
    rows += [dict(claim) for claim in PAPER_CLAIMS.values()]
    return pd.DataFrame(rows, columns=["quantity", "value", "source"])


def paper_claim(norm: str, eps_key: float) -> str | None:
    """The paper's claim that applies to a headline row (L-inf eps in 1/255 units), or None: the clean-accuracy gain
    at eps 0 and the robust-gain claim (FGSM and PGD-5, not a worst case) at eps 1-4/255. Both are [REVIEW]."""
    if norm != "linf":
        return None
    if eps_key == 0:
        return "+0.67% to +1.55% clean (Table 1)"
    if 1 <= eps_key <= 4:
        return "up to ~15% FGSM, ~6% PGD-5 (Fig. 4)"
    return None


PAPER_CLAIM_NOTE = (
    "The paper's column is what Salamah et al. report ([REVIEW]: Table 1 and Figure 4 as cited by reviews; per-eps "
    "values not published), for single attacks (FGSM, PGD-5) on their own models, not a worst case; it is not our "
    "measurement and is not comparable one-to-one."
)
