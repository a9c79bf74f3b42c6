"""The reproduce report's verdict tables: each verdict a coloured badge by what it means for
the reader (a symbol and the word in report.md, where a wiki may drop colours), a legend,
the short columns kept on one line, and each child run linked by what it opens ("demo run").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from kit.report.html import TABLE_STYLE, badge, escape, format_value
from kit.report.markdown import markdown_cell
from kit.reproduce.verdicts import (
    COMPARED,
    CONSISTENT,
    DIFFERS,
    INCOMPLETE,
    MATCHES,
    NO_REFERENCE,
    NOT_APPLICABLE,
    NOT_COMPARABLE,
    NOT_CONSISTENT,
    NOT_MEASURED,
    NOT_REPRODUCED,
    NOT_VERIFIED,
)

# What each verdict means for the reader, by its badge's colour (docs/reproduce.md)
GOOD, BAD, NEUTRAL, MISSING = "good", "bad", "neutral", "missing"
VERDICT_KINDS = {
    MATCHES: GOOD,
    CONSISTENT: GOOD,
    DIFFERS: BAD,
    NOT_CONSISTENT: BAD,
    NOT_REPRODUCED: BAD,
    COMPARED: NEUTRAL,
    NO_REFERENCE: NEUTRAL,
    NOT_APPLICABLE: NEUTRAL,
    NOT_COMPARABLE: NEUTRAL,
    NOT_MEASURED: MISSING,
    NOT_VERIFIED: MISSING,
    INCOMPLETE: MISSING,
}
# The same meaning in report.md, where a wiki may drop the colours
VERDICT_SYMBOLS = {GOOD: "✅", BAD: "❌", NEUTRAL: "➖", MISSING: "❔"}
LEGEND = (
    (GOOD, "agrees with the document", "matches, consistent, reproduced within ±N%"),
    (BAD, "disagrees with the document", "differs, not consistent, not reproduced"),
    (
        NEUTRAL,
        "shown beside the document without a verdict",
        "compared, not comparable, not applicable, no reference",
    ),
    (MISSING, "nothing to judge: see why", "not measured, not verified, incomplete"),
)
# Columns kept on one line: short words that must not break ("sect ion", "verd ict")
SHORT_COLUMNS = ("section", "verdict", "run")


def verdict_kind(verdict: str) -> str:
    """good, bad, neutral or missing: the colour of a verdict's badge."""
    if verdict.startswith("reproduced within"):
        return GOOD
    return VERDICT_KINDS.get(verdict, NEUTRAL)


def verdict_badge(verdict: str) -> str:
    return badge(verdict, verdict_kind(verdict))


def verdict_markdown(verdict: str) -> str:
    """A verdict for report.md: its symbol, then the word (escaped for a table cell)."""
    return f"{VERDICT_SYMBOLS[verdict_kind(verdict)]} {markdown_cell(verdict)}"


def legend_html() -> str:
    items = "; ".join(f"{badge(meaning, kind)} {escape(words)}" for kind, meaning, words in LEGEND)
    return f'<p class="kit-legend">Verdict colours: {items}.</p>'


def legend_markdown() -> str:
    items = "; ".join(
        f"{VERDICT_SYMBOLS[kind]} {meaning} ({words})" for kind, meaning, words in LEGEND
    )
    return f"Verdicts: {items}.\n"


def run_name(key: str) -> str:
    """A child's link text, named for what it opens: "demo run", "MMMU run",
    "perf run (smoke-perf)"."""
    section, _, detail = key.partition(":")
    name = {"mmmu": "MMMU run", "model": "model check"}.get(section, f"{section} run")
    return f"{name} ({detail})" if detail else name


def _href(folder: str, page: str) -> str:
    return quote(f"{folder}/{page}", safe="/.-_~")


def verdict_table(
    rows: Sequence[Mapping[str, Any]],
    caption: str | None = None,
    names: Mapping[str, str] | None = None,
    legend: bool = False,
) -> tuple[str, str]:
    """Rows with a "verdict" column (Verdict.row(), the MMMU rows) as (HTML, Markdown): the
    verdict a coloured badge (a symbol and the word in Markdown), a "run" folder a link named
    by ``names`` (folder -> "demo run"), the short columns kept on one line, every other
    cell escaped and wrapped as in any kit table."""
    names = names or {}
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell_html(column: str, value: Any) -> str:
        if column == "verdict" and value:
            return verdict_badge(str(value))
        if column == "run" and value:
            name = names.get(str(value), "run")
            return f'<a href="{escape(_href(str(value), "report.html"))}">{escape(name)}</a>'
        return escape(format_value(value))

    def cell_markdown(column: str, value: Any) -> str:
        if column == "verdict" and value:
            return verdict_markdown(str(value))
        if column == "run" and value:
            return markdown_link(names.get(str(value), "run"), str(value))
        return markdown_cell(value)

    def attrs(column: str) -> str:
        return ' class="kit-short"' if column in SHORT_COLUMNS else ""

    head = "".join(f"<th{attrs(c)}>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td{attrs(c)}>{cell_html(c, row.get(c))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    html = (
        f"{TABLE_STYLE}{legend_html() if legend else ''}"
        f'<table class="kit-table kit-verdicts">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    lines = [legend_markdown(), ""] if legend else []
    if caption:
        lines += [f"**{markdown_cell(caption)}**", ""]
    lines.append("| " + " | ".join(markdown_cell(c) for c in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell_markdown(c, row.get(c)) for c in columns) + " |")
    return html, "\n".join(lines) + "\n"


def link_html(report_link: str | None, what: str) -> str:
    """A relative link to a child's report (run folders lie side by side), named for what it
    opens (``what``: "demo run", see run_name), its folder beside it."""

    if not report_link:
        return f"<p>{escape(what)}: no run folder.</p>"
    href = escape(_href(report_link, "report.html"))
    return (
        f'<p>Report of the <a href="{href}">{escape(what)}</a> '
        f"(run folder {escape(report_link)}).</p>"
    )


def markdown_link(name: str, folder: str) -> str:
    """``[name](folder/report.md)``, usable inside a table cell."""
    text = re.sub(r"([\\\[\]])", r"\\\1", markdown_cell(name))
    return f"[{text}]({_href(folder, 'report.md')})"


def link_markdown(report_link: str | None, what: str) -> str:
    if not report_link:
        return f"{markdown_cell(what)}: no run folder.\n"
    return (
        f"Report of the {markdown_link(what, report_link)} "
        f"(run folder {markdown_cell(report_link)}).\n"
    )
