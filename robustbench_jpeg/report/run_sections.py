"""The parts of the report about how the numbers were made: what was run (cards, recipe, attacks, commands,
versions) and the sanity checks. Wide tables and JSON dumps are folded (HTML ``<details>``)."""

from __future__ import annotations

import json

import pandas as pd

from ..evaluation import assess_masking
from ..evaluation import verdict as checks_verdict
from ..runfolder import arm_display, arm_order
from .conclude import adaptive_table
from .load import Run
from .render import Doc

RECIPE_KEYS = ("epochs", "recipe", "jpeg")


def what_was_run(doc: Doc, runs: list[Run]) -> None:
    """Cards (compact table; the full one folded), recipe and config.json (folded JSON), attacks (folded), commands
    (folded), versions and devices."""
    doc.h(2, "What was run")
    _trained_models(doc, runs)
    _recipe(doc, runs)
    doc.h(3, "Attacks")
    settings = _attack_settings(runs)
    doc.p(
        f"{len(settings)} attack settings (arm, method, norm, steps, gradient mode, source, spec; the radii and "
        "numbers of images of each) in the folded table; the per-attack tables above show every number."
    )
    doc.details("every attack setting run").table(settings)
    doc.h(3, "Time")
    doc.p(
        "Minutes per run, step and arm: training (the card's wall time, summed over its sittings) and each attack "
        'spec (the cells\' wall times; clean cells under their spec); the devices are under "Software and hardware".'
    )
    doc.table(timings(runs))
    doc.h(3, "Commands")
    folded = doc.details("the exact commands, from each run's commands.txt")
    for run in runs:
        folded.p(f"Run `{run.name}`:")
        folded.code("\n".join(run.commands) if run.commands else "(commands.txt is missing)")
    doc.h(3, "Software and hardware")
    doc.ul(_provenance(runs))
    warnings = [w for run in runs for w in run.warnings]
    if warnings:
        doc.p("**Input warnings:**")
        doc.ul(warnings)


def _card_rows(run: Run, arm: str, card: dict) -> tuple[dict, dict]:
    """One arm's row of the compact table and of the folded one with every field."""
    best = card.get("best_top1")
    epochs = f"{card.get('epochs_done', '?')}/{card.get('epochs', '?')}"
    compact = {
        "run": run.name,
        "arm": arm_display(arm),
        "seed": str(card.get("seed", run.seed)),
        "epochs": epochs,
        "recipe": recipe_name(card),
        "clean top-1 (%)": _pct(card.get("clean_top1")),
    }
    full = {
        "run": run.name,
        "model": card.get("model", run.model),
        "arm": arm_display(arm),
        "dataset": card.get("dataset", run.dataset),
        "seed": card.get("seed", run.seed),
        "epochs done/planned": epochs,
        "clean top-1 last epoch (%)": _pct(card.get("clean_top1")),
        "best top-1 (%) [epoch; test-set selection]": f"{_pct(best)} [{card.get('best_epoch', '?')}]"
        if best is not None
        else "",
        "device": card.get("device", ""),
        "git": card.get("git_sha", ""),
        "train time (s)": f"{card['wall_seconds']:.0f}" if isinstance(card.get("wall_seconds"), int | float) else "",
    }
    return compact, full


def _trained_models(doc: Doc, runs: list[Run]) -> None:
    rows = [
        _card_rows(run, arm, card.to_dict())
        for run in runs
        for arm, card in sorted(run.cards.items(), key=lambda kv: arm_order(kv[0]))
    ]
    if rows:
        doc.h(3, "Trained models (from the cards)")
        doc.table(pd.DataFrame([compact for compact, _ in rows]))
        doc.details("every field of the cards (best epoch, device, git sha, training time)").table(
            pd.DataFrame([full for _, full in rows])
        )


