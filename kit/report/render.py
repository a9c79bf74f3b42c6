"""An executed notebook rendered as an offline HTML report and a wiki-ready Markdown copy.

Both leave out code cells and prompts, progress widgets and the stderr stream. With the
run's results.json they open with the run's identity and headline numbers and end with the
command that reproduces it. The HTML template fetches nothing and gives every image the alt
text its output carries; the Markdown copy takes each output's Markdown view, else the image
with its alt text, else HTML as readable text, and writes figures as PNG files beside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kit.core.files import write_atomic
from kit.core.paths import TEMPLATES_DIR
from kit.records.summary import RunSummary, reproduce_command
from kit.report.html import html_table, kv_rows, text_block
from kit.report.markdown import html_as_text, markdown_alt, markdown_table, markdown_text

HTML_TEMPLATE = "kit_report"

MARKDOWN_TEMPLATE = "kit_markdown"


def header_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
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
        **({"output lengths": summary.output_lengths} if summary.output_lengths else {}),
        "status": summary.status,
        **summary.headline,
    }
    return kv_rows(rows)


def _header_html(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""
    table = html_table(header_rows(results), ["name", "value"], "Run")
    return f'<div class="kit-header">{table}</div>'


#: How a report reaches a wiki (``kit share``), at the end of every run's report.
SHARE_HINT = (
    "python -m kit share <this run's folder> --git-wiki <a clone of your wiki>\n"
    "python -m kit share <this run's folder> --confluence <URL> --space <KEY>\n"
    "python -m kit share <this run's folder> --mediawiki <URL>\n"
    "(docs/sharing.md: pages, figures and an index; sharing again updates)"
)


def _footer_html(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""

    return (
        '<div class="kit-footer"><h2>Reproduce</h2>'
        f"{text_block(reproduce_command(dict(results)))}"
        f"<h2>Share</h2>{text_block(SHARE_HINT)}</div>"
    )


class NotebookUnreadable(ValueError):
    """A file that is not a notebook (torn by a full disk, hand-edited, another format)."""


#: A widget's view (a tqdm progress bar in the kernel): nothing to read once the kernel is gone,
#: only its text/plain stand-in ("Loading safetensors checkpoint shards: 0% ...").
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def reader_outputs(outputs: list[Any]) -> list[Any]:
    """What a report shows of a cell's outputs: no progress widgets and no stderr stream
    (libraries' progress and warnings; vLLM's own log goes to engine.log), stdout without
    terminal colour codes. Results, figures and errors stay."""
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream":
            if output.get("name") == "stderr":
                continue
            output["text"] = ANSI_CODE.sub("", output.get("text", ""))
        elif WIDGET_VIEW in (output.get("data") or {}):
            continue
        kept.append(output)
    return kept


def _read_notebook(notebook_path: Path):
    """The executed notebook, with only what a reader should see in its outputs."""
    notebook = _read_raw_notebook(notebook_path)
    for cell in notebook.cells:
        if "outputs" in cell:
            cell.outputs = reader_outputs(cell.outputs)
    return notebook


def _read_raw_notebook(notebook_path: Path):
    import nbformat

    try:
        return nbformat.read(str(notebook_path), as_version=4)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise NotebookUnreadable(
            f"{notebook_path} is not a readable notebook ({reason}). It may have been cut "
            "short (a full disk, a killed process): render the run's earlier attempt "
            "(*.attempt-N.ipynb) or run the notebook again."
        ) from None


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
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {"kit_header": _header_html(results), "kit_footer": _footer_html(results)}
    body, _ = exporter.from_notebook_node(_read_notebook(notebook_path), resources=resources)
    write_atomic(html_path, body)
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
        config=config, template_name=MARKDOWN_TEMPLATE, extra_template_basedirs=[str(TEMPLATES_DIR)]
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
        write_atomic(target, data)
    parts = []
    if results:
        parts.append(markdown_table(header_rows(results), ["name", "value"], "Run"))
    parts.append(body)
    if results:
        parts.append("## Reproduce\n\n" + markdown_text(reproduce_command(dict(results))))
        parts.append("## Share\n\n" + markdown_text(SHARE_HINT))
    write_atomic(md_path, "\n".join(parts))
    return md_path
