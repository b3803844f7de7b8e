"""Entries at RobustBench's conventions: the fields and types of RobustBench's own ``model_info/<dataset>/<threat
model>/*.json`` files (github.com/RobustBench/robustbench) and of the generator that renders them
(``robustbench/leaderboard/template.py`` and ``leaderboard.html.j2``).

In RobustBench's 188 L-inf/L2 entries, ``link``, ``name``, ``authors``, ``venue``, ``architecture``, ``eps``,
``clean_acc``, ``reported`` and ``autoattack_acc`` are always strings (accuracies as percent with 2 decimals),
``additional_data`` a bool and ``number_forward_passes`` an int, never null; ``footnote`` is a string or null,
``external`` (the best known robust accuracy, from an evaluation stronger than AutoAttack) an optional string,
``unreliable`` (the AutoAttack evaluation is potentially unreliable) an optional bool. The generator sorts by
``external`` when present, else ``autoattack_acc``.

An arm gets a **leaderboard entry** (``OUT/cifar100/Linf/<name>.json``, the layout the generator reads) only where a
leaderboard exists and the numbers mean what RobustBench's mean: CIFAR-100, L-inf 8/255, the reference AutoAttack
standard (the ``autoattack`` spec's chain on the default engine) run on the deployed model over the whole test set.
Then ``autoattack_acc`` is that chain's robust accuracy, ``external`` the toolkit's worst case over every attack when
it is lower, ``unreliable`` the masking verdict (true: a masking sign failed; false: adaptive attacks found none;
absent: unchecked). Anything else (cifar100-mini, other radii, L2, AutoAttack missing, on a subset, or run with
torchattacks) is written under ``OUT/extra/`` with the reasons in ``robustbench_jpeg.extra_because``, never in a
leaderboard folder. This project is not affiliated with RobustBench.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..evaluation import assess_masking
from ..provenance import atomic_write_text
from ..runfolder import ARMS, ENGINE_NOT_USED, arm_display
from ..runfolder.cell import Setting
from .common import ExportError, WorstPoint, arm_cards, checked_name, worst_points

PAPER_LINK = "https://arxiv.org/abs/2410.07081"
STANDARD_EPS = {"linf": 8.0, "l2": 0.5}  # RobustBench's radii: 8/255 L-inf (table units), 0.5 L2
THREAT = {"linf": "Linf", "l2": "L2"}
LEADERBOARDS = {("cifar100", "linf"): (8.0, 10_000)}  # (dataset, norm) -> (radius in table units, test images)
# the autoattack spec's chain as AutoAttack standard runs it: (method, iterations or queries, parameters)
AUTOATTACK_CHAIN = (
    ("apgd-ce", 100, ""),
    ("apgd-t", 100, "target_classes=9"),
    ("fab-t", 100, "target_classes=9"),
    ("square", 5000, "p_init=0.8"),
)
README = """# RobustBench entries (robustbench-jpeg export)

**This project is not affiliated with RobustBench**; these entries have not been submitted to or checked by it.

`cifar100/Linf/*.json`: entries in the fields and types of RobustBench's leaderboard files
(`model_info/<dataset>/<threat model>/<name>.json` in github.com/RobustBench/robustbench), written only for an arm
whose reference AutoAttack standard (the `autoattack` spec, default engine) ran at 8/255 on the deployed model over
the whole CIFAR-100 test set: `autoattack_acc` is that number, `external` the toolkit's worst case over every attack
when lower, `unreliable` the masking verdict (absent when unchecked), `reported` the number this evaluation reports
(the lower of the two). When the spec ran as a radius cascade (`robustbench_jpeg.autoattack_cascade`, the footnote
says so) an image AutoAttack broke at a smaller radius of the sweep also counts as broken at 8/255 (the example lies
inside the 8/255 ball), so `autoattack_acc` is at most what AutoAttack alone at 8/255 gives.

