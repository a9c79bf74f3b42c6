"""Figures as PNG, each carrying its own description as alt text.

A figure's description is built from its titles and axis labels and written into the PNG
(``Description``), so the alt text travels with the image into the HTML report and report.md.
"""

from __future__ import annotations

from typing import Any


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
        text: dict[str, str] = getattr(image, "text", {})  # PNG files only
        return text.get("Description") or None
