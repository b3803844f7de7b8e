"""What the JPEG-DL paper reports (Salamah et al., ICLR 2025, arXiv 2410.07081): shown beside, never inside, our tables.

Sources, first-hand where one could be read (docs/method.md, "Sources"):

* the paper's abstract (arXiv 2410.07081, the ICLR 2025 version): accuracy gains "as much as 20.9%" on
  fine-grained data sets and "enhancing robustness against adversarial attacks";
* the authors' repository (github.com/JpegInspiredDl/JPEG-Inspired-DL): its robustness script attacks
  RepDistiller's ``{model}_vanilla/ckpt_epoch_240.pth`` checkpoints as the baselines, whose top-1 the RepDistiller
  README lists (Tian et al. 2019);
* the per-table numbers (the Table 1 clean-gain range, the robustness figure's ~15% / ~6%) could not be read in the
  paper itself: they come from third-party summaries of the paper (:data:`SECONDARY`), named once wherever they are
  shown.
"""

from __future__ import annotations

import pandas as pd

PAPER_SOURCE = "Salamah, Zheng, Liu, Yang: JPEG Inspired Deep Learning, ICLR 2025, arXiv 2410.07081"
REPOSITORY = "github.com/JpegInspiredDl/JPEG-Inspired-DL"
SECONDARY = "third-party summaries of the paper, not checked against its tables"
COLUMN = "Salamah et al. (not ours)"  # the headline table's column header for the paper's claims

# CIFAR-100 top-1 (%) of the RepDistiller (CRD, Tian et al. 2019) pretrained baselines, from the RepDistiller README;
# the authors' robustness script attacks these checkpoints as its baselines. Keys are this toolkit's registry names.
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
CRD_SOURCE = f"RepDistiller README (Tian et al. 2019); the checkpoints {REPOSITORY}'s robustness script attacks"

PAPER_CLAIMS = {
    "clean_gain": {
        "quantity": "JPEG-DL clean top-1 gain over the baseline, CIFAR-100",
        "value": "+0.67% to +1.55% over 7 architectures (largest for VGG13; JPEG-DL mean ± std of 3 runs)",
        "source": f"paper, Table 1, as given by {SECONDARY}",
    },
    "robust_gain": {
        "quantity": "Robust accuracy gain over the baseline, CIFAR-100, L-inf",
        "value": "up to ~15% (FGSM) and ~6% (PGD-5), eps 1-4/255 (curves only: no per-eps values published)",
        "source": f"paper, robustness figure (Figure 4), as given by {SECONDARY}",
    },
    "abstract": {
        "quantity": "Abstract",
        "value": "accuracy gains 'as much as 20.9%' (fine-grained), 'while enhancing robustness against adversarial "
        "attacks'",
        "source": "paper, abstract (read first-hand)",
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
    at eps 0 and the robust-gain claim (FGSM and PGD-5, not a worst case) at eps 1-4/255 (both via SECONDARY)."""
    if norm != "linf":
        return None
    if eps_key == 0:
        return "+0.67% to +1.55% clean (Table 1)"
    if 1 <= eps_key <= 4:
        return "up to ~15% FGSM, ~6% PGD-5 (Fig. 4)"
    return None


PAPER_CLAIM_NOTE = (
    f"{COLUMN}: the paper's Table 1 and robustness figure (Figure 4) as given by {SECONDARY} (the paper publishes "
    "curves, no per-eps values), for single attacks (FGSM, PGD-5) on the authors' models, not a worst case; not our "
    "measurement and not comparable one-to-one."
)
PAPER_CLAIM_LATEX = f"{SECONDARY}; single attacks on the authors' models, not a worst case"
