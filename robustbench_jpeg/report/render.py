"""One intermediate document, two renderings: Markdown (report.md) and self-contained HTML5 (report.html).

Blocks: ``("h", level, text)``, ``("p", text)``, ``("ul", [text, ...])``, ``("code", text)``,
``("table", DataFrame)``, ``("img", file name, alt text)``. Inline text may use `code` and **bold**.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from .tables import to_markdown

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}
h1{border-bottom:2px solid #ccc;padding-bottom:.2em}h2{border-bottom:1px solid #ddd;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;font-size:.85em}code{background:#f6f8fa;padding:0 .2em}
img{max-width:100%;height:auto;border:1px solid #eee}
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

    def table(self, df: pd.DataFrame) -> None:
        self.blocks.append(("table", df))

    def img(self, name: str, alt: str) -> None:
        self.blocks.append(("img", name, alt))


def to_markdown_text(doc: Doc) -> str:
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
            out.append(to_markdown(block[1]))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
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


def to_html_text(doc: Doc, image_dir: Path, title: str) -> str:
    """A single HTML5 file: inline CSS, images as base64 data URIs, no external resources."""
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
            body.append(block[1].to_html(index=False, border=0, escape=True, na_rep=""))
        elif kind == "img":
            data = base64.b64encode((image_dir / block[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[2])}">'
                        f"<figcaption>{_inline(block[2])}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
