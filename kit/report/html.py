"""HTML pieces: escaping, tables and text blocks in the kit's own look.

Everything that reaches HTML from a model, a dataset or a user goes through :func:`escape`:
every table header and cell, every text block. The kit's table and text styles are also
written under ``.jp-RenderedHTMLCommon``, so JupyterLab's own table rules do not win inside
outputs and a table looks the same in the report, in JupyterLab and on the index page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

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
    # Short columns (a section, a verdict, a link) keep their words whole: "anywhere" above
    # lets the table squeeze a column to one letter and break "section" as "sect ion".
    (
        ".kit-table th.kit-short,.kit-table td.kit-short",
        "white-space:nowrap;overflow-wrap:normal;word-break:normal",
    ),
    # A verdict as a badge coloured by its meaning; the word itself stays the verdict.
    (
        ".kit-verdict",
        "display:inline-block;padding:0 7px;border:1px solid;border-radius:9px;"
        "white-space:nowrap;font-weight:600;line-height:1.5",
    ),
    (".kit-verdict-good", "background:#e6f4ea;color:#17602a;border-color:#9fd3ad"),
    (".kit-verdict-bad", "background:#fde7e7;color:#9b1c1c;border-color:#eea5a5"),
    (".kit-verdict-neutral", "background:#eef0f3;color:#3f4752;border-color:#c3c9d1"),
    (".kit-verdict-missing", "background:#fff5d9;color:#7a5200;border-color:#e6c46a"),
    (".kit-legend", "margin:0.4em 0;font-size:0.9rem;line-height:1.9"),
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


def badge(text: str, kind: str) -> str:
    """``text`` (escaped) as a coloured badge: kind is good, bad, neutral or missing."""
    return f'<span class="kit-verdict kit-verdict-{escape(kind)}">{escape(text)}</span>'


def text_block(text: str) -> str:
    """Model or dataset text, escaped and shown with its whitespace."""
    return f'{TABLE_STYLE}<div class="kit-text">{escape(text)}</div>'