`extra/<dataset>/<threat model>/*.json`: everything else (no such leaderboard, another radius, AutoAttack missing or
on a subset); the reasons are in `robustbench_jpeg.extra_because`. They are not leaderboard entries.
"""


@dataclass(frozen=True)
class AutoAttackResult:
    """The reference AutoAttack standard chain's robust accuracy on an arm's deployed model at one radius."""

    acc: float
    n: int
    cascade: bool = False  # run as a radius cascade: also holds what the chain broke at smaller radii


def _params(text: object) -> str:
    return "" if not isinstance(text, str) else text


def reference_autoattack(results: pd.DataFrame, arm: str, eps: float) -> AutoAttackResult | None:
    """The arm's ``autoattack`` chain at ``eps`` (raw scale) run as AutoAttack standard on the deployed model (white-box
    gradients of the deployed forward, the default engine), or None."""
    info = ARMS.get(arm)
    deployed = {"none"} if info is None or info.deployed_quantizer is None else {info.deployed_quantizer}
    rows = results[(results["arm"] == arm) & (results["source_arm"] == arm) & (results["norm"] == "linf")]
    rows = rows[((rows["eps"].astype(float) - eps).abs() < 1e-9) & rows["eval_alpha"].isna()]
    by_id = {str(r.cell_id): r for r in rows.itertuples()}
    best = None
    for last in rows[rows["attack"] == "square"].itertuples():
        chain, row = [last], last
        while isinstance(row.after, str) and row.after in by_id and len(chain) <= len(AUTOATTACK_CHAIN):
            row = by_id[row.after]
            chain.append(row)
        chain.reverse()
        if _is_standard_chain(chain, deployed) and (best is None or int(last.n) > best.n):
            cascade = any(Setting.from_row(r).below for r in chain)  # built on a smaller radius
            best = AutoAttackResult(acc=float(last.robust_acc), n=int(last.n), cascade=cascade)
    return best


def _is_standard_chain(chain: list, deployed: set[str]) -> bool:
    if len(chain) != len(AUTOATTACK_CHAIN) or (isinstance(chain[0].after, str) and chain[0].after):
        return False
    for row, (method, steps, params) in zip(chain, AUTOATTACK_CHAIN, strict=True):
        if row.attack != method or int(row.steps) != steps or _params(row.params) != params or int(row.restarts) != 1:
            return False
        if str(row.torchattacks) != ENGINE_NOT_USED:  # computed by torchattacks (or by 0.1), not the reference code
            return False
        if method != "square" and row.grad not in deployed:
            return False
    return True


def _pick(points: list[WorstPoint], norm: str) -> WorstPoint | None:
    """The point at RobustBench's radius, else the largest below it, else the smallest above it."""
    mine = sorted((p for p in points if p.norm == norm and p.eps_key > 0), key=lambda p: p.eps_key)
    standard = STANDARD_EPS.get(norm)
    exact = [p for p in mine if standard is not None and abs(p.eps_key - standard) < 1e-6]
    below = [p for p in mine if standard is not None and p.eps_key < standard]
    return exact[0] if exact else below[-1] if below else mine[0] if mine else None


def _eps_text(norm: str, eps_key: float) -> str:
    return f"{eps_key:g}/255" if norm == "linf" else f"{eps_key:g}"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}"


def extra_reasons(dataset: str, point: WorstPoint, autoattack: AutoAttackResult | None) -> list[str]:
    """Why an arm's point is not a RobustBench leaderboard entry (empty: it is one)."""
    board = LEADERBOARDS.get((dataset, point.norm))
    if board is None:
        where = f"{dataset} {THREAT.get(point.norm, point.norm)}"
        if dataset == "cifar100-mini":
            where += " (a 1,000-image subset of the CIFAR-100 test set that ships with this toolkit)"
        return [f"RobustBench has no {where} leaderboard"]
    radius, test_size = board
    reasons = []
    if abs(point.eps_key - radius) > 1e-6:
        reasons.append(f"the leaderboard's radius is {_eps_text(point.norm, radius)}, not attacked here")
    elif autoattack is None:
        reasons.append(
            "the reference AutoAttack standard (the autoattack spec, default engine) did not run on the deployed model"
        )
    elif autoattack.n < test_size:
        reasons.append(f"AutoAttack ran on {autoattack.n} of the {test_size:,} test images")
    return reasons


