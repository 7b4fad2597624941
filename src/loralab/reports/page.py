"""The page a report is written into: the same content as self-contained HTML and as Markdown.

The HTML embeds its images as base64 PNG, so it opens offline and can be mailed as one file;
the Markdown sits next to PNG files of the same plots. Long material (configurations) is
folded into ``<details>``, which GitHub also renders in Markdown.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from loralab.runs.files import atomic_write

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; max-width: 40em; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures img { max-width: 48%; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.2em; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.warning { background: #fff4d6; border-left: 4px solid #e0a000; padding: 0.5em 0.8em; }
details { margin: 0.5em 0; }
summary { cursor: pointer; font-weight: 600; }
"""


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _md_cell(value) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


class Report:
    def __init__(self, title: str) -> None:
        self.title = title
        self.html: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self.md: list[str] = [f"# {title}", ""]
        self.images: dict[str, bytes] = {}

    def heading(self, text: str, level: int = 2) -> None:
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md += ["#" * level + f" {text}", ""]

    def paragraph(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md += [text, ""]

    def warning(self, text: str) -> None:
        self.html.append(f'<p class="warning"><strong>Warning:</strong> {html.escape(text)}</p>')
        self.md += [f"> **Warning:** {text}", ""]

    def facts(self, pairs: list[tuple[str, str]]) -> None:
        """A two-column list of facts (hardware, model, versions) for the top of a report."""
        items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in pairs)
        self.html.append(f'<dl class="facts">{items}</dl>')
        self.md += [f"- **{k}:** {v}" for k, v in pairs] + [""]

    def table(self, columns: list[str], rows: list[list], text_columns: tuple[int, ...] = ()) -> None:
        """A table; ``text_columns`` hold prose (left-aligned, wrapped)."""

        def css(i: int) -> str:
            return ' class="text"' if i in text_columns else ""

        head = "".join(f"<th{css(i)}>{html.escape(c)}</th>" for i, c in enumerate(columns))

        def cell(i: int, value) -> str:
            return f"<td{css(i)}>{html.escape(fmt(value))}</td>"

        body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        self.md += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        self.md += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
        self.md.append("")

    def image(self, name: str, png: bytes, alt: str) -> None:
        self.images[name] = png
        data = base64.b64encode(png).decode()
        self.html.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        self.md += [f"![{alt}]({name})", ""]

    def begin_figures(self) -> None:
        """Lay the following images side by side (until :meth:`end_figures`)."""
        self.html.append('<div class="figures">')

    def end_figures(self) -> None:
        self.html.append("</div>")

    def details(self, summary: str, text: str, language: str = "json") -> None:
        """``text`` as a code block folded under ``summary``."""
        self.html.append(
            f"<details><summary>{html.escape(summary)}</summary><pre>{html.escape(text)}</pre></details>"
        )
        self.md += [
            f"<details><summary>{summary}</summary>",
            "",
            f"```{language}",
            text,
            "```",
            "",
            "</details>",
            "",
        ]

    def write(self, folder: Path) -> tuple[Path, Path]:
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(self.html)}</body></html>"
        )
        out_html, out_md = folder / "report.html", folder / "report.md"
        for name, png in self.images.items():
            (folder / name).write_bytes(png)
        _write_text(out_html, page)
        _write_text(out_md, "\n".join(self.md) + "\n")
        return out_html, out_md


def _write_text(path: Path, text: str) -> None:
    """Write to a temporary name, then rename: a report is complete or absent, with the mode
    the umask gives (as every file of a run)."""
    with atomic_write(path, encoding="utf-8") as handle:
        handle.write(text)
