"""Leaderboard-style entries in the field layout of RobustBench's ``model_info/<dataset>/<threat model>/*.json``
files (github.com/RobustBench/robustbench): ``link``, ``name``, ``authors``, ``additional_data``,
``number_forward_passes``, ``dataset``, ``venue``, ``architecture``, ``eps``, ``clean_acc``, ``reported``,
``autoattack_acc``, ``footnote`` (accuracies as percent strings with 2 decimals).

Filled from the model card and the worst case over every attack this toolkit ran. ``autoattack_acc`` stays null
(no standard AutoAttack evaluation is claimed); our number is ``robust_acc`` under ``robustbench_jpeg`` together
with the attacks it covers. This project is not affiliated with RobustBench.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..evaluation import assess_masking
from ..provenance import atomic_write_text
from ..runfolder import ARMS, arm_display
from .common import ExportError, arm_cards, checked_name, worst_points

PAPER_LINK = "https://arxiv.org/abs/2410.07081"
STANDARD_EPS = {"linf": 8.0, "l2": 0.5}  # RobustBench's radii: 8/255 L-inf (table units), 0.5 L2
THREAT = {"linf": "Linf", "l2": "L2"}
README = """# RobustBench-style entries (robustbench-jpeg export)

**This project is not affiliated with RobustBench**; these entries have not been submitted to or checked by it.

One JSON file per arm and threat model, in the field layout of RobustBench's leaderboard files
(`model_info/<dataset>/<threat model>/<name>.json` in github.com/RobustBench/robustbench).

- `clean_acc`: accuracy (%) on the first `robustbench_jpeg.clean_n_examples` test images.
- `robustbench_jpeg.robust_acc`: robust accuracy (%) under the worst case over every attack this toolkit ran at
  radius `eps` or below (per image), on the first `robustbench_jpeg.n_examples` test images; the attacks are listed
  in `robustbench_jpeg.worst_case_attacks`. It is an upper bound on the true robust accuracy.
- `autoattack_acc` is null: no standard AutoAttack evaluation is claimed. `reported` is null: the paper reports no
  number for these models.
- `robustbench_jpeg.masking`: whether the sanity checks found gradient masking in the arm's white-box numbers.
- `robustbench_jpeg.standard_eps`: false when the run has no attack at RobustBench's radius (8/255 L-inf, 0.5 L2);
  `eps` is then the largest radius attacked up to that one, or the smallest above it.
"""


def _pick(points, norm: str):
    """The point at RobustBench's radius, else the largest below it, else the smallest above it."""
    mine = sorted((p for p in points if p.norm == norm and p.eps_key > 0), key=lambda p: p.eps_key)
    if not mine:
        return None, False
    standard = STANDARD_EPS.get(norm)
    exact = [p for p in mine if standard is not None and abs(p.eps_key - standard) < 1e-6]
    if exact:
        return exact[0], True
    below = [p for p in mine if standard is not None and p.eps_key < standard]
    return (below[-1] if below else mine[0]), False


def _eps_text(norm: str, eps_key: float) -> str:
    return f"{eps_key:g}/255" if norm == "linf" else f"{eps_key:g}"


def entry(card: dict, arm: str, point, standard: bool, masking: str, run_name: str) -> dict:
    """One entry (RobustBench fields first, ours under ``robustbench_jpeg``)."""
    info = ARMS.get(arm)
    jpeg = bool(card.get("jpeg")) or (info is not None and info.has_jpeg)
    attacks = list(point.attacks)
    footnote = (
        f"Trained and evaluated with robustbench-jpeg (run {run_name}, arm {arm}); robust accuracy is the "
        f"worst case over {len(attacks)} attack cell(s) at eps <= {_eps_text(point.norm, point.eps_key)} "
        f"on {point.n} test images, not AutoAttack. Gradient masking check: {masking}."
    )
    return {
        "link": PAPER_LINK if jpeg else None,
        "name": f"{card.get('model', '?')} {arm_display(arm)} (robustbench-jpeg run {run_name})",
        "authors": None,
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": card.get("dataset"),
        "venue": "ICLR 2025 (method)" if arm == "jpegdl" else None,
        "architecture": str(card.get("model")) + (" with a JPEG front end" if jpeg else ""),
        "eps": _eps_text(point.norm, point.eps_key),
        "clean_acc": None if point.clean_acc is None else f"{100 * point.clean_acc:.2f}",
        "reported": None,
        "autoattack_acc": None,
        "footnote": footnote,
        "robustbench_jpeg": {
            "threat_model": THREAT.get(point.norm, point.norm),
            "robust_acc": f"{100 * point.acc:.2f}",
            "n_examples": point.n,
            "clean_n_examples": point.clean_n,
            "worst_case_attacks": attacks,
            "standard_eps": standard,
            "masking": masking,
            "run": run_name,
            "train_seed": card.get("seed"),
            "arm": arm,
            "jpeg": card.get("jpeg"),
            "not_affiliated_with_robustbench": True,
        },
    }


def export_robustbench(run_dir: Path, out: Path, arms: tuple[str, ...] | None) -> tuple[list[Path], list[str]]:
    cards = arm_cards(run_dir, arms)
    points, run = worst_points(run_dir)
    run_name = checked_name(run.name, "run name")
    written, warnings = [], []
    for arm, card in cards.items():
        mine = [p for p in points if p.arm == arm]
        if not mine:
            warnings.append(f"arm {arm}: no attack in {run_dir / 'results.csv'}, so no entry")
            continue
        masking = assess_masking(run.checks_now or [], arm).status
        for norm in sorted({p.norm for p in mine}):
            point, standard = _pick(mine, norm)
            if point is None:
                continue
            if not standard:
                warnings.append(
                    f"arm {arm}, {THREAT.get(norm, norm)}: no attack at RobustBench's radius; the entry "
                    f"uses eps {_eps_text(norm, point.eps_key)}"
                )
            dataset = checked_name(str(card.get("dataset", run.dataset)), "dataset name")
            model = checked_name(str(card.get("model", run.model)), "model name")
            name = checked_name(f"{model}_{arm}_{run_name}", "entry name") + ".json"
            path = out / dataset / THREAT.get(norm, checked_name(norm, "norm")) / name
            atomic_write_text(path, json.dumps(entry(card, arm, point, standard, masking, run_name), indent=2) + "\n")
            written.append(path)
    if not written:
        raise ExportError(f"{run_dir}: no arm has a worst case to export (run `jpeg-robust attack` on it first)")
    atomic_write_text(out / "README.md", README)
    return [*written, out / "README.md"], warnings
