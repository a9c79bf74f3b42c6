"""Report pieces: escaping for HTML and Markdown, alt text on every image, and renderings
that fetch nothing from the network and read well in a browser, a wiki and a terminal.

Notebook outputs are built with kit.report.display's builders, exactly what ``display.show_*``
publish in a kernel; one test runs them in a real kernel too.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kit.report.display import (
    Output,
    png_output,
)
from kit.report.figures import figure_description, figure_png, png_description
from kit.report.html import TABLE_STYLE, html_table, text_block
from kit.report.markdown import html_as_text, markdown_alt, markdown_table, markdown_text
from kit.report.render import render_html, render_markdown

from .conftest import kit_in_process
from .report_checks import (
    LONG_TOKEN,
    NBCONVERT_DEFAULT_ALT,
    RESULTS_WITH_LONG_LABEL,
    TRICKY,
    a_figure,
    check_report_files,
    every_kind_of_output,
    img_alts,
    markdown_images,
    write_notebook,
)


@pytest.fixture
def rendered(tmp_path, caplog):
    """Every kind of output rendered both ways, with what nbconvert logged."""
    path = write_notebook(tmp_path / "nb.ipynb", every_kind_of_output())
    with caplog.at_level(logging.INFO):
        html = render_html(path, tmp_path / "report.html").read_text()
        md = render_markdown(path, tmp_path / "report.md").read_text()
    return tmp_path, html, md, caplog.text


# --------------------------------------------------------------------------------------------
# Strings
# --------------------------------------------------------------------------------------------


def test_tables_and_text_escape_everything():
    table = html_table([{"<b>col</b>": "<script>alert(1)</script>"}])
    assert "<script>" not in table and "&lt;script&gt;" in table
    assert "&lt;b&gt;col&lt;/b&gt;" in table
    block = text_block('a < b & "c"')
    assert "a &lt; b &amp; &quot;c&quot;" in block


def split_row(line: str) -> list[str]:
    """Cells of a pipe-table row as GFM splits them: on pipes not escaped by a backslash."""
    cells, current, chars = [], "", iter(line.strip().strip("|"))
    for char in chars:
        if char == "\\":
            current += char + next(chars, "")
        elif char == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def test_markdown_cells_escape_markup_not_quotes():
    md = markdown_table([TRICKY, {"name": "list", "value": ["demo"]}])
    lines = md.splitlines()
    assert len(lines) == 4  # header, rule, two rows: the newline did not break the row
    assert split_row(lines[2]) == [
        "a\\|b\\\\\\|c",
        "line 1<br>line 2 &lt;b&gt;bold&lt;/b&gt; &amp; 'single' \"double\"",
    ]
    assert split_row(lines[3]) == ["list", "['demo']"]
    assert "&#x27;" not in md and "&quot;" not in md


def test_markdown_text_fence_is_longer_than_any_backtick_run():
    text = "code: ````inner```` and ```"
    block = markdown_text(text)
    fence = block.split("text\n", 1)[0]
    assert fence == "`" * 5 and block.endswith(f"\n{fence}\n") and text in block


def test_markdown_alt_is_one_line_and_cannot_close_the_brackets():
    assert markdown_alt("a [b]\n<c> & \\") == "a \\[b\\] &lt;c&gt; &amp; \\\\"


def test_html_as_text_keeps_words_and_alt_text_drops_styles():
    text = html_as_text(
        "<style>.x{color:red}</style><div>Q &amp; A:<b> bold</b></div>"
        '<img src="x" alt="image_1"><pre>keep\n  indent</pre><table><tr><td>1</td></tr></table>'
    )
    assert text.splitlines() == ["Q & A: bold", "[image: image_1]", "keep", "  indent", "", "  1"]


def test_html_as_text_keeps_the_lines_of_kit_text_blocks():
    fragment = "<p>Prompt:</p>" + text_block("<|user|>\n  What is <this>?\n<|end|>")
    assert html_as_text(fragment).splitlines() == [
        "Prompt:",
        "",
        "<|user|>",
        "  What is <this>?",
        "<|end|>",
    ]
    assert html_as_text("<div>a\n   b</div>") == "a b"


def test_figures_carry_their_description_as_png_metadata():
    png = figure_png(a_figure())
    description = png_description(png)
    assert description == "Chart: TTFT <ms> by input_len (x: input_len, y: TTFT (ms))"
    output = png_output(png)
    assert output.metadata == {"image/png": {"alt": description}}
    assert png_output(png, alt="mine").metadata["image/png"]["alt"] == "mine"


def test_untitled_axes_are_described_by_their_labels():
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = figure.subplots(1, 2)
    left.set_xlabel("input_len")
    left.set_ylabel("TTFT (ms)")
    right.set_xlabel("batch_size")
    figure.suptitle("Sweep")
    assert figure_description(figure) == "Chart: Sweep: TTFT (ms) against input_len; batch_size"
    assert figure_description(Figure()) == "Chart without a title"


def test_an_image_without_alt_text_is_refused():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    with pytest.raises(ValueError, match="alt text"):
        png_output(buffer.getvalue())


# --------------------------------------------------------------------------------------------
# Rendered reports
# --------------------------------------------------------------------------------------------


def test_rendered_report_hides_code_and_loads_nothing_remote(rendered):
    _, html, _, _ = rendered
    assert "Params" in html and "secret_code" not in html
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=[\"']https?://", html)
    assert "@import url(http" not in html


def test_every_image_has_its_alt_text_and_nbconvert_warns_of_none(rendered):
    folder, html, md, logged = rendered
    assert "Alternative text is missing" not in logged
    assert img_alts(html) == [
        "Chart: TTFT <ms> by input_len (x: input_len, y: TTFT (ms))",
        "input image 1, 1024x768",
        "image_1 of q1",
    ]
    images = markdown_images(md)
    assert [alt for alt, _ in images] == [
        "Chart: TTFT &lt;ms&gt; by input_len (x: input_len, y: TTFT (ms))",
        "input image 1, 1024x768",
    ]
    assert all((folder / target).is_file() for _, target in images)
    check_report_files(folder)


def test_markdown_report_reads_as_text(rendered):
    _, _, md, _ = rendered
    assert "IPython.core.display" not in md
    assert "| image | ['demo'] |" in md
    assert "```text\nanswer: " + LONG_TOKEN + "\n```" in md
    assert "```text\nExample: q&1\n[image: image_1 of q1]\nline a\nline b\n```" in md
    assert ".card" not in md  # styles are not text


def test_long_text_wraps_in_html(rendered):
    _, html, _, _ = rendered
    rules = dict(re.findall(r"([^{}]+)\{([^{}]*)\}", TABLE_STYLE.removeprefix("<style>")))
    text_rule = next(body for selectors, body in rules.items() if ".kit-text" in selectors)
    cell_rule = next(body for selectors, body in rules.items() if ".kit-table td" in selectors)
    assert "overflow-wrap:anywhere" in text_rule and "overflow-wrap:anywhere" in cell_rule
    assert TABLE_STYLE in html and LONG_TOKEN in html


def test_html_only_outputs_become_text_in_markdown_not_their_repr(tmp_path):
    """Outputs made without kit.report.display (IPython's HTML object, a DataFrame) still read."""
    html_object = Output(
        {
            "text/html": "<p>made &lt;elsewhere&gt;</p>",
            "text/plain": "<IPython.core.display.HTML object>",
        }
    )
    path = write_notebook(tmp_path / "nb.ipynb", [html_object])
    md = render_markdown(path, tmp_path / "report.md").read_text()
    assert "IPython.core.display" not in md and "made <elsewhere>" in md


def test_cell_alt_metadata_is_the_fallback_and_missing_alt_is_reported(tmp_path, caplog):
    png = figure_png(a_figure())
    bare = Output({"image/png": png_output(png).data["image/png"]})
    with_cell_alt = write_notebook(tmp_path / "a.ipynb", [bare], {"alt": "from the cell"})
    assert img_alts(render_html(with_cell_alt, tmp_path / "a.html").read_text()) == [
        "from the cell"
    ]
    without = write_notebook(tmp_path / "b.ipynb", [bare])
    with caplog.at_level(logging.WARNING):
        html = render_html(without, tmp_path / "b.html").read_text()
    assert "Alternative text is missing on 1 image(s)" in caplog.text
    assert img_alts(html) == [NBCONVERT_DEFAULT_ALT]
    with pytest.raises(AssertionError, match="alt"):
        check_report_files(tmp_path, html_name="b.html", md_name=None)


def test_the_run_header_uses_the_report_table_style(tmp_path):
    results = RESULTS_WITH_LONG_LABEL
    path = write_notebook(tmp_path / "nb.ipynb", every_kind_of_output()[:1])
    html = render_html(path, tmp_path / "report.html", results).read_text()
    header = re.search(r'<div class="kit-header">(.*?)</div>', html, re.S).group(1)
    assert header.startswith(TABLE_STYLE) and '<table class="kit-table">' in header
    md = render_markdown(path, tmp_path / "report.md", results).read_text()
    assert md.startswith("**Run**\n\n| name | value |") and "## Reproduce" in md
    # and how to put it on a wiki, last in both
    assert md.rstrip().endswith("sharing again updates)\n```")  # a text block, last
    share = html.split("<h2>Share</h2>")[1]
    assert "python -m kit share &lt;this run" in share and "--git-wiki &lt;a clone" in share


def test_display_helpers_publish_in_a_real_kernel(tmp_path):
    """What show_* publish in a kernel is what the builders return; rendered, it has alt
    text everywhere and no object reprs."""
    from nbclient import NotebookClient

    code = "\n".join(
        [
            "import matplotlib.pyplot as plt",
            "from PIL import Image",
            "from kit.report import display",
            "display.show_parameters({'image': ['demo'], 'engine_args': {'a': 1}})",
            "display.show_text('generated ' + 'y' * 500)",
            "figure, ax = plt.subplots()",
            "ax.set_title('Sweep')",
            "display.show_figure(figure)",
            "display.show_images([Image.new('RGB', (64, 32))])",
            "display.show_html('<p>fragment</p>')",
            "display.show_environment({'python': '3.11', 'packages': {'vllm': '0.32.0'}})",
        ]
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(code)]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(Path.cwd())}}
    ).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"] * 6  # the figure shown once
    assert outputs[2].metadata["image/png"]["alt"] == "Chart: Sweep"
    assert outputs[3].metadata["image/png"]["alt"] == "input image 1, 64x32"
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    md = render_markdown(path, tmp_path / "report.md").read_text()
    assert "| engine_args.a | 1 |" in md and "| packages.vllm | 0.32.0 |" in md
    assert "**Environment**" in md
    render_html(path, tmp_path / "report.html")
    check_report_files(tmp_path)