def _recipe(doc: Doc, runs: list[Run]) -> None:
    """The recipe of each arm (from the first run's cards), how the pooled runs differ, and one config.json."""
    first = next((run for run in runs if run.cards), None)
    if first is not None:
        doc.h(3, "Recipe")
        recipe = {arm: {k: card.to_dict().get(k) for k in RECIPE_KEYS} for arm, card in sorted(first.cards.items())}
        doc.p(f"From the cards of run `{first.name}` (identical across seeds unless noted below).")
        doc.ul([f"{arm_display(arm)}: {recipe_summary(card.to_dict())}" for arm, card in sorted(first.cards.items())])
        doc.details(f"recipe of each arm (JSON, from the cards of `{first.name}`)").code(
            json.dumps(recipe, indent=2, default=str)
        )
        diffs = _differing(runs)
        if diffs:
            doc.p("**Warning:** the runs pooled as seeds differ in: " + "; ".join(diffs) + ".")
    configured = next((run for run in runs if run.config is not None), None)
    if configured is not None:
        doc.details(f"resolved training configuration of run `{configured.name}` (config.json)").code(
            json.dumps(configured.config, indent=2, default=str)
        )


def recipe_name(card: dict) -> str:
    """The name of the recipe that made a card's model (cards written before recipes had names: ``paper``)."""
    recipe = card.get("recipe") or {}
    return str(recipe.get("name", "paper"))


def recipe_summary(card: dict) -> str:
    """One line of a card's recipe: name, epochs, batch, optimiser, schedule, loss, precision."""
    r = card.get("recipe") or {}
    if r.get("schedule", "step") == "cosine":
        schedule = f"cosine after {r.get('warmup_epochs', 0)} warm-up epochs"
    else:
        schedule = f"x{r.get('gamma', '?')} after epochs {r.get('milestones', '?')}"
    sgd = "SGD (Nesterov)" if r.get("nesterov") else "SGD"
    tables = f"; tables Adam {r['jpeg_lr']} ({r.get('jpeg_lr_schedule')})" if r.get("jpeg_lr") is not None else ""
    return (
        f"`{recipe_name(card)}` recipe: {card.get('epochs', '?')} epochs, batch {r.get('batch_size', '?')}, "
        f"{sgd} {r.get('lr', '?')}, momentum {r.get('momentum', '?')}, weight decay {r.get('weight_decay', '?')}, "
        f"{schedule}; {r.get('loss', 'cross-entropy')}; precision {r.get('amp', '?')}{tables}"
    )


def _pct(value) -> str:
    return f"{100 * value:.2f}" if isinstance(value, int | float) else ""


def _differing(runs: list[Run]) -> list[str]:
    out = []
    for model in sorted({run.model for run in runs}):
        same = [run for run in runs if run.model == model]
        for arm in sorted({a for run in same for a in run.cards}, key=arm_order):
            for key in RECIPE_KEYS:
                values = {
                    json.dumps(
                        run.cards[arm].to_dict().get(key) if arm in run.cards else None, sort_keys=True, default=str
                    )
                    for run in same
                }
                if len(values) > 1:
                    out.append(f"{model} {arm_display(arm)} `{key}`")
    return out


def _attack_settings(runs: list[Run]) -> pd.DataFrame:
    rows = pd.concat([run.results.assign(run=run.name) for run in runs], ignore_index=True)
    rows = rows[rows["attack"] != "clean"]
    if rows.empty:
        return pd.DataFrame({"note": ["no attack cells (clean accuracy only)"]})
    cols = [
        c
        for c in (
            "arm",
            "attack",
            "norm",
            "steps",
            "step_rule",
            "restarts",
            "random_start",
            "grad",
            "source_arm",
            "attack_seed",
            "spec",
        )
        if c in rows.columns
    ]
    rows = rows.assign(eps_255=(rows["eps"] * 255).round(2))
    table = (
        rows.groupby(cols, dropna=False)
        .agg(
            eps_255=("eps_255", lambda s: ", ".join(f"{v:g}" for v in sorted(set(s)))),
            n=("n", lambda s: ", ".join(map(str, sorted(set(s))))),
            runs=("run", "nunique"),
        )
        .reset_index()
    )
    return table.rename(columns={"eps_255": "eps (x1/255)", "runs": "runs (seeds)"})


