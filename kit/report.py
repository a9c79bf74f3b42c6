"""Rendering: tables and text as HTML and Markdown strings, figures as PNG, and an executed
notebook as an offline HTML report and a wiki-ready Markdown copy.

Everything that reaches HTML or Markdown from a model, a dataset or a user is escaped here.
Notebooks show things with ``kit.display``, which uses these pieces.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from kit import PACKAGE_DIR

TEMPLATE_DIR = PACKAGE_DIR / "templates"
HTML_TEMPLATE = "kit_report"
MARKDOWN_TEMPLATE = "kit_markdown"

# The kit's own look for tables and text blocks, the same in the report (its run header and
# its outputs), in JupyterLab and on the index page. Each rule is also written under
# ``.jp-RenderedHTMLCommon``, so Jupyter's table rules (right-aligned, fixed layout, zebra
# rows) do not win inside outputs. Long tokens wrap instead of widening the page.
_KIT_CSS = (
    (".kit-table", "border-collapse:collapse;table-layout:auto;margin:0.5em 0;font-size:0.9rem"),
    (".kit-table caption", "text-align:left;font-weight:bold;padding:2px 0"),
    (
        ".kit-table th,.kit-table td",
        "border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;"
        "white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.4",
    ),
    (".kit-table th", "background:#f3f3f3;font-weight:bold"),
    (".kit-table tbody tr", "background:transparent"),
    (".kit-table tbody tr:nth-child(even)", "background:#fafafa"),
    (
        ".kit-text",
        "white-space:pre-wrap;overflow-wrap:anywhere;border-left:3px solid #4a7;"
        "padding:4px 10px;background:#f8faf8;font-family:monospace",
    ),
)


def _css(rules: Iterable[tuple[str, str]]) -> str:
    def both(selectors: str) -> str:
        parts = [part.strip() for part in selectors.split(",")]
        return ",".join(parts + [f".jp-RenderedHTMLCommon {part}" for part in parts])

    return "".join(f"{both(selectors)}{{{body}}}" for selectors, body in rules)


TABLE_STYLE = f"<style>{_css(_KIT_CSS)}</style>"


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:.4g}"
    if value is None:
        return "–"
    return str(value)


def html_table(
    rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, caption: str | None = None
) -> str:
    """An HTML table with every header and cell escaped."""
    rows = list(rows)
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(format_value(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (
        f'{TABLE_STYLE}<table class="kit-table">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def kv_rows(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in mapping.items()]


def kv_table(mapping: Mapping[str, Any], caption: str | None = None) -> str:
    return html_table(kv_rows(mapping), ["name", "value"], caption)


def text_block(text: str) -> str:
    """Model or dataset text, escaped and shown with its whitespace."""
    return f'{TABLE_STYLE}<div class="kit-text">{escape(text)}</div>'


def markdown_cell(value: Any) -> str:
    """A pipe-table cell that reads as itself in a wiki and a terminal.

    ``<``, ``>`` and ``&`` become entities (wikis render raw HTML), ``|`` is escaped (and a
    backslash before it doubled, so it cannot escape the escape), newlines become ``<br>``;
    quotes stay quotes.
    """
    text = html.escape(format_value(value), quote=False)
    text = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text)
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def markdown_table(
    rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, caption: str | None = None
) -> str:
    rows = list(rows)
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    lines = [f"**{markdown_cell(caption)}**", ""] if caption else []
    lines.append("| " + " | ".join(markdown_cell(c) for c in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(markdown_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def markdown_text(text: str) -> str:
    """Text shown verbatim: a fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}\n"


def markdown_alt(text: Any) -> str:
    """Alt text inside ``![...](...)``: one line, ``<`` and ``&`` as entities (CommonMark
    decodes them back), brackets and backslashes escaped."""
    one_line = html.escape(" ".join(str(text or "").split()), quote=False)
    return re.sub(r"([\\\[\]])", r"\\\1", one_line)