# --------------------------------------------------------------------------------------------
# python -m kit render
# --------------------------------------------------------------------------------------------


def test_render_writes_html_and_markdown_next_to_the_notebook_with_its_results(tmp_path):
    """docs/usage.md: ``python -m kit render out.ipynb`` after plain papermill -> out.html (and
    out.md), with the run's header and reproduce command when its results are beside it."""
    notebook = write_notebook(tmp_path / "out.ipynb", every_kind_of_output()[:1])
    results = {**RESULTS_WITH_LONG_LABEL, "label": "rendered-label"}
    (tmp_path / "out.results.json").write_text(json.dumps(results))
    (tmp_path / "results.json").write_text(json.dumps({**results, "label": "folder-label"}))
    proc = kit_in_process("render", str(notebook))
    assert proc.returncode == 0, proc.stderr
    html, md = tmp_path / "out.html", tmp_path / "out.md"
    assert proc.stdout.split() == [str(html), str(md)]
    for text in (html.read_text(), md.read_text()):
        assert "rendered-label" in text and "folder-label" not in text  # out.results.json first
        assert "Reproduce" in text and "papermill notebooks/demo.ipynb" in text
        assert "Params" in text and "secret_code" not in text  # the notebook, code hidden
    check_report_files(tmp_path, html_name="out.html", md_name="out.md")


