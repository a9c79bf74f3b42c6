"""What notebooks show, and turning an executed notebook into an offline HTML report.

Everything that reaches HTML from a model, a dataset or a user is escaped here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kit import PACKAGE_DIR

TEMPLATE_DIR = PACKAGE_DIR / "templates"
TABLE_STYLE = (
    "<style>.kit-table{border-collapse:collapse;margin:0.5em 0;font-size:0.95em}"
    ".kit-table th,.kit-table td{border:1px solid #ccc;padding:3px 8px;text-align:left;"
    "vertical-align:top}.kit-table th{background:#f3f3f3}.kit-table caption{text-align:left;"
    "font-weight:bold;padding:2px 0}.kit-text{white-space:pre-wrap;border-left:3px solid #4a7;"
    "padding:4px 10px;background:#f8faf8;font-family:monospace}</style>"
)


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


def kv_table(mapping: Mapping[str, Any], caption: str | None = None) -> str:
    return html_table(
        [{"name": k, "value": v} for k, v in mapping.items()], ["name", "value"], caption
    )


def text_block(text: str) -> str:
    """Model or dataset text, escaped and shown with its whitespace."""
    return f'{TABLE_STYLE}<div class="kit-text">{escape(text)}</div>'


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys, for one readable name/value table."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def show_images(images: Iterable[Any], max_side: int = 384) -> None:
    """Thumbnails as static PNG outputs (inlined into the HTML report)."""
    from IPython.display import display

    for image in images:
        thumb = image.copy()
        thumb.thumbnail((max_side, max_side))
        display(thumb)


def figure_png(figure, dpi: int = 100) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def show_figure(figure) -> None:
    """Display a matplotlib figure as a static PNG (whatever the backend), then free it."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    display(Image(data=figure_png(figure)))
    plt.close(figure)


def show(fragment: str) -> None:
    from IPython.display import HTML, display

    display(HTML(fragment))


def render_html(notebook_path: Path, html_path: Path) -> Path:
    """Render without code cells or prompts, with a template that fetches nothing."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(notebook_path), as_version=4)
    exporter = HTMLExporter(
        template_name="kit_report",
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    html_path.write_text(body, encoding="utf-8")
    return html_path
