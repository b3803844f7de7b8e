"""One intermediate document, two renderings: Markdown (report.md) and HTML5 (report.html).

Blocks: ``("h", level, text)``, ``("p", text)``, ``("ul", [text, ...])``, ``("code", text)``, ``("table", table)``
(a :class:`~.views.ReportTable` or a DataFrame), ``("img", file name, caption)`` and ``("details", summary, Doc)``:
a folded part (HTML ``<details>``; in Markdown a clearly marked sub-section). Inline text may use `code` and **bold**.

The HTML references its figures by relative file name (they sit next to it in the report folder), so a committed
report holds each figure once; ``embed=True`` gives a single file with the figures as base64 ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from .views import ReportTable

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}
h1{border-bottom:2px solid #ccc;padding-bottom:.2em;font-size:1.7em}h2{border-bottom:1px solid #ddd;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em;max-width:100%}
th,td{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}th{background:#f3f3f3;text-align:center}
table.num td{text-align:right;white-space:nowrap}table.num td:first-child{text-align:left}
table.text td{text-align:left}
ul.notes{font-size:.85em;color:#444;margin-top:.2em}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;font-size:.85em;white-space:pre-wrap;word-break:break-word}
code{background:#f6f8fa;padding:0 .2em}
details{margin:.6em 0;padding:.3em .6em;border:1px solid #e3e3e3;border-radius:4px}
summary{cursor:pointer;font-weight:600}
img{max-width:100%;height:auto;border:1px solid #eee}figure{margin:1em 0}figcaption{font-size:.9em;color:#444}
"""


class Doc:
    """An ordered list of blocks rendered to Markdown and HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    def table(self, table: ReportTable | pd.DataFrame) -> None:
        self.blocks.append(("table", table))

    def img(self, name: str, caption: str) -> None:
        self.blocks.append(("img", name, caption))

    def details(self, summary: str) -> Doc:
        """A folded part; fill the returned Doc."""
        inner = Doc()
        self.blocks.append(("details", summary, inner))
        return inner


def _as_table(obj) -> tuple[list[tuple[str, str]], list[list[str]], list[str], bool]:
    """(columns, rows, notes, numeric) of a ReportTable or a DataFrame (headers from its columns, never its name)."""
    if isinstance(obj, ReportTable):
        return obj.columns, obj.rows, obj.notes, True
    frame = obj.copy()
    frame.columns.name = None
    rows = [
        ["" if (isinstance(v, float) and pd.isna(v)) or v is None else str(v) for v in row]
        for row in frame.itertuples(index=False)
    ]
    return [("", str(c)) for c in frame.columns], rows, [], False


def markdown_table(columns: list[tuple[str, str]], rows: list[list[str]]) -> str:
    def esc(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    names = [f"{g}: {n}" if g and n else g or n for g, n in columns]
    head = "| " + " | ".join(esc(c) for c in names) + " |"
    rule = "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(names))) + "|"
    body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def to_markdown_text(doc: Doc, level: int = 0) -> str:
    out = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "code":
            out.append("```text\n" + block[1].rstrip("\n") + "\n```")
        elif kind == "table":
            columns, rows, notes, _ = _as_table(block[1])
            out.append(markdown_table(columns, rows))
            if notes:
                out.append("\n".join(f"- {n}" for n in notes))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})\n\n*{block[2]}*")
        elif kind == "details":
            out.append(f"**Details: {block[1]}**")
            out.append(to_markdown_text(block[2], level + 1).rstrip("\n"))
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def html_table(columns: list[tuple[str, str]], rows: list[list[str]], numeric: bool) -> str:
    """A table with a grouped header row (``colspan``) when any column has a group; cells escaped."""
    out = [f'<table class="{"num" if numeric else "text"}"><thead>']
    if any(group for group, _ in columns):
        top, i = [], 0
        while i < len(columns):
            group = columns[i][0]
            j = i
            while j + 1 < len(columns) and group and columns[j + 1][0] == group:
                j += 1
            if group:
                top.append(f'<th colspan="{j - i + 1}">{html.escape(group)}</th>')
            else:
                top.append(f'<th rowspan="2">{html.escape(columns[i][1])}</th>')
            i = j + 1
        out.append("<tr>" + "".join(top) + "</tr>")
        out.append("<tr>" + "".join(f"<th>{html.escape(n)}</th>" for g, n in columns if g) + "</tr>")
    else:
        out.append("<tr>" + "".join(f"<th>{html.escape(n)}</th>" for _, n in columns) + "</tr>")
    out.append("</thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "".join(out)


def _figure_source(image_dir: Path, name: str, embed: bool) -> str:
    """The ``src`` of a figure: its relative file name, or (``embed``) a base64 ``data:`` URI of the PNG."""
    if not embed:
        return html.escape(name)
    return "data:image/png;base64," + base64.b64encode((image_dir / name).read_bytes()).decode("ascii")


def _html_blocks(doc: Doc, image_dir: Path, embed: bool) -> list[str]:
    body = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
        elif kind == "table":
            columns, rows, notes, numeric = _as_table(block[1])
            body.append(html_table(columns, rows, numeric))
            if notes:
                body.append('<ul class="notes">' + "".join(f"<li>{_inline(n)}</li>" for n in notes) + "</ul>")
        elif kind == "img":
            body.append(
                f'<figure><img src="{_figure_source(image_dir, block[1], embed)}" alt="{html.escape(block[2])}">'
                f"<figcaption>{_inline(block[2])}</figcaption></figure>"
            )
        elif kind == "details":
            body.append(f"<details><summary>{_inline(block[1])}</summary>")
            body += _html_blocks(block[2], image_dir, embed)
            body.append("</details>")
    return body


def to_html_text(doc: Doc, image_dir: Path, title: str, embed: bool = False) -> str:
    """An HTML5 file with inline CSS, no scripts and no external resources; its figures are the files next to it in
    ``image_dir`` (relative ``src``), or, with ``embed``, base64 data URIs (one self-contained file)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(_html_blocks(doc, image_dir, embed))
        + "\n</body>\n</html>\n"
    )
