"""The report's sections (what was run, tables, figures, checks, conclusion, the paper) as one document."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..attack.verdict import assess_masking
from ..attack.verdict import verdict as checks_verdict
from ..provenance import atomic_write_text, git_sha, now_iso
from .cells import arm_name
from .conclude import adaptive_table, conclusion
from .load import Run
from .paper import PAPER_SOURCE, paper_table
from .render import Doc, to_html_text, to_markdown_text
from .tables import display_table, pvalue_table, table_notes

QUESTION = ("Does JPEG-DL (a differentiable JPEG layer with learnable quantization tables in front of the CNN; "
            "Salamah et al., ICLR 2025, arXiv 2410.07081) make the classifier more robust to adversarial attacks "
            "than the same CNN trained without it?")
RECIPE_KEYS = ("epochs", "recipe", "jpeg")


def write_documents(out: Path, title: str, runs: list[Run], groups, acc, dif, diffs, cells, adaptive) -> Path:
    doc = Doc()
    doc.h(1, title)
    doc.p(f"Generated {now_iso()} by `robustbench_jpeg.report` (code {git_sha()}) from {len(runs)} run(s): "
          + ", ".join(f"`{run.name}`" for run in runs) + ".")
    doc.p(QUESTION)
    conclusions = {(model, norm): conclusion(model, norm, acc, dif, adaptive, cells, runs) for model, norm in groups}
    doc.h(2, "Summary")
    for (model, norm), (_, verdict) in conclusions.items():
        doc.p(f"**{model}, {norm}:** " + verdict.removeprefix("**Conclusion:** ") if len(groups) > 1 else verdict)
    doc.p("Details, intervals and the evidence behind this summary follow; how the runs were made is in "
          "\"What was run\" below.")
    doc.h(2, "Results: accuracy vs eps")
    for model, norm in groups:
        doc.h(3, f"{model}, {'L-inf' if norm == 'linf' else norm.upper()}")
        doc.table(display_table(acc, dif, model, norm))
        doc.ul(table_notes(acc, cells, model, norm, plain=True))
        pvals = pvalue_table(diffs, model, norm) if not diffs.empty else pd.DataFrame()
        if not pvals.empty:
            doc.p("Exact two-sided McNemar p-values of the JPEG-DL - baseline differences (one per seed):")
            doc.table(pvals)
    doc.h(2, "Figures")
    doc.img("accuracy_vs_eps.png", "Accuracy vs eps per attack, both arms (dotted: clean accuracy; star: eps 0; "
            "dashed: BPDA; band: ±1 std over seeds). Vector version: accuracy_vs_eps.svg.")
    doc.img("qtables.png", "Learned JPEG-DL quantization step tables (luma, chroma) beside their initial values and "
            "the standard JPEG quality-50 tables.")
    _checks(doc, runs, adaptive, groups)
    doc.h(2, "Conclusion")
    for model, norm in groups:
        bullets, verdict = conclusions[(model, norm)]
        if len(groups) > 1:
            doc.h(3, f"{model}, {norm}")
        doc.ul(bullets)
        doc.p(verdict)
    _what_was_run(doc, runs, cells)
    doc.h(2, "Reported in the paper (not our measurement)")
    doc.p(f"Source: {PAPER_SOURCE}. [PAPER] = the paper's own text; [REVIEW] = third-party reviews citing the "
          "paper's tables (likely, not verified). These numbers are not comparable one-to-one with ours (different "
          "training runs, baselines copied from CRD) and are never mixed into the tables above.")
    for model in sorted({run.model for run in runs}):
        doc.table(paper_table(model))
    doc.h(2, "Files in this folder")
    doc.ul(FILES)
    atomic_write_text(out / "report.md", to_markdown_text(doc))
    atomic_write_text(out / "report.html", to_html_text(doc, out, title))
    return out / "report.md"


FILES = [
    "`report.md`, `report.html`: this report (the HTML embeds the figures).",
    "`table.csv`: accuracy vs eps as raw fractions, one row per (model, norm, eps); difference columns with "
    "`[ci_low]`, `[ci_high]`, `[p_mcnemar]`, `[n]`; `[std]`/`[seeds]` columns with several seeds.",
    "`table.md`, `table.tex`: the same tables in percent (LaTeX needs booktabs).",
    "`paired.csv`: every paired JPEG-DL - baseline comparison per run (b, c, n, difference, interval, p).",
    "`accuracy_vs_eps.png`/`.svg`, `qtables.png`: the figures.",
    "`data/`: the inputs (results, per-sample files, cards, checks, commands, configs); "
    "`build_report(['data'], ...)` or `jpeg-robust report --run data --out NEW` regenerates this report.",
]


def _what_was_run(doc: Doc, runs: list[Run], cells: pd.DataFrame) -> None:
    doc.h(2, "What was run")
    rows = []
    for run in runs:
        for arm, card in sorted(run.cards.items()):
            best = card.get("best_top1")
            rows.append({
                "run": run.name, "model": card.get("model", run.model), "arm": arm_name(arm),
                "dataset": card.get("dataset", run.dataset), "seed": card.get("seed", run.seed),
                "epochs done/planned": f"{card.get('epochs_done', '?')}/{card.get('epochs', '?')}",
                "clean top-1 last epoch (%)": _pct(card.get("clean_top1")),
                "best top-1 (%) [epoch; test-set selection]": f"{_pct(best)} [{card.get('best_epoch', '?')}]"
                if best is not None else "",
                "device": card.get("device", ""), "git": card.get("git_sha", ""),
                "train time (s)": f"{card['wall_seconds']:.0f}" if isinstance(card.get("wall_seconds"), int | float)
                else "",
            })
    if rows:
        doc.h(3, "Trained models (from the cards)")
        doc.table(pd.DataFrame(rows))
    first = next((run for run in runs if run.cards), None)
    if first is not None:
        doc.h(3, "Recipe")
        recipe = {arm: {k: card.get(k) for k in RECIPE_KEYS} for arm, card in sorted(first.cards.items())}
        doc.p(f"From the cards of run `{first.name}` (identical across seeds unless noted below):")
        doc.code(json.dumps(recipe, indent=2, default=str))
        diffs = _differing(runs)
        if diffs:
            doc.p("**Warning:** the runs pooled as seeds differ in: " + "; ".join(diffs) + ".")
    for run in runs:
        if run.config is not None:
            doc.p(f"Resolved training configuration of run `{run.name}` (config.json):")
            doc.code(json.dumps(run.config, indent=2, default=str))
            break
    doc.h(3, "Attacks")
    doc.table(_attack_settings(runs))
    doc.h(3, "Commands")
    for run in runs:
        doc.p(f"Run `{run.name}` ({run.path}), from commands.txt:")
        doc.code("\n".join(run.commands) if run.commands else "(commands.txt is missing)")
    doc.h(3, "Software and hardware")
    doc.ul(_provenance(runs))
    warnings = [w for run in runs for w in run.warnings]
    if warnings:
        doc.p("**Input warnings:**")
        doc.ul(warnings)


def _pct(value) -> str:
    return f"{100 * value:.2f}" if isinstance(value, int | float) else ""


def _differing(runs: list[Run]) -> list[str]:
    out = []
    for model in sorted({run.model for run in runs}):
        same = [run for run in runs if run.model == model]
        for arm in ("baseline", "jpegdl"):
            for key in RECIPE_KEYS:
                values = {json.dumps(run.cards.get(arm, {}).get(key), sort_keys=True, default=str) for run in same}
                if len(values) > 1:
                    out.append(f"{model} {arm_name(arm)} `{key}`")
    return out


def _attack_settings(runs: list[Run]) -> pd.DataFrame:
    rows = pd.concat([run.results.assign(run=run.name) for run in runs], ignore_index=True)
    rows = rows[rows["attack"] != "clean"]
    if rows.empty:
        return pd.DataFrame({"note": ["no attack cells (clean accuracy only)"]})
    cols = [c for c in ("arm", "attack", "norm", "steps", "step_rule", "restarts", "random_start", "grad",
                        "source_arm", "attack_seed", "spec") if c in rows.columns]
    rows = rows.assign(eps_255=(rows["eps"] * 255).round(2))
    table = rows.groupby(cols, dropna=False).agg(
        eps_255=("eps_255", lambda s: ", ".join(f"{v:g}" for v in sorted(set(s)))),
        n=("n", lambda s: ", ".join(map(str, sorted(set(s))))), runs=("run", "nunique")).reset_index()
    return table.rename(columns={"eps_255": "eps (x1/255)", "runs": "runs (seeds)"})


def _provenance(runs: list[Run]) -> list[str]:
    items = []
    versions = {json.dumps(card.get("versions"), sort_keys=True) for run in runs for card in run.cards.values()
                if card.get("versions")}
    for v in sorted(versions):
        items.append("Training library versions: " + ", ".join(f"{k} {val}" for k, val in json.loads(v).items()))
    rows = pd.concat([run.results for run in runs], ignore_index=True)
    for col, name in (("torch", "Attack torch"), ("torchattacks", "torchattacks"), ("device", "Attack device"),
                      ("git_sha", "Attack code git sha")):
        if col in rows.columns:
            items.append(f"{name}: " + ", ".join(sorted(map(str, rows[col].dropna().unique()))))
    devices = sorted({str(card.get("device")) for run in runs for card in run.cards.values() if card.get("device")})
    if devices:
        items.append("Training device: " + ", ".join(devices))
    return items


def _checks(doc: Doc, runs: list[Run], adaptive: pd.DataFrame, groups) -> None:
    doc.h(2, "Sanity checks")
    doc.p("Recomputed by this report from the per-sample data with the same functions `jpeg-robust attack` uses "
          "(docs/attacks.md explains each check); the gradient statistics come from the run's diagnostics.json.")
    for run in runs:
        checks = run.checks_now or []
        doc.p(f"Run `{run.name}`: verdict: {checks_verdict(checks)}")
        for arm in sorted({c.arm for c in checks}):
            masking = assess_masking(checks, arm)
            if run.cards.get(arm, {}).get("jpeg"):
                doc.p(f"Masking of the white-box numbers of `{arm}`: **{masking.status}** ({masking.reason}).")
        if checks:
            doc.table(pd.DataFrame([{"name": c.name, "arm": c.arm, "status": c.status, "detail": c.detail}
                                    for c in checks]))
        stored = (run.checks or {}).get("verdict")
        if stored and stored != checks_verdict(checks):
            doc.p(f"(checks.json, written when the run was attacked, says: {stored})")
    doc.h(3, "Adaptive attacks vs the soft white-box attack on JPEG-DL (computed by this report)")
    shown = False
    for model, norm in groups:
        table = adaptive_table(adaptive, model, norm)
        if not table.empty:
            shown = True
            doc.p(f"{model}, {norm}: JPEG-DL accuracy under the adaptive attack minus under the soft white-box "
                  "attack of the same setting, in points on the same images (exact McNemar p); 'stronger' = lower "
                  "with p < 0.05, a sign of gradient masking.")
            doc.table(table)
    if not shown:
        doc.p("No BPDA or transfer attack against JPEG-DL in these runs, so no comparison is possible.")
