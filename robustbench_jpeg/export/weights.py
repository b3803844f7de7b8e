"""The weights of each arm as ``model.safetensors`` (no pickle) with a Hugging Face-style model card.

Per arm, in ``OUT/<arm>/``: ``model.safetensors`` (the state dict of the whole model: JPEG layer, normalization,
backbone; the card is in its metadata too), ``card.json`` (a copy, to rebuild the architecture) and ``README.md``
(YAML front matter: license, library, pipeline tag, tags, datasets, metrics, model-index with each radius and
image count in the metric's ``args``; then how to load it, what it is, intended use, limitations and citation).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..provenance import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..runfolder import arm_display
from .common import ExportError, arm_cards, worst_points

LOAD_SNIPPET = """```python
import json
from safetensors.torch import load_file
from robustbench_jpeg import JpegConfig, create_model

card = json.load(open("card.json"))
jpeg = JpegConfig.from_dict(card["jpeg"]) if card.get("jpeg") else None
model = create_model(card["model"], num_classes=card["num_classes"], jpeg=jpeg)
model.load_state_dict(load_file("model.safetensors"))
model.eval()  # RGB in [0, 1], (N, 3, 32, 32) -> logits
```"""

# the Hugging Face Hub id of each data set this toolkit trains on (cifar100-mini is a subset of CIFAR-100's own files)
HUB_DATASETS = {"cifar100": "uoft-cs/cifar100", "cifar100-mini": "uoft-cs/cifar100"}
CITATION = """```bibtex
@inproceedings{salamah2025jpegdl,
  title     = {{JPEG} Inspired Deep Learning},
  author    = {Salamah, Ahmed H. and Zheng, Kaixiang and Liu, Yiwen and Yang, En-Hui},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  note      = {arXiv:2410.07081}
}
```

