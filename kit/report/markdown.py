"""Markdown pieces for report.md: pipe tables, verbatim text, alt text, and HTML read as text.

report.md is read in wikis, which render raw HTML, and in terminals, so a cell must read as
itself in both: ``<``, ``>`` and ``&`` become entities, ``|`` is escaped and newlines become
``<br>``. Verbatim text is fenced with more backticks than it holds; an HTML fragment becomes
its readable text, images as their alt text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any

from kit.report.html import format_value


def markdown_cell(value: Any) -> str:
    """A pipe-table cell that reads as itself in a wiki and a terminal.

    ``<``, ``>`` and ``&`` become entities (wikis render raw HTML), ``|`` is escaped (and a
    backslash before it doubled, so it cannot escape the escape), newlines become ``<br>``;
    quotes stay quotes.
    """
    text = html.escape(format_value(value), quote=False)
    text = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text)
    return re.sub(r"\r\n|\r|\n", "<br>", text)


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
    """Text shown verbatim: a fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}\n"


def markdown_alt(text: Any) -> str:
    """Alt text inside ``![...](...)``: one line, ``<`` and ``&`` as entities (CommonMark
    decodes them back), brackets and backslashes escaped."""
    one_line = html.escape(" ".join(str(text or "").split()), quote=False)
    return re.sub(r"([\\\[\]])", r"\\\1", one_line)


class _TextOfHTML(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "li", "pre", "table", "caption", "h1", "h2", "h3", "h4"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[tuple[str, bool, bool]] = []  # (tag, keeps whitespace, hidden)

    def _keeps_whitespace(self) -> bool:
        return any(keep for _, keep, _ in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.parts.append(f"[image: {attributes.get('alt') or 'no description'}]")
        elif tag in ("td", "th"):
            self.parts.append("  ")
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag not in self.VOID:
            keeps = tag == "pre" or "kit-text" in (attributes.get("class") or "").split()
            self.open.append((tag, keeps, tag in ("style", "script")))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):  # close it and anything left open in it
            if self.open[i][0] == tag:
                del self.open[i:]
                break
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if any(hidden for _, _, hidden in self.open):
            return
        self.parts.append(data if self._keeps_whitespace() else re.sub(r"\s+", " ", data))


def html_as_text(fragment: str) -> str:
    """The readable text of an HTML fragment, for report.md: no styles, images as their alt
    text, one line per block, whitespace kept in ``<pre>`` and kit text blocks."""
    parser = _TextOfHTML()
    parser.feed(fragment)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).split("\n")]
    text = "\n".join(line if line.strip() else "" for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
