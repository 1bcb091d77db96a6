"""Render a report: Markdown from the Jinja2 templates, HTML from that Markdown, PDF from the HTML (WeasyPrint).

The Markdown is the one rendering of the content; HTML converts exactly the subset the templates write
(headings, paragraphs, quotes, tables, code blocks, images), so the three formats can never say different
things. Every format carries the machine lines `onshore report verify` reads back: the format line, one
``checkpoint region=… size=… root=…`` line and the signed note per region, and every figure as a table row
``key | label | value``.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from onshore.errors import ConfigError, InputError
from onshore.reports.i18n import figure_label, risk_text, word

FORMATS = ("md", "html", "pdf")
TEMPLATES = Path(__file__).with_name("templates")
_CSS = """
@page { size: A4; margin: 16mm 14mm 16mm 14mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #666; } }
body { font-family: "Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans", sans-serif; font-size: 9.5pt;
       line-height: 1.45; color: #111; }
h1 { font-size: 16pt; margin: 0 0 6pt 0; }
h2 { font-size: 11.5pt; margin: 14pt 0 4pt 0; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt 0; font-size: 8pt; }
th, td { border: 1px solid #bbb; padding: 2pt 4pt; vertical-align: top; text-align: left; }
td.num { text-align: right; white-space: nowrap; }
blockquote { margin: 6pt 0; padding: 4pt 8pt; background: #fff6d5; border-left: 3px solid #e0b000; }
pre { font-family: "DejaVu Sans Mono", monospace; font-size: 5.6pt; background: #f4f4f4; padding: 4pt;
      white-space: pre; overflow: hidden; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 7pt; }
img { max-width: 100%; margin: 6pt 0; }
em { color: #444; }
"""


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


def _cell(text: str) -> str:
    """Table cells and lines hold no ``|`` or line break of their own (they would break the table)."""
    return text.replace("|", "/").replace("\n", " ")


def markdown(report: dict[str, Any], charts: dict[str, str]) -> str:
    """The report as Markdown; ``charts`` maps a chart name to the image reference (file name or data URI)."""
    lang = report["lang"]
    env = _environment()
    env.filters["cell"] = _cell
    text = env.get_template("report.md.j2").render(
        r=report,
        w=lambda key: word(key, lang),
        label=lambda key: figure_label(key, lang),
        risk=lambda check: risk_text(check, lang),
        charts=charts,
    )
    return re.sub(r"\n{3,}", "\n\n", text)


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


def _table(lines: list[str]) -> str:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    head, body = rows[0], rows[2:]
    right = [cell.endswith(":") for cell in rows[1]]
    out = ["<table><thead><tr>", *(f"<th>{_inline(c)}</th>" for c in head), "</tr></thead><tbody>"]
    for row in body:
        cells = [
            f'<td class="num">{_inline(c)}</td>' if right[i] else f"<td>{_inline(c)}</td>" for i, c in enumerate(row)
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def to_html(md: str, title: str, lang: str) -> str:
    """HTML for the Markdown subset the templates write (see the module docstring)."""
    lines, body, i = md.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = lines.index("```", i + 1)
            body.append("<pre>" + html.escape("\n".join(lines[i + 1 : end])) + "</pre>")
            i = end + 1
        elif line.startswith("|"):
            end = i
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            body.append(_table(lines[i:end]))
            i = end
        else:
            if line.startswith("## "):
                body.append(f"<h2>{_inline(line[3:])}</h2>")
            elif line.startswith("# "):
                body.append(f"<h1>{_inline(line[2:])}</h1>")
            elif line.startswith("> "):
                body.append(f"<blockquote>{_inline(line[2:])}</blockquote>")
            elif m := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line):
                body.append(f'<img alt="{html.escape(m[1])}" src="{html.escape(m[2])}">')
            elif line.strip():
                body.append(f"<p>{_inline(line)}</p>")
            i += 1
    return (
        f'<!doctype html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def pdf(html_text: str) -> bytes:
    """The HTML as PDF (WeasyPrint).

    Raises:
        ConfigError: WeasyPrint or its system libraries (Pango) are missing: run `make system-deps`.
    """
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"PDF needs WeasyPrint and Pango ({exc.__class__.__name__}); run `make system-deps` and "
            "`pip install weasyprint`"
        ) from exc
    result = HTML(string=html_text).write_pdf()
    assert isinstance(result, bytes)
    return result


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r} is unknown; valid: {', '.join(FORMATS)}")
