"""The weights of each arm as ``model.safetensors`` (no pickle) with a Hugging Face-style model card.

Per arm, in ``OUT/<arm>/``: ``model.safetensors`` (the state dict of the whole model: JPEG layer, normalization,
backbone; the card is in its metadata too), ``card.json`` (a copy, to rebuild the architecture) and ``README.md``
(YAML front matter: license, library, tags, datasets, metrics, model-index; then how to load it and what it is).
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
                "name": f"robust accuracy, worst case over the attacks run, {r['eps']} ({r['n']} test images)",
                "value": r["acc"],
            }
        )
    meta = {
        "license": "mit",
        "library_name": "pytorch",
        "tags": [
            "image-classification",
            "adversarial-robustness",
            "jpeg-dl",
            "robustbench-jpeg",
            "safetensors",
            str(card.get("model")),
            arm,
        ],
        "datasets": [str(card.get("dataset"))],
        "metrics": ["accuracy"],
        "model-index": [
            {
                "name": f"{card.get('model')}-{arm}",
                "results": [
                    {
                        "task": {"type": "image-classification", "name": "Image Classification"},
                        "dataset": {
                            "type": str(card.get("dataset")),
                            "name": str(card.get("dataset")),
                            "split": "test",
                        },
                        "metrics": metrics,
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


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
    if robust:
        lines += [
            "## Robustness (from the run's results.csv)",
            "",
            "| threat model | eps | robust accuracy (%) | test images |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r['norm']} | {r['eps']} | {r['acc']:.2f} | {r['n']} |" for r in robust]
        lines += [
            "",
            "Worst case over every attack the run holds at that radius or below (per image), so an upper "
            "bound on the true robust accuracy." + (f" Gradient-masking check: {masking}." if masking else ""),
            "",
        ]
    lines += [
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
                "acc": round(100 * p.acc, 2),
                "n": p.n,
            }
            for p in points
            if p.arm == arm and p.eps_key > 0
        ]
        atomic_write_text(folder / "README.md", model_card(card, arm, robust, checks.get(arm)))
        written += [folder / "model.safetensors", folder / "card.json", folder / "README.md"]
    return written, warnings