def entry(
    card: dict,
    arm: str,
    point: WorstPoint,
    masking: str,
    run_name: str,
    autoattack: AutoAttackResult | None,
    reasons: list[str],
) -> dict:
    """One entry: RobustBench's fields with RobustBench's types (no nulls), ours under ``robustbench_jpeg``."""
    info = ARMS.get(arm)
    jpeg = bool(card.get("jpeg")) or (info is not None and info.has_jpeg)
    worst = _percent(point.acc)
    aa = None if autoattack is None else _percent(autoattack.acc)
    external = aa is not None and point.n >= autoattack.n and point.acc < autoattack.acc
    eps = _eps_text(point.norm, point.eps_key)
    out = {
        "link": PAPER_LINK,
        "name": f"{card.get('model', '?')} {arm_display(arm)} (robustbench-jpeg run {run_name})",
        "authors": str(card.get("authors") or ""),
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": str(card.get("dataset")),
        "venue": "ICLR 2025 (method)" if arm == "jpegdl" else "robustbench-jpeg (unpublished)",
        "architecture": str(card.get("model")) + (" with a JPEG front end" if jpeg else ""),
        "eps": eps,
        "clean_acc": _percent(point.clean_acc or 0.0),
        "reported": worst if aa is None or external else aa,
    }
    if aa is not None:
        out["autoattack_acc"] = aa
    if external:
        out["external"] = worst
    out["footnote"] = _footnote(arm, point, masking, run_name, autoattack, eps)
    if masking in ("masked", "not detected"):
        out["unreliable"] = masking == "masked"
    ours = {
        "leaderboard": not reasons,
        "extra_because": reasons,
        "threat_model": THREAT.get(point.norm, point.norm),
        "worst_case_acc": worst,
        "n_examples": point.n,
        "clean_n_examples": point.clean_n,
        "autoattack_n_examples": None if autoattack is None else autoattack.n,
        "autoattack_cascade": None if autoattack is None else autoattack.cascade,
        "worst_case_attacks": list(point.attacks),
        "masking": masking,
        "run": run_name,
        "train_seed": card.get("seed"),
        "arm": arm,
        "jpeg": card.get("jpeg"),
        "not_affiliated_with_robustbench": True,
    }
    out["robustbench_jpeg"] = {k: v for k, v in ours.items() if v is not None}
    return out


def _footnote(arm, point, masking, run_name, autoattack, eps) -> str:
    aa = (
        f"AutoAttack standard (reference code) on {autoattack.n} test images"
        if autoattack is not None
        else "no AutoAttack standard on the deployed model"
    )
    if autoattack is not None and autoattack.cascade:
        aa += (
            ", run as a radius cascade (an image broken at a smaller radius counts as broken: at most the "
            "standalone number)"
        )
    return (
        f"Trained and evaluated with robustbench-jpeg (run {run_name}, arm {arm}); {aa}; worst case over "
        f"{len(point.attacks)} attack cell(s) at eps <= {eps} on {point.n} test images. "
        f"Gradient masking check: {masking}."
    )


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
        dataset = checked_name(str(card.get("dataset", run.dataset)), "dataset name")
        model = checked_name(str(card.get("model", run.model)), "model name")
        for norm in sorted({p.norm for p in mine}):
            point = _pick(mine, norm)
            if point is None:
                continue
            autoattack = reference_autoattack(run.results, arm, point.eps) if norm == "linf" else None
            reasons = extra_reasons(dataset, point, autoattack)
            folder = (out / "extra" if reasons else out) / dataset / THREAT.get(norm, checked_name(norm, "norm"))
            path = folder / (checked_name(f"{model}_{arm}_{run_name}", "entry name") + ".json")
            document = entry({**card, "dataset": dataset}, arm, point, masking, run_name, autoattack, reasons)
            atomic_write_text(path, json.dumps(document, indent=2) + "\n")
            written.append(path)
            if reasons:
                warnings.append(f"arm {arm}, {THREAT.get(norm, norm)}: not a leaderboard entry ({'; '.join(reasons)})")
    if not written:
        raise ExportError(f"{run_dir}: no arm has a worst case to export (run `jpeg-robust attack` on it first)")
    atomic_write_text(out / "README.md", README)
    return [*written, out / "README.md"], warnings
