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


def text_block(text: str) -> str:
    """Model or dataset text, escaped and shown with its whitespace."""
    return f'{TABLE_STYLE}<div class="kit-text">{escape(text)}</div>'
