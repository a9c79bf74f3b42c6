"""Reports that travel: two labelled perf runs compared, and every kind of report opened in
headless Chromium (installed by the setup when missing) with no request leaving the machine.

The demo, the two labelled perf runs (first: vendor scheduling, second: vllm) and MMMU on
the fixture are the session's shared runs (tests/conftest.py); this module adds a comparison
of the two perf runs, in the same outputs folder. Screenshots are kept in each
run folder under screenshots/. Every report is also read as a wiki and a terminal read
report.md, and measured in the browser: long text wraps, every image has alt text.
"""

import json
import re

import pytest

from kit.report.render import render_html

from .browser import browser_own_hosts, ensure_chromium, evaluate, load_page
from .conftest import TRICKY_PROMPT, run_into
from .report_checks import (
    LONG_TOKEN,
    RESULTS_WITH_LONG_LABEL,
    check_report_files,
    every_kind_of_output,
    write_notebook,
)

# Measured in the page: what sticks out sideways, the run header's and an output table's cell
# style, and every image's alt text.
LAYOUT_JS = """() => {
  const root = document.scrollingElement;
  const boxes = document.querySelectorAll(".kit-text, .kit-table, .jp-OutputArea-output");
  const overflowing = [...boxes]
    .filter(el => el.scrollWidth > el.clientWidth + 1
      || el.getBoundingClientRect().right > root.clientWidth + 1)
    .map(el => `${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
  const cellStyle = selector => {
    const cell = document.querySelector(selector);
    if (!cell) return null;
    const s = getComputedStyle(cell);
    return [s.fontFamily, s.fontSize, s.textAlign, s.verticalAlign, s.paddingLeft,
            s.borderTopWidth, s.whiteSpace, s.overflowWrap];
  };
  const text = document.querySelector(".kit-text");
  return {
    page: [root.scrollWidth, root.clientWidth],
    overflowing,
    text: text && [text.scrollWidth, text.clientWidth, text.getBoundingClientRect().height],
    header: cellStyle(".kit-header .kit-table td"),
    output: cellStyle(".jp-OutputArea-output .kit-table td"),
    alts: [...document.images].map(img => img.alt),
  };
}"""


@pytest.fixture(scope="module")
def made(shared_outputs, demo_run, perf_sweep_run, perf_vllm_run, mmmu_run):
    """Each kind's (run folder, the `kit run` process that made and rendered it)."""
    compare = run_into(
        shared_outputs,
        "compare",
        *("-p", "runs", f"{shared_outputs}/*perf*", "-p", "label_by", "label"),
        *("-p", "baseline", "first"),
    )
    return {
        "demo": demo_run,
        "perf": perf_sweep_run,
        "perf second": perf_vllm_run,
        "mmmu": mmmu_run,
        "compare": compare,
    }


@pytest.fixture(scope="module")
def runs(shared_outputs, made):
    return shared_outputs, {kind: folder for kind, (folder, _) in made.items()}


@pytest.mark.slow
def test_two_labelled_runs_compare(runs):
    outputs, folders = runs
    results = json.loads((folders["compare"] / "results.json").read_text())
    rows = results["compare"]["rows"]
    assert {r["label"] for r in rows} == {"first", "second"}
    assert all(r["flags"] == "baseline" for r in rows if r["label"] == "first")
    (second,) = [r for r in rows if r["label"] == "second"]  # 800 x 2 -> 8 under vllm
    (first,) = [r for r in rows if r["label"] == "first" and r["scenario"] == second["scenario"]]
    assert second["tps / baseline"] == pytest.approx(second["tps"] / first["tps"], rel=1e-2)
    # same model, dtype, num_crops, image shape; the scheduling mode differs and is named
    assert second["flags"].startswith("not comparable: scheduling: vllm vs vendor")
    md = (folders["compare"] / "report.md").read_text()
    assert "| label |" in md and "(report_files/" in md
    assert list((folders["compare"] / "report_files").glob("*.png"))


@pytest.mark.slow
def test_index_lists_every_run_newest_first(runs):
    outputs, folders = runs
    index = (outputs / "index.html").read_text()
    assert index.count("<tr><td>") == 5
    assert index.index(folders["compare"].name) < index.index(folders["demo"].name)
    for folder in folders.values():
        assert f'href="{folder.name}/report.html"' in index


