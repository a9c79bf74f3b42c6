"""The reproduce report's verdict table: every verdict a coloured badge with a legend, the
short columns (section, verdict, run) never broken inside a word, child runs linked by what
they are ("demo run"), and report.md's copy in plain words with a symbol. The browser check
renders the table through the kit's report template (its real CSS) in headless Chromium at
1280 px; no engine runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kit.records.reproduce import Verdict
from kit.report.display import html_output
from kit.report.render import render_html, render_markdown
from kit.reproduce import verdicts as words
from kit.reproduce.report import build_report
from kit.reproduce.verdict_table import (
    LEGEND,
    link_html,
    link_markdown,
    run_name,
    verdict_badge,
    verdict_kind,
    verdict_markdown,
    verdict_table,
)

from .browser import browser_own_hosts, ensure_chromium, evaluate, load_page
from .report_checks import write_notebook
from .test_reproduce import REFS, FakeExecute, reproduction

KINDS = {
    words.MATCHES: "good",
    words.CONSISTENT: "good",
    words.reproduced(0.1): "good",
    words.DIFFERS: "bad",
    words.NOT_CONSISTENT: "bad",
    words.NOT_REPRODUCED: "bad",
    words.COMPARED: "neutral",
    words.NO_REFERENCE: "neutral",
    words.NOT_APPLICABLE: "neutral",
    words.NOT_COMPARABLE: "neutral",
    words.NOT_MEASURED: "missing",
    words.NOT_VERIFIED: "missing",
    words.INCOMPLETE: "missing",  # the numerics check against a reference run
}
SYMBOLS = {"good": "✅", "bad": "❌", "neutral": "➖", "missing": "❔"}
LONG_WHY = (
    "the tiny random-weight model (smoke): its accuracy is noise; the synthetic fixture, "
    "not MMMU; a subset: 2 of the 900 validation questions"
)


def every_verdict() -> list[Verdict]:
    """One row per verdict word, with the smoke report's kind of texts."""
    sections = ["model", "demo", "mmmu", "perf", "environment", "mmmu"]
    return [
        Verdict(
            section=sections[i % len(sections)],
            claim=f"MMMU accuracy (model card) {i}",
            document="modelscope LLM-Research/Phi-3.5-vision-instruct@1ce2adc1",
            measured="TTFT (ms) 43.15 (n=1, no interval); TPS (tokens/s) 176.26 [160.39, 192.13]",
            verdict=word,
            why=LONG_WHY,
            link="../20261205-105330-demo-3a18a6" if i % 2 else None,
        )
        for i, word in enumerate(KINDS)
    ]


@pytest.mark.parametrize("word,kind", list(KINDS.items()))
def test_each_verdict_is_a_badge_coloured_by_its_meaning(word, kind):
    assert verdict_kind(word) == kind
    assert verdict_badge(word) == f'<span class="kit-verdict kit-verdict-{kind}">{word}</span>'
    assert verdict_markdown(word) == f"{SYMBOLS[kind]} {word}"


def test_badges_and_cells_are_escaped():
    html, md = verdict_table(
        [{"section": "<s>", "verdict": "<b>odd|word</b>", "why": "a|b & c", "run": "../a b"}],
        names={"../a b": "demo <run>"},
    )
    assert '<span class="kit-verdict kit-verdict-neutral">&lt;b&gt;odd|word&lt;/b&gt;</span>' in (
        html
    )
    assert '<td class="kit-short">&lt;s&gt;</td>' in html and "<td>a|b &amp; c</td>" in html
    assert '<a href="../a%20b/report.html">demo &lt;run&gt;</a>' in html
    assert "<b>" not in html and "<s>" not in html
    row = md.splitlines()[-1]
    assert row == (
        "| &lt;s&gt; | ➖ &lt;b&gt;odd\\|word&lt;/b&gt; | a\\|b &amp; c "
        "| [demo &lt;run&gt;](../a%20b/report.md) |"
    )


def test_the_table_has_a_legend_and_short_columns_and_valid_markdown():
    rows = [v.row() for v in every_verdict()]
    html, md = verdict_table(rows, "Claims", {"../20261205-105330-demo-3a18a6": "demo run"}, True)
    assert html.index('class="kit-legend"') < html.index("<table")
    for kind, meaning, _ in LEGEND:
        assert f'<span class="kit-verdict kit-verdict-{kind}">{meaning}</span>' in html
    assert html.count('<th class="kit-short">') == 3  # section, verdict, run
    assert html.count('<td class="kit-short">') == 3 * len(rows)
    assert html.count('<a href="../20261205-105330-demo-3a18a6/report.html">demo run</a>') == 6
    assert ">../20261205" not in html  # the link reads as what it opens, not a folder
    assert "white-space:nowrap;overflow-wrap:normal" in html  # the real CSS, inline
    lines = md.splitlines()
    assert lines[0].startswith("Verdicts: ✅ agrees with the document") and "❔" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| section | claim | document | measured | verdict | why | run |"
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 8 for line in table)
    assert "| ✅ matches |" in md and "| ❔ not measured |" in md
    assert "[demo run](../20261205-105330-demo-3a18a6/report.md)" in md


