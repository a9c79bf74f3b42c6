"""What notebooks show. Every output carries two views, HTML (the report, JupyterLab) and
Markdown (report.md, for wikis and terminals), and every image its alt text, which the kit's
templates put into ``<img alt>`` and ``![alt]``.

The ``*_output`` functions build an output as data (tests render them without a kernel);
``show_*`` publish it in the running notebook. Strings are escaped by kit.report.html and
kit.report.markdown.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.report.figures import figure_description, figure_png, png_description
from kit.report.html import html_table, kv_rows, text_block
from kit.report.markdown import html_as_text, markdown_table, markdown_text


@dataclass(frozen=True)
class Output:
    """One display_data output: its views by MIME type and their metadata."""

    data: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def show(self) -> None:
        from IPython.display import publish_display_data

        publish_display_data(self.data, self.metadata)


def table_output(
    rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, caption: str | None = None
) -> Output:
    rows = list(rows)
    return Output(
        {
            "text/html": html_table(rows, columns, caption),
            "text/markdown": markdown_table(rows, columns, caption),
        }
    )


def text_output(text: str) -> Output:
    return Output({"text/html": text_block(text), "text/markdown": markdown_text(text)})


def html_output(fragment: str, markdown: str | None = None) -> Output:
    """An HTML fragment made by the kit (its parts escaped by its maker); report.md gets
    ``markdown``, or else the fragment's text with images as their alt text."""
    if markdown is None:
        markdown = markdown_text(html_as_text(fragment))
    return Output({"text/html": fragment, "text/markdown": markdown})


def png_output(png: bytes, alt: str | None = None) -> Output:
    """A PNG with its alt text: ``alt``, else the description the PNG carries (figures)."""
    alt = alt or png_description(png)
    if not alt:
        raise ValueError("an image needs alt text: pass alt=..., or make it with figure_png")
    return Output(
        {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": alt},
        {"image/png": {"alt": alt}},
    )


def image_alt(image: Any, number: int) -> str:
    return f"input image {number}, {image.width}x{image.height}"


def image_output(image: Any, alt: str, max_side: int = 384) -> Output:
    """A PIL image as a PNG thumbnail (at most ``max_side`` pixels a side)."""
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return png_output(buffer.getvalue(), alt)


def figure_output(figure: Any, alt: str | None = None) -> Output:
    """A matplotlib figure as PNG; its alt text defaults to its titles and axis labels."""
    return png_output(figure_png(figure), alt or figure_description(figure))


def show_table(
    rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, caption: str | None = None
) -> None:
    """A results table: HTML in the report, a pipe table in report.md."""
    table_output(rows, columns, caption).show()


def show_kv(mapping: Mapping[str, Any], caption: str | None = None) -> None:
    """A name/value table."""
    show_table(kv_rows(mapping), ["name", "value"], caption)


def show_text(text: str) -> None:
    """Model, dataset or user text, escaped, with its whitespace, wrapped when long."""
    text_output(text).show()


def show_html(fragment: str, markdown: str | None = None) -> None:
    """A fragment the kit built (e.g. kit.mmmu.report's gallery), with a Markdown view."""
    html_output(fragment, markdown).show()


def show_png(png: bytes, alt: str | None = None) -> None:
    """PNG bytes (a chart the kit drew) with alt text; see png_output."""
    png_output(png, alt).show()


def show_images(
    images: Iterable[Any], max_side: int = 384, alts: Iterable[str] | None = None
) -> None:
    """Thumbnails, each with alt text: ``alts``, else "input image N, WxH" (full size)."""
    images = list(images)
    alts = list(alts) if alts is not None else [image_alt(im, i) for i, im in enumerate(images, 1)]
    for image, alt in zip(images, alts, strict=True):
        image_output(image, alt, max_side).show()


def show_figure(figure: Any, alt: str | None = None) -> None:
    """A matplotlib figure as a static PNG (whatever the backend), then freed."""
    import matplotlib.pyplot as plt

    figure_output(figure, alt).show()
    plt.close(figure)


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


def show_parameters(parameters: Mapping[str, Any]) -> None:
    show_kv(flatten(parameters), "Parameters")


def show_engine(engine: Any) -> None:
    """The engine's effective configuration (kit.records.engine.EngineRecord), with a
    banner when its weights are random."""
    if engine.config.weights_note:
        show_text(engine.config.weights_note)
    show_kv(engine.config.to_dict(), "Engine (as vLLM configured it)")


def show_environment(environment: Any) -> None:
    """The run's environment (``run.environment`` after ``run.finish()``: a
    kit.records.environment.EnvironmentRecord, or its mapping)."""
    to_dict = getattr(environment, "to_dict", None)
    show_kv(flatten(to_dict() if callable(to_dict) else environment), "Environment")
