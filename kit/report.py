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


def kv_rows(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in mapping.items()]


def kv_table(mapping: Mapping[str, Any], caption: str | None = None) -> str:
    return html_table(kv_rows(mapping), ["name", "value"], caption)


def text_block(text: str) -> str:
    """Model or dataset text, escaped and shown with its whitespace."""
    return f'{TABLE_STYLE}<div class="kit-text">{escape(text)}</div>'


def markdown_cell(value: Any) -> str:
    """A pipe-table cell: HTML-escaped (wikis render raw HTML), pipes and newlines neutralised."""
    text = escape(format_value(value)).replace("|", "\\|")
    return text.replace("\r\n", "<br>").replace("\n", "<br>")


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
    fence = "````" if "```" in text else "```"
    return f"{fence}text\n{text}\n{fence}\n"


def _display_bundle(html_fragment: str, markdown: str) -> None:
    from IPython.display import display

    display({"text/html": html_fragment, "text/markdown": markdown}, raw=True)


def show_table(
    rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, caption: str | None = None
) -> None:
    """A results table: HTML in the report, a pipe table in report.md."""
    rows = list(rows)
    _display_bundle(html_table(rows, columns, caption), markdown_table(rows, columns, caption))


def show_kv(mapping: Mapping[str, Any], caption: str | None = None) -> None:
    show_table(kv_rows(mapping), ["name", "value"], caption)


def show_text(text: str) -> None:
    """Model, dataset or user text, escaped in both the HTML and the Markdown report."""
    _display_bundle(text_block(text), markdown_text(text))


def show_engine(engine: Any) -> None:
    """The engine's effective configuration, with a banner when its weights are random."""
    if engine.config.get("weights_note"):
        show_text(engine.config["weights_note"])
    show_kv(engine.config, "Engine (as vLLM configured it)")


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


def header_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    from kit.summary import RunSummary

    summary = RunSummary.of(dict(results))
    rows = {
        "notebook": summary.notebook,
        "label": summary.label,
        "started": summary.started_at,
        "device": summary.device,
        "model": summary.model,
        "model revision": summary.revision,
        **({"weights": summary.weights} if summary.weights else {}),
        **({"engine": summary.engine} if summary.engine else {}),
        "status": summary.status,
        **summary.headline,
    }
    return kv_rows(rows)


def _header_html(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""
    table = html_table(header_rows(results), ["name", "value"], "Run")
    return f'<div class="kit-header" style="padding:1em 2em 0 2em">{table}</div>'


def _footer_html(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""
    from kit.summary import reproduce_command

    return (
        '<div class="kit-footer" style="padding:0 2em 2em 2em"><h2>Reproduce</h2>'
        f"{text_block(reproduce_command(dict(results)))}</div>"
    )


def _read_notebook(notebook_path: Path):
    import nbformat

    return nbformat.read(str(notebook_path), as_version=4)


def render_html(
    notebook_path: Path, html_path: Path, results: Mapping[str, Any] | None = None
) -> Path:
    """Render without code cells or prompts, with a template that fetches nothing.

    With ``results`` (the run's results.json) the page opens with the run's identity and
    headline numbers and ends with the command that reproduces it.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="kit_report",
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {"kit_header": _header_html(results), "kit_footer": _footer_html(results)}
    body, _ = exporter.from_notebook_node(_read_notebook(notebook_path), resources=resources)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def render_markdown(
    notebook_path: Path, md_path: Path, results: Mapping[str, Any] | None = None
) -> Path:
    """A wiki-ready copy: pipe tables, figures as PNG files in ``<name>_files/`` beside it."""
    from nbconvert import MarkdownExporter
    from traitlets.config import Config

    config = Config()
    config.MarkdownExporter.exclude_input = True
    config.NbConvertBase.display_data_priority = [
        "text/markdown",
        "image/png",
        "image/jpeg",
        "text/plain",
        "text/html",
    ]
    exporter = MarkdownExporter(config=config)
    files_dir = f"{md_path.stem}_files"
    body, resources = exporter.from_notebook_node(
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