def test_child_runs_are_named_for_what_they_open(tmp_path):
    assert run_name("demo") == "demo run" and run_name("mmmu") == "MMMU run"
    assert run_name("perf:smoke-perf") == "perf run (smoke-perf)"
    assert link_html("../f", "demo run") == (
        '<p>Report of the <a href="../f/report.html">demo run</a> (run folder ../f).</p>'
    )
    assert link_markdown("../f", "demo run") == (
        "Report of the [demo run](../f/report.md) (run folder ../f).\n"
    )
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    r = reproduction(parent, FakeExecute({}))
    r.run_children()
    report = build_report(r, REFS)
    html, md = report.verdict_table(caption="Claims", legend=True)
    assert ">demo run</a>" in html and ">MMMU run</a>" in html
    assert "[demo run](../" in md and "[MMMU run](../" in md
    html, _ = report.verdict_table("demo")
    assert html.count("<tr>") == 1 + len(report.section("demo"))


# Every word of the verdict table on one line: a Range over each word (split at spaces)
# gives one line box per line it spans; the short columns' texts each on a single line;
# the badges' colours as computed.
WORDS_JS = """() => {
  const table = document.querySelector(".kit-verdicts");
  const heads = [...table.querySelectorAll("thead th")].map(th => th.textContent);
  const lines = (node, start, end) => {
    const range = document.createRange();
    range.setStart(node, start);
    range.setEnd(node, end);
    return new Set([...range.getClientRects()].filter(r => r.width > 0)
      .map(r => Math.round(r.top))).size;
  };
  const broken = [];
  const walker = document.createTreeWalker(table, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (const m of node.textContent.matchAll(/[A-Za-z]{2,}/g)) {
      if (lines(node, m.index, m.index + m[0].length) > 1) broken.push(m[0]);
    }
  }
  const multiLine = [];
  for (const cell of table.querySelectorAll(".kit-short")) {
    const texts = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    while (texts.nextNode()) {
      const node = texts.currentNode;
      if (lines(node, 0, node.textContent.length) > 1) multiLine.push(node.textContent);
    }
  }
  const colours = {};
  for (const b of table.querySelectorAll(".kit-verdict")) {
    colours[b.textContent] = getComputedStyle(b).backgroundColor;
  }
  const root = document.scrollingElement;
  return {heads, broken, multiLine, colours,
          legend: document.querySelectorAll(".kit-legend .kit-verdict").length,
          table: table.getBoundingClientRect().right, page: [root.scrollWidth, root.clientWidth]};
}"""


@pytest.fixture(scope="module")
def chromium():
    path = ensure_chromium()
    return path, browser_own_hosts(path)


@pytest.mark.slow
def test_the_verdict_table_reads_whole_words_at_1280px(chromium, tmp_path):
    browser, own_hosts = chromium
    rows = [v.row() for v in every_verdict()]
    names = {"../20261205-105330-demo-3a18a6": "demo run"}
    html, md = verdict_table(rows, "The document's claims and this reproduction", names, True)
    notebook = write_notebook(tmp_path / "reproduce.ipynb", [html_output(html, md)])
    page = render_html(notebook, tmp_path / "report.html")
    screenshot = Path(tmp_path) / "verdicts.png"
    _, outbound = load_page(browser, page, screenshot, own_hosts)
    assert outbound == [] and screenshot.stat().st_size > 10_000
    layout = evaluate(browser, page, WORDS_JS, window="1280,2400")
    assert layout["heads"] == ["section", "claim", "document", "measured", "verdict", "why", "run"]
    assert layout["broken"] == [] and layout["multiLine"] == [], layout
    assert layout["legend"] == 4 and layout["page"][0] <= layout["page"][1], layout
    colours = layout["colours"]
    assert len(set(colours.values())) == 4  # one colour per meaning
    for word, kind in KINDS.items():
        same = [w for w, k in KINDS.items() if k == kind]
        assert all(colours[w] == colours[word] for w in same)
    # the same table without the kit's short-column rule breaks words (the check can fail)
    unfixed = tmp_path / "unfixed.html"
    unfixed.write_text(page.read_text().replace("white-space:nowrap;overflow-wrap:normal", ""))
    layout = evaluate(browser, unfixed, WORDS_JS, window="1280,2400")
    assert layout["multiLine"], layout
    # report.md: the symbol and the word in a valid pipe table
    report_md = render_markdown(notebook, tmp_path / "report.md").read_text()
    assert "| ✅ matches |" in report_md and "| ➖ not applicable |" in report_md