class _TextOfHTML(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "li", "pre", "table", "caption", "h1", "h2", "h3", "h4"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[tuple[str, bool, bool]] = []  # (tag, keeps whitespace, hidden)

    def _keeps_whitespace(self) -> bool:
        return any(keep for _, keep, _ in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.parts.append(f"[image: {attributes.get('alt') or 'no description'}]")
        elif tag in ("td", "th"):
            self.parts.append("  ")
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag not in self.VOID:
            keeps = tag == "pre" or "kit-text" in (attributes.get("class") or "").split()
            self.open.append((tag, keeps, tag in ("style", "script")))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):  # close it and anything left open in it
            if self.open[i][0] == tag:
                del self.open[i:]
                break
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if any(hidden for _, _, hidden in self.open):
            return
        self.parts.append(data if self._keeps_whitespace() else re.sub(r"\s+", " ", data))


def html_as_text(fragment: str) -> str:
    """The readable text of an HTML fragment, for report.md: no styles, images as their alt
    text, one line per block, whitespace kept in ``<pre>`` and kit text blocks."""
    parser = _TextOfHTML()
    parser.feed(fragment)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).split("\n")]
    text = "\n".join(line if line.strip() else "" for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def figure_description(figure: Any) -> str:
    """What a matplotlib figure shows, from its titles and axis labels: its alt text."""
    parts = []
    for ax in figure.axes:
        title = " ".join(
            t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t
        )
        x, y = ax.get_xlabel(), ax.get_ylabel()
        if title:
            labels = ", ".join(f"{axis}: {label}" for axis, label in (("x", x), ("y", y)) if label)
            parts.append(f"{title} ({labels})" if labels else title)
        elif x or y:
            parts.append(f"{y} against {x}" if x and y else f"{x or y}")
    suptitle = figure.get_suptitle()
    text = "; ".join(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if suptitle:
        text = f"{suptitle}: {text}" if text else suptitle
    return f"Chart: {text}" if text else "Chart without a title"


def figure_png(figure: Any, dpi: int = 100) -> bytes:
    """The figure as PNG, carrying its description (PNG ``Description``) as alt text."""
    import io

    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        dpi=dpi,
        bbox_inches="tight",
        metadata={"Description": figure_description(figure)},
    )
    return buffer.getvalue()


def png_description(png: bytes) -> str | None:
    """The ``Description`` a PNG carries (figure_png writes one), if any."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.text.get("Description") or None


def header_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    from kit.summary import RunSummary

    summary = RunSummary.of(dict(results))
    # a server that refused ignore_eos/min_tokens (kit.server): output lengths are the model's
    control = str((results.get("engine") or {}).get("output_length_control") or "")
    rows = {
        "notebook": summary.notebook,
        "label": summary.label,
        "started": summary.started_at,
        "device": summary.device,
        "model": summary.model,
        "model revision": summary.revision,
        **({"weights": summary.weights} if summary.weights else {}),
        **({"engine": summary.engine} if summary.engine else {}),
        **({"output lengths": control} if control.startswith("not honoured") else {}),
        "status": summary.status,
        **summary.headline,
    }
    return kv_rows(rows)


def _header_html(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""
    table = html_table(header_rows(results), ["name", "value"], "Run")
    return f'<div class="kit-header">{table}</div>'


def _footer_html(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""
    from kit.summary import reproduce_command

    return (
        '<div class="kit-footer"><h2>Reproduce</h2>'
        f"{text_block(reproduce_command(dict(results)))}</div>"
    )


def _read_notebook(notebook_path: Path):
    import nbformat

    return nbformat.read(str(notebook_path), as_version=4)


def render_html(
    notebook_path: Path, html_path: Path, results: Mapping[str, Any] | None = None
) -> Path:
    """Render without code cells or prompts, with a template that fetches nothing and gives
    every image the alt text its output carries (``metadata[mime]["alt"]``).

    With ``results`` (the run's results.json) the page opens with the run's identity and
    headline numbers and ends with the command that reproduces it.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name=HTML_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {"kit_header": _header_html(results), "kit_footer": _footer_html(results)}
    body, _ = exporter.from_notebook_node(_read_notebook(notebook_path), resources=resources)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def markdown_exporter():
    """nbconvert's Markdown exporter with the kit's template: outputs as their Markdown view,
    else an image with its alt text, else HTML as readable text, never an object's repr."""
    from nbconvert import MarkdownExporter
    from traitlets.config import Config

    config = Config()
    config.MarkdownExporter.exclude_input = True
    config.NbConvertBase.display_data_priority = [
        "text/markdown",
        "image/png",
        "image/jpeg",
        "text/html",
        "text/plain",
    ]
    exporter = MarkdownExporter(
        config=config, template_name=MARKDOWN_TEMPLATE, extra_template_basedirs=[str(TEMPLATE_DIR)]
    )
    exporter.register_filter("markdown_alt", markdown_alt)
    exporter.register_filter(
        "html_as_markdown", lambda fragment: markdown_text(html_as_text(fragment))
    )
    return exporter


def render_markdown(
    notebook_path: Path, md_path: Path, results: Mapping[str, Any] | None = None
) -> Path:
    """A wiki-ready copy: pipe tables, figures as PNG files in ``<name>_files/`` beside it."""
    files_dir = f"{md_path.stem}_files"
    body, resources = markdown_exporter().from_notebook_node(
        _read_notebook(notebook_path), resources={"output_files_dir": files_dir}
    )
    for name, data in (resources.get("outputs") or {}).items():
        target = md_path.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    parts = []
    if results:
        from kit.summary import reproduce_command

        parts.append(markdown_table(header_rows(results), ["name", "value"], "Run"))
    parts.append(body)
    if results:
        parts.append("## Reproduce\n\n" + markdown_text(reproduce_command(dict(results))))
    md_path.write_text("\n".join(parts), encoding="utf-8")
    return md_path
