"""Pivot the cells into the accuracy-vs-eps tables (csv: raw fractions; md/tex: percentages, 2 decimals)."""

from __future__ import annotations

import math
import re

import pandas as pd

from .cells import CLEAN, WORST, aggregate_seeds, arm_name

DIFF = "JPEG-DL - baseline"
ARM_ORDER = {"baseline": 0, "jpegdl": 1}


def eps_header(norm: str) -> str:
    return "eps (/255)" if norm == "linf" else f"eps ({norm.upper()}, [0,1] scale)"


def eps_text(eps: float) -> str:
    """Eps as printed in tables: at most 2 decimals (4/3 -> 1.33)."""
    return f"{round(eps, 2):g}" if eps >= 0.01 or eps == 0 else f"{eps:.3g}"


def label_order(label: str) -> tuple:
    """FGSM, then PGD by steps, transfers after white-box, the worst case last."""
    steps = re.match(r"PGD-(\d+)", label)
    rank = 0 if label == CLEAN else 1 if label.startswith("FGSM") else 2 + int(steps.group(1)) if steps else 10**6
    return (label == WORST, "transfer from" in label, rank, "(bpda)" in label, label)


def aggregate(cells: pd.DataFrame, diffs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed means of accuracy (per model, norm, eps, arm, label) and of the paired differences (per label)."""
    acc = aggregate_seeds(cells, ["model", "norm", "eps_key", "arm", "label", "pair", "transfer"], "acc")
    acc["column"] = [f"{arm_name(a)}: {lab}" for a, lab in zip(acc["arm"], acc["label"], strict=True)]
    acc["order"] = [(ARM_ORDER.get(a, 2), a, *label_order(lab))
                    for a, lab in zip(acc["arm"], acc["label"], strict=True)]
    if diffs.empty:
        return acc, pd.DataFrame(columns=["model", "norm", "eps_key", "label", "mean", "std", "seeds", "column"])
    dif = aggregate_seeds(diffs, ["model", "norm", "eps_key", "label"], "diff")
    single = diffs.groupby(["model", "norm", "eps_key", "label"], sort=False).agg(
        ci_low=("ci_low", "first"), ci_high=("ci_high", "first"), p_mcnemar=("p_mcnemar", "first"),
        p_all=("p_mcnemar", list), lo_all=("ci_low", list), hi_all=("ci_high", list), n=("n", "first")).reset_index()
    dif = dif.merge(single, on=["model", "norm", "eps_key", "label"])
    for col in ("ci_low", "ci_high", "p_mcnemar"):
        dif.loc[dif["seeds"] > 1, col] = math.nan
    dif["column"] = [f"{DIFF}: {lab}" for lab in dif["label"]]
    dif["order"] = [(3, "diff", *label_order(lab)) for lab in dif["label"]]
    return acc, dif


def _columns(frame: pd.DataFrame) -> list[str]:
    """The frame's distinct ``column`` names in ``order``."""
    first = frame.drop_duplicates("column")
    return [c for _, c in sorted(zip(first["order"], first["column"], strict=True))]


def wide_csv(acc: pd.DataFrame, dif: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, norm, eps); accuracy and difference columns as raw fractions (see docs/report.md)."""
    index = ["model", "norm", "eps_key"]
    multi = bool((acc["seeds"] > 1).any() or (not dif.empty and (dif["seeds"] > 1).any()))
    parts = [acc.pivot_table(index=index, columns="column", values="mean", aggfunc="first")[_columns(acc)]]
    if multi:
        parts.append(_suffixed(acc, index, "std", "std"))
        parts.append(_suffixed(acc, index, "seeds", "seeds"))
    if not dif.empty:
        dcols = _columns(dif)
        parts.append(dif.pivot_table(index=index, columns="column", values="mean", aggfunc="first")[dcols])
        for value in ("ci_low", "ci_high", "p_mcnemar", "n") + (("std", "seeds") if multi else ()):
            parts.append(_suffixed(dif, index, value, value))
    table = pd.concat(parts, axis=1)
    ordered = []
    for col in _columns(acc) + (_columns(dif) if not dif.empty else []):
        ordered += [c for c in table.columns if c == col or c.startswith(col + " [")]
    table = table[ordered].reset_index().rename(columns={"eps_key": "eps"})
    table.insert(3, "eps_unit", ["1/255" if nm == "linf" else "raw" for nm in table["norm"]])
    return table


def _suffixed(frame: pd.DataFrame, index: list[str], value: str, suffix: str) -> pd.DataFrame:
    wide = frame.pivot_table(index=index, columns="column", values=value, aggfunc="first", dropna=False)
    return wide.rename(columns=lambda c: f"{c} [{suffix}]")


def table_notes(acc: pd.DataFrame, cells: pd.DataFrame, model: str, norm: str, plain: bool = False) -> list[str]:
    """The notes printed under each table: n, seeds, and what the worst-case and difference columns mean."""
    c = cells[(cells["model"] == model) & (cells["norm"] == norm)]
    a = acc[(acc["model"] == model) & (acc["norm"] == norm)]
    seeds = int(a["seeds"].max())
    n = sorted(set(c["n"]))
    notes = [f"Accuracy in % on the first {n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'} test images (test-set order); "
             "eps 0 = clean accuracy on the images of that column.",
             f"Mean ± std (sample std, ddof=1) over {seeds} training seeds; † = fewer seeds for that cell."
             if seeds > 1 else "One training seed."]
    if (c["label"] == WORST).any():
        notes.append(f"'{WORST}': an image counts only if correct under every attack run at that eps (per-sample "
                     "AND over the columns of that arm, on the first images common to them).")
    if set(c["arm"]) >= {"baseline", "jpegdl"}:
        notes.append("'JPEG-DL - baseline': paired difference in points on the same images, " + (
            "mean ± std over seeds (per-seed intervals and p-values in paired.csv)." if seeds > 1 else
            "with its 95% paired Wald interval in brackets (exact McNemar p-values in paired.csv)."))
        if len(n) > 1:
            notes.append("Where two paired columns cover different numbers of images, the difference uses the first "
                         "images common to both (its n is in table.csv and paired.csv).")
    if (c["grad"] == "bpda").any():
        notes.append("(soft) = gradients through the soft quantizer, (bpda) = hard quantizer forward, identity "
                     "backward. The baseline has no quantizer, so its white-box column is the partner of both.")
    if c["transfer"].any():
        notes.append("'transfer from X': adversarial examples crafted on arm X, evaluated on this arm (not "
                     "differenced).")
    return notes if plain else [f"- {note}" for note in notes]


def _pct(x: float, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def display_table(acc: pd.DataFrame, dif: pd.DataFrame, model: str, norm: str, latex: bool = False) -> pd.DataFrame:
    """The md/tex view of one (model, norm): eps rows, percentage strings; ``mean ± std`` when several seeds."""
    pm, dagger = (r" $\pm$ ", r"$^\dagger$") if latex else (" ± ", "†")
    a = acc[(acc["model"] == model) & (acc["norm"] == norm)]
    d = dif[(dif["model"] == model) & (dif["norm"] == norm)] if not dif.empty else dif
    total = int(a["seeds"].max())

    def acc_text(r) -> str:
        text = _pct(r["mean"]) + (pm + _pct(r["std"]) if r["seeds"] > 1 else "")
        return text + (dagger if r["seeds"] < total else "")

    def diff_text(r) -> str:
        if r["seeds"] > 1:
            return _pct(r["mean"], True) + pm + _pct(r["std"])
        return f"{_pct(r['mean'], True)} [{_pct(r['ci_low'], True)}, {_pct(r['ci_high'], True)}]"

    cells = [a.assign(text=[acc_text(r) for _, r in a.iterrows()])]
    if not d.empty:
        cells.append(d.assign(text=[diff_text(r) for _, r in d.iterrows()]))
    both = pd.concat(cells, ignore_index=True)
    table = both.pivot_table(index="eps_key", columns="column", values="text", aggfunc="first")
    table = table[[c for c in _columns(both) if c in table.columns]].fillna("")
    header = eps_header(norm)
    table.index = [eps_text(e) + (" (clean)" if e == 0 else "") for e in table.index]
    table.index.name = header
    return table.reset_index()


def pvalue_table(diffs: pd.DataFrame, model: str, norm: str) -> pd.DataFrame:
    """Exact McNemar p-values per eps and attack (comma-separated per seed when several seeds)."""
    d = diffs[(diffs["model"] == model) & (diffs["norm"] == norm)]
    if d.empty:
        return pd.DataFrame()
    d = d.assign(text=d["p_mcnemar"].map(lambda p: f"{p:.3g}"), column=d["label"])
    table = d.pivot_table(index="eps_key", columns="column", values="text", aggfunc=", ".join)
    table = table[sorted(table.columns, key=label_order)]
    table.index = [eps_text(e) for e in table.index]
    table.index.name = eps_header(norm)
    return table.reset_index()


def to_markdown(df: pd.DataFrame) -> str:
    """``DataFrame.to_markdown`` when ``tabulate`` is installed, else the same pipe table written here."""
    try:
        return df.to_markdown(index=False)
    except ImportError:
        def esc(v) -> str:
            return str(v).replace("|", "\\|").replace("\n", " ")
        head = "| " + " | ".join(esc(c) for c in df.columns) + " |"
        rule = "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(df.columns))) + "|"
        body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
        return "\n".join([head, rule, *body])


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("†", r"$^\dagger$")):
        text = text.replace(a, b)
    return text


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """``DataFrame.to_latex`` (booktabs rules); cell text is already LaTeX, headers are escaped here."""
    df = df.rename(columns=lambda c: latex_escape(str(c)))
    try:
        return df.to_latex(index=False, escape=False, caption=latex_escape(caption), label=label,
                           column_format="l" + "r" * (len(df.columns) - 1), position="htbp")
    except ImportError:  # pandas' to_latex needs jinja2; it ships with torch, but fall back just in case
        lines = [r"\begin{table}[htbp]", r"\caption{" + latex_escape(caption) + "}", r"\label{" + label + "}",
                 r"\begin{tabular}{l" + "r" * (len(df.columns) - 1) + "}", r"\toprule",
                 " & ".join(map(str, df.columns)) + r" \\", r"\midrule"]
        lines += [" & ".join(map(str, row)) + r" \\" for row in df.itertuples(index=False)]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", r"\end{table}"]) + "\n"