@pytest.fixture(scope="module")
def chromium():
    path = ensure_chromium()
    return path, browser_own_hosts(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,min_tables,min_figures",
    [("demo", 5, 1), ("perf", 6, 2), ("mmmu", 6, 2), ("compare", 3, 4)],
)
def test_report_in_a_real_browser(runs, chromium, kind, min_tables, min_figures):
    _, folders = runs
    browser, own_hosts = chromium
    folder = folders[kind]
    screenshot = folder / "screenshots" / "report.png"
    screenshot.parent.mkdir(exist_ok=True)
    dom, outbound = load_page(browser, folder / "report.html", screenshot, own_hosts)
    assert outbound == [], f"the {kind} report tried to reach: {outbound}"
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    assert len(re.findall(r"<table", dom)) >= min_tables
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) >= min_figures
    assert 'class="kit-header"' in dom and "Reproduce" in dom  # identity on top, command below
    assert not re.search(r"<script[^>]+src=", dom)
    layout = evaluate(browser, folder / "report.html", LAYOUT_JS, window="1280,2400")
    assert layout["overflowing"] == [] and layout["page"][0] <= layout["page"][1], layout
    assert len(layout["alts"]) >= min_figures and all(alt.strip() for alt in layout["alts"])
    assert layout["header"] == layout["output"]  # the run header looks like the outputs


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["demo", "perf", "perf second", "mmmu", "compare"])
def test_every_report_reads_well_in_a_wiki_and_a_terminal(made, kind):
    folder, proc = made[kind]
    check_report_files(folder, proc.stdout + proc.stderr)
    md = (folder / "report.md").read_text()
    assert md.startswith("**Run**\n\n| name | value |") and "**Environment**" in md
    if kind == "demo":  # the prompt verbatim in its text block, escaped in the table
        assert re.search(r"```text\n[^`]*\n" + re.escape(TRICKY_PROMPT), md)
        assert '| prompt | Is &lt;b&gt;this&lt;/b&gt; a robot &amp; "what" is it? |' in md
        assert "| image | ['demo', '" in md
        assert "![input image 1, " in md and "![input image 2, 100x200]" in md
    if kind == "mmmu":  # the example question and the wrong-answer gallery, as text
        assert re.search(r"\[image: [^\]]*image_1\]", md) and "vendor-strict:" in md
    if kind in ("perf", "compare"):
        assert "![Chart: " in md


def test_long_text_wraps_and_the_header_matches_in_a_real_browser(chromium, tmp_path):
    """A 3,000-character token in a text block, a table cell and the run header wraps inside
    the page; the same page without the kit's wrapping rules scrolls sideways (the check
    can fail)."""
    browser, _ = chromium
    outputs = every_kind_of_output()
    outputs[0] = type(outputs[0])(
        {k: v.replace("['demo']", LONG_TOKEN) for k, v in outputs[0].data.items()}
    )
    page = render_html(
        write_notebook(tmp_path / "nb.ipynb", outputs),
        tmp_path / "report.html",
        RESULTS_WITH_LONG_LABEL,
    )
    layout = evaluate(browser, page, LAYOUT_JS, window="1000,1600")
    assert layout["overflowing"] == [] and layout["page"][0] <= layout["page"][1], layout
    width, client, height = layout["text"]
    assert width <= client and height > 10 * 16  # wrapped onto many lines
    assert layout["header"] is not None and layout["header"] == layout["output"]
    assert layout["alts"] == [
        "Chart: TTFT <ms> by input_len (x: input_len, y: TTFT (ms))",
        "input image 1, 1024x768",
        "image_1 of q1",
    ]
    unwrapped = tmp_path / "unwrapped.html"
    unwrapped.write_text(page.read_text().replace("overflow-wrap:anywhere", "overflow-wrap:normal"))
    layout = evaluate(browser, unwrapped, LAYOUT_JS, window="1000,1600")
    assert layout["overflowing"] and layout["page"][0] > layout["page"][1]


def test_the_outbound_detector_sees_remote_resources(chromium, tmp_path):
    browser, own_hosts = chromium
    page = tmp_path / "control.html"
    page.write_text(
        '<img src="http://example.com/x.png"><link rel="stylesheet" '
        'href="https://fonts.example.org/a.css">'
    )
    _, outbound = load_page(browser, page, tmp_path / "control.png", own_hosts)
    hosts = " ".join(outbound)
    assert "example.com" in hosts and "fonts.example.org" in hosts