and the toolkit as its `CITATION.cff` says."""


def state_dict(arm_dir: Path) -> dict:
    from ..checkpoint import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(arm_dir)  # weights_only: never unpickles arbitrary objects
    except (CheckpointError, FileNotFoundError) as exc:
        raise ExportError(f"{arm_dir}: {exc}") from None
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise ExportError(f"{arm_dir}: the checkpoint holds no model weights; retrain or resume the arm")
    return {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}


def front_matter(card: dict, arm: str, robust: list[dict]) -> str:
    dataset = str(card.get("dataset"))
    hub_id = HUB_DATASETS.get(dataset, dataset)
    metrics = []
    if isinstance(card.get("clean_top1"), (int, float)):
        metrics.append(
            {
                "type": "accuracy",
                "name": "clean top-1 (test set, last epoch)",
                "value": round(100 * card["clean_top1"], 2),
            }
        )
    for r in robust:
        metrics.append(
            {
                "type": "accuracy",
                "name": f"robust accuracy, worst case over the attacks run ({r['norm']})",
                "value": r["acc"],
                "args": {"threat_model": r["norm"], "eps": r["eps_value"], "eps_text": r["eps"], "n": r["n"]},
            }
        )
    meta = {
        "license": "mit",
        "library_name": "pytorch",
        "pipeline_tag": "image-classification",
        "tags": ["adversarial-robustness", "jpeg-dl", "robustbench-jpeg", "safetensors", str(card.get("model")), arm],
        "datasets": [hub_id],
        "metrics": ["accuracy"],
        "model-index": [
            {
                "name": f"{card.get('model')}-{arm}",
                "results": [
                    {
                        "task": {"type": "image-classification", "name": "Image Classification"},
                        "dataset": {"type": hub_id, "name": dataset, "split": "test"},
                        "metrics": metrics,
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _robustness_section(robust: list[dict], masking: str | None) -> list[str]:
    """The model card's robustness table (worst case per radius, from the run's results), or nothing."""
    if not robust:
        return []
    lines = [
        "## Robustness (from the run's results.csv)",
        "",
        "| threat model | eps | robust accuracy (%) | test images |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['norm']} | {r['eps']} | {r['acc']:.2f} | {r['n']} |" for r in robust]
    return lines + [
        "",
        "Worst case over every attack the run holds at that radius or below (per image), so an upper "
        "bound on the true robust accuracy." + (f" Gradient-masking check: {masking}." if masking else ""),
        "",
    ]


def model_card(card: dict, arm: str, robust: list[dict], masking: str | None) -> str:
    recipe = {k: card.get(k) for k in ("epochs", "epochs_done", "recipe", "jpeg", "seed")}
    lines = [
        front_matter(card, arm, robust),
        f"# {card.get('model')}: {arm_display(arm)} arm",
        "",
        f"A CIFAR-style classifier ({card.get('model')}, {card.get('num_classes')} classes, trained on "
        f"{card.get('dataset')}) from a robustbench-jpeg run: the {arm_display(arm)} arm of a paired experiment "
        "asking whether JPEG-DL (Salamah et al., ICLR 2025, arXiv 2410.07081) makes classifiers more robust.",
        "Input: RGB in [0, 1]; normalization (and the JPEG layer, if any) are inside the model.",
        "",
        "## Load",
        "",
        LOAD_SNIPPET,
        "",
        "## Training (from card.json)",
        "",
        "```json\n" + json.dumps(recipe, indent=2, default=str) + "\n```",
        "",
    ]
    lines += _robustness_section(robust, masking)
    lines += [
        "## Intended use",
        "",
        "Research on adversarial robustness: reproducing or extending the paired baseline / JPEG-DL comparison "
        "(attacking it, comparing it with other defences, inspecting the learned quantization tables). Not for "
        "deployment: it classifies 32x32 CIFAR-100-style images only.",
        "",
        "## Limitations",
        "",
        f"- One training run (seed {card.get('seed')}): {card.get('epochs_done')} of {card.get('epochs')} planned "
        f"epochs on {card.get('dataset')}; other seeds and recipes give other accuracies.",
        "- Robust accuracies are upper bounds: the worst case over the attacks that were run, on the first test "
        "images only; a stronger attack can only lower them. A soft quantizer can mask gradients, so the JPEG-DL "
        "arm's white-box numbers need the adaptive attacks and the masking check beside them.",
        "- No adversarial training: neither arm is meant to be robust; the question is whether JPEG-DL adds any.",
        "",
        "## Citation",
        "",
        "The method evaluated:",
        "",
        CITATION,
        "",
        "## Provenance",
        "",
        f"git sha {card.get('git_sha')}, device {card.get('device')}, versions "
        f"{json.dumps(card.get('versions'), default=str)}.",
        "",
    ]
    return "\n".join(lines)


def export_weights(run_dir: Path, out: Path, arms: tuple[str, ...] | None) -> tuple[list[Path], list[str]]:
    from safetensors.torch import save

    cards = arm_cards(run_dir, arms)
    warnings: list[str] = []
    points, checks = [], {}
    if (run_dir / "results.csv").is_file():
        try:
            points, run = worst_points(run_dir)
            from ..evaluation import assess_masking

            checks = {arm: assess_masking(run.checks_now or [], arm).status for arm in cards}
        except ExportError as exc:
            warnings.append(f"no robustness numbers in the model cards: {exc}")
    written = []
    for arm, card in cards.items():
        weights = state_dict(run_dir / arm)
        blob = save(weights, metadata={"format": "pt", "card": json.dumps(card, default=str)})
        folder = out / arm
        atomic_write_bytes(folder / "model.safetensors", blob)
        atomic_write_json(folder / "card.json", card)
        robust = [
            {
                "norm": p.norm,
                "eps": f"{p.eps_key:g}/255" if p.norm == "linf" else f"{p.eps_key:g}",
                "eps_value": round(float(p.eps), 8),
                "acc": round(100 * p.acc, 2),
                "n": p.n,
            }
            for p in points
            if p.arm == arm and p.eps_key > 0
        ]
        atomic_write_text(folder / "README.md", model_card(card, arm, robust, checks.get(arm)))
        written += [folder / "model.safetensors", folder / "card.json", folder / "README.md"]
    return written, warnings