def timings(runs: list[Run]) -> pd.DataFrame:
    """Minutes per run and step (training, then each attack spec in the order run), one column per arm."""
    rows = []
    for run in runs:
        results = run.results
        arms = sorted(set(run.cards) | set(results["arm"].astype(str)), key=arm_order)
        training = {"run": run.name, "step": "training"}
        for arm in arms:
            card = run.cards[arm].to_dict() if arm in run.cards else {}
            training[arm_display(arm)] = _minutes(card.get("wall_seconds"))
        rows.append(training)
        specs = results["spec"].fillna("").astype(str) if "spec" in results else pd.Series("", index=results.index)
        for spec in dict.fromkeys(specs):
            row = {"run": run.name, "step": f"attack: {spec or '(no spec)'}"}
            for arm in arms:
                spent = results.loc[(specs == spec) & (results["arm"].astype(str) == arm), "wall_s"]
                row[arm_display(arm)] = _minutes(spent.sum() if len(spent) else None)
            rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _minutes(seconds) -> str:
    return f"{float(seconds) / 60:.1f}" if isinstance(seconds, int | float) and seconds == seconds else ""


def _provenance(runs: list[Run]) -> list[str]:
    items = []
    versions = {
        json.dumps(card.versions, sort_keys=True) for run in runs for card in run.cards.values() if card.versions
    }
    for v in sorted(versions):
        items.append("Training library versions: " + ", ".join(f"{k} {val}" for k, val in json.loads(v).items()))
    rows = pd.concat([run.results for run in runs], ignore_index=True)
    for col, name in (
        ("torch", "Attack torch"),
        ("torchattacks", "torchattacks"),
        ("device", "Attack device"),
        ("git_sha", "Attack code git sha"),
    ):
        if col in rows.columns:
            items.append(f"{name}: " + ", ".join(sorted(map(str, rows[col].dropna().unique()))))
    if "world_size" in rows.columns:
        sizes = sorted({int(w) for w in pd.to_numeric(rows["world_size"], errors="coerce").dropna()})
        if sizes and sizes != [1]:
            items.append(
                "Attack processes per cell (world_size; each process attacks its share of the images, the cells' "
                "wall times are the whole cell's): " + ", ".join(map(str, sizes))
            )
    devices = sorted({str(card.device) for run in runs for card in run.cards.values() if card.device})
    if devices:
        items.append("Training device: " + ", ".join(devices))
    return items


def sanity_checks(doc: Doc, runs: list[Run], adaptive: pd.DataFrame, groups, quantizers: set[str]) -> None:
    """Per run: the verdict, the masking status of each JPEG arm, a compact table of the checks (details folded),
    then the report's own adaptive-vs-soft comparison."""
    doc.h(2, "Sanity checks")
    doc.p(
        "Recomputed by this report from the per-sample data with the same functions `jpeg-robust attack` uses "
        "(docs/attacks.md explains each check); the gradient statistics come from the run's diagnostics.json."
    )
    for run in runs:
        checks = run.checks_now or []
        doc.p(f"Run `{run.name}`: verdict: {checks_verdict(checks)}")
        for arm in sorted({c.arm for c in checks if c.arm in quantizers}, key=arm_order):
            masking = assess_masking(checks, arm)
            doc.p(f"Masking of the white-box numbers of `{arm}`: **{masking.status}** ({masking.reason}).")
        if checks:
            doc.table(
                pd.DataFrame(
                    [
                        {"check": c.name, "arm": arm_display(c.arm), "status": c.status, "compared": str(c.compared)}
                        for c in checks
                    ]
                )
            )
            doc.details(f"what each check of run `{run.name}` found").table(
                pd.DataFrame([{"check": c.name, "arm": c.arm, "status": c.status, "detail": c.detail} for c in checks])
            )
        stored = (run.checks or {}).get("verdict")
        if stored and stored != checks_verdict(checks):
            doc.p(f"(checks.json, written when the run was attacked, says: {stored})")
    doc.h(3, "Adaptive attacks vs the soft white-box attack (computed by this report)")
    shown = False
    for model, norm in groups:
        table = adaptive_table(adaptive, model, norm)
        if not table.empty:
            shown = True
            doc.p(
                f"{model}, {norm}: accuracy of each JPEG arm under the adaptive attack minus under the soft "
                "white-box attack of the same setting, in points on the same images (exact McNemar p); "
                "'stronger' = lower beyond the checks' tolerance with p < 0.05 after Holm over the arm's adaptive "
                "comparisons, a sign of gradient masking."
            )
            doc.table(table)
    if not shown:
        doc.p("No BPDA, surrogate or transfer attack against a JPEG arm in these runs, so no comparison is possible.")