def test_render_finds_the_run_folder_s_results_and_takes_an_output_path(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    notebook = write_notebook(folder / "demo.ipynb", every_kind_of_output()[:1])
    (folder / "results.json").write_text(json.dumps({**RESULTS_WITH_LONG_LABEL, "label": "mine"}))
    target = tmp_path / "elsewhere" / "page.html"
    target.parent.mkdir()
    proc = kit_in_process("render", str(notebook), "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "mine" in target.read_text() and "mine" in target.with_suffix(".md").read_text()
    assert not (folder / "demo.html").exists()


def test_render_without_results_renders_the_notebook_alone(tmp_path):
    notebook = write_notebook(tmp_path / "plain.ipynb", every_kind_of_output()[:1])
    assert kit_in_process("render", str(notebook)).returncode == 0
    html = (tmp_path / "plain.html").read_text()
    assert "Params" in html and 'class="kit-header"' not in html and "Reproduce" not in html
    assert "## Reproduce" not in (tmp_path / "plain.md").read_text()


def test_render_of_a_missing_notebook_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope.ipynb"
    proc = kit_in_process("render", str(missing))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {missing} does not exist"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "text", ['{"cells": [{"cell_type": "mark', '{"cells": 5}', "[]"], ids=["torn", "odd", "list"]
)
def test_render_of_a_torn_or_malformed_notebook_is_one_paragraph(tmp_path, text):
    notebook = tmp_path / "demo.ipynb"
    notebook.write_text(text)
    proc = kit_in_process("render", str(notebook))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {notebook} is not a readable notebook (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.ipynb"]  # nothing written


# --------------------------------------------------------------------------------------------
# The reproduce command at the end of every report
# --------------------------------------------------------------------------------------------


def papermill_namespace(command: str, monkeypatch) -> tuple[str, dict]:
    """What the papermill command hands the notebook: its own command line parses the
    arguments (execution stubbed), its Python translator writes the parameters cell, and
    that cell runs. The notebook name and the namespace the kit's schema then reads."""
    from papermill import cli
    from papermill.translators import PythonTranslator

    args = shlex.split(command)
    assert args[0] == "papermill"
    seen = {}
    monkeypatch.setattr(cli, "execute_notebook", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # papermill sets it otherwise
    cli.papermill.main(args[1:], standalone_mode=False)
    namespace: dict = {}
    exec(PythonTranslator.codify(seen["parameters"]), namespace)  # noqa: S102
    return Path(seen["input_path"]).stem, namespace


def round_trip(record: dict, monkeypatch) -> tuple[Any, Any]:
    """The parameters the record's reproduce command gives its notebook, and the ones the
    record holds, each as the notebook's schema reads them."""
    from kit.cli.notebooks import schema_for
    from kit.core.params import build, collect
    from kit.records.summary import reproduce_command

    notebook, namespace = papermill_namespace(reproduce_command(record), monkeypatch)
    assert notebook == record["notebook"]
    schema = schema_for(notebook)
    return collect(schema, namespace), build(schema, record["parameters"])


def record_of(tmp_path: Path, notebook: str, values: dict) -> tuple[dict, Any]:
    """results.json as a run with these parameters writes it (Run.save), and its params."""
    from kit.cli.notebooks import schema_for
    from kit.core.params import build
    from kit.runs.record import Run, RunPaths

    params = build(schema_for(notebook), values)
    paths = RunPaths(tmp_path, tmp_path / "results.json", tmp_path / "engine.log")
    Run(notebook=notebook, params=params, paths=paths).save("ok")
    return json.loads(paths.results.read_text()), params


@pytest.mark.parametrize(
    ("notebook", "values"),
    [
        (
            "demo",
            {
                "prompt": 'Is "this" a <b>robot</b>? \\ # 🤖 ok\nsecond line é \x7f\x85\u2028',
                "image": ["demo", "kit/assets/demo_robot.png"],
                "temperature": 1e-05,  # YAML reads 1e-05 as a string
                "label": "2026-01-01",  # and this as a date, unless quoted
                "max_output_len": 7,
            },
        ),
        (
            "perf",
            {
                "input_len": [800, 1024],
                "batch_size": "1,2",
                "device_peaks": {"X": {"memory_bandwidth_GBps": 100.5, "bf16_dense_tflops": 2}},
                "label": "yes",  # YAML 1.1 reads yes as true, unless quoted
            },  # request_rate keeps its default: inf, all at once
        ),
        ("mmmu", {"subjects": ["Art", "Physics"], "limit": 3}),
    ],
    ids=["demo", "perf", "mmmu"],
)
def test_reproduce_command_gives_the_run_its_parameters_back(
    tmp_path, monkeypatch, notebook, values
):
    record, params = record_of(tmp_path, notebook, values)
    rerun, recorded = round_trip(record, monkeypatch)
    assert asdict(rerun) == asdict(params)  # what the run itself had
    assert asdict(recorded) == asdict(params)  # and what its record says it had


@pytest.mark.slow
def test_the_command_a_report_prints_reproduces_its_run(demo_run, monkeypatch):
    """The command as printed at the end of report.md (the session's demo: a prompt that
    needs escaping and an image list; a perf sweep's infinite request_rate is
    test_reproduce_command_gives_the_run_its_parameters_back's)."""
    import html as html_module

    folder, _ = demo_run
    record = json.loads((folder / "results.json").read_text())
    (command,) = [
        line
        for line in (folder / "report.md").read_text().split("## Reproduce")[1].splitlines()
        if line.startswith("papermill ")
    ]
    page = (folder / "report.html").read_text()
    shown = re.search(r'<h2>Reproduce</h2>.*?<div class="kit-text">(.*?)</div>', page, re.S)
    assert html_module.unescape(shown.group(1)) == command
    from kit.records.summary import reproduce_command

    assert command == reproduce_command(record)
    rerun, recorded = round_trip(record, monkeypatch)
    assert asdict(rerun) == asdict(recorded)


def test_reports_leave_out_progress_widgets_stderr_and_colour_codes(tmp_path):
    """What a kernel prints around the results (vLLM's tqdm bar as a widget, libraries'
    warnings on stderr, coloured text) never reaches report.md or report.html."""
    import nbformat

    from kit.report.render import render_html, render_markdown

    nb = nbformat.v4.new_notebook()
    bar = "Loading safetensors checkpoint shards:   0% Completed | 0/1 [00:00<?, ?it/s]\n"
    nb.cells.append(nbformat.v4.new_code_cell("engine = start()"))
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2},
                "text/plain": bar,
            },
        ),
        nbformat.v4.new_output("stream", name="stderr", text="WARNING a library speaks\n"),
        nbformat.v4.new_output("stream", name="stdout", text="\x1b[32mstarted\x1b[0m in 3 s\n"),
        nbformat.v4.new_output("display_data", data={"text/markdown": "**the result**"}),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    md = render_markdown(path, tmp_path / "report.md").read_text()
    html = render_html(path, tmp_path / "report.html").read_text()
    for page in (md, html):
        assert "Loading safetensors" not in page and "library speaks" not in page
        assert "\x1b[" not in page and "started in 3 s" in page
    assert "**the result**" in md
    check_report_files(tmp_path)
