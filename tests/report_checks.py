"""Shared by the tests that make reports: what every rendered report must satisfy (no
object reprs or entity-escaped quotes in report.md, alt text on every image in both files,
no missing-alt warning from nbconvert in the output of the command that rendered them), and
a notebook holding every kind of output kit.report.display makes."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from kit.report.display import (
    Output,
    figure_output,
    html_output,
    image_alt,
    image_output,
    table_output,
    text_output,
)

NBCONVERT_DEFAULT_ALT = "No description has been provided for this image"
PROGRESS_OR_ENGINE_OUTPUT = [  # what no wiki copy may carry
    re.compile(r"\x1b\["),  # terminal colour codes
    re.compile(r"\d+%\|"),  # a tqdm bar
    re.compile(r"it/s\]|s/it\]"),  # a tqdm rate
    re.compile(r"Loading safetensors checkpoint shards"),
    re.compile(r"\(EngineCore|\(APIServer|INFO \d\d-\d\d "),  # vLLM's log lines
]
MISSING_ALT_WARNING = "Alternative text is missing"
LONG_TOKEN = "x" * 3000
TRICKY = {"name": "a|b\\|c", "value": "line 1\nline 2 <b>bold</b> & 'single' \"double\""}
RESULTS_WITH_LONG_LABEL = {  # a results.json as the report header reads it
    "schema_version": 1,
    "notebook": "demo",
    "status": "ok",
    "label": "L" * 500,
    "started_at": "2026-01-01T00:00:00+00:00",
    "parameters": {"model": "smoke", "prompt": "p"},
    "environment": {},
}


def write_notebook(path: Path, outputs: list[Output], cell_metadata=None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cell = nbformat.v4.new_code_cell("secret_code = 1", metadata=cell_metadata or {})
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=o.data, metadata=o.metadata) for o in outputs
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title $x^2$"), cell]
    nbformat.write(nb, path)
    return path


def a_figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3, 2))
    ax = figure.subplots()
    ax.plot([1, 2, 3])
    ax.set_title("TTFT <ms> by input_len")
    ax.set_xlabel("input_len")
    ax.set_ylabel("TTFT (ms)")
    return figure


def every_kind_of_output() -> list[Output]:
    from PIL import Image

    picture = Image.new("RGB", (1024, 768), (200, 60, 60))
    return [
        table_output([{"name": "image", "value": ["demo"]}, TRICKY], caption="Params"),
        text_output("answer: " + LONG_TOKEN),
        figure_output(a_figure()),
        image_output(picture, image_alt(picture, 1)),
        html_output(
            "<style>.card{color:red}</style><p>Example: <b>q&amp;1</b></p>"
            '<img src="data:image/png;base64,AAAA" alt="image_1 of q1"><pre>line a\nline b</pre>'
        ),
    ]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.alts: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.alts.append(dict(attrs).get("alt"))


def img_alts(html: str) -> list[str | None]:
    """The alt attribute of every <img> (None when absent), entities decoded."""
    parser = _Images()
    parser.feed(html)
    return parser.alts


def markdown_images(md: str) -> list[tuple[str, str]]:
    """(alt, target) of every ``![alt](target)``, the alt as written (escapes kept)."""
    return re.findall(r"!\[((?:\\.|[^\]\\])*)\]\(([^)\s]+)\)", md)


def check_report_files(
    folder: Path,
    command_output: str = "",
    html_name: str = "report.html",
    md_name: str | None = "report.md",
) -> None:
    html = (folder / html_name).read_text(encoding="utf-8")
    alts = img_alts(html)
    bad = [alt for alt in alts if not (alt or "").strip() or alt == NBCONVERT_DEFAULT_ALT]
    assert not bad, f"{html_name}: {len(bad)} of {len(alts)} image(s) without alt text"
    assert MISSING_ALT_WARNING not in command_output
    if md_name is None:
        return
    md = (folder / md_name).read_text(encoding="utf-8")
    assert "IPython.core.display" not in md, f"{md_name} shows an object's repr"
    for noise in PROGRESS_OR_ENGINE_OUTPUT:
        assert not noise.search(md), f"{md_name} shows {noise.pattern!r}: {noise.search(md)[0]!r}"
    for entity in ("&#x27;", "&#39;", "&quot;"):
        assert entity not in md, f"{md_name} shows quotes as {entity}"
    for alt, target in markdown_images(md):
        assert alt.strip() and alt not in ("png", "jpeg"), f"{md_name}: image {target} has no alt"
        assert target.startswith("data:") or (folder / target).is_file(), f"{target} is missing"
