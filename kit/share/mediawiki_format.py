"""A run's page in MediaWiki *wikitext*: report.md rendered to HTML with mistune, then
rebuilt tag by tag as wikitext (kit.share.markup's walk, which Confluence's format shares).

Headings, paragraphs, lists, quotes, emphasis and inline code become wikitext; tables
``{| class="wikitable" ... |}``; fenced text and code ``<pre>`` (every wiki has it, unlike
the SyntaxHighlight extension); figures the files uploaded for the page
(``[[File:<page>-<figure>|alt=...]]``); links to a reproduce run's children links to their
pages (``[[Parent/child|text]]``), web links ``[url text]``. Other tags are dropped, their
text kept; script and style with their text.

Every text is escaped here: each character wikitext (or HTML) gives a meaning mid-line
becomes a character reference (``[`` ``]`` ``{`` ``}`` ``|`` ``'`` ``~`` ``:`` ``=`` ``!``
``<`` ``>`` ``&``, and ``__``), a line never starts with a list, rule or indent character,
and characters XML forbids become U+FFFD; inside ``<pre>`` (which wikitext leaves alone)
``<``, ``>`` and ``&``. So whatever a model or dataset wrote reads as text: no template,
link, table, signature, magic word or tag comes of it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit

from kit.share.index import COLUMNS, IndexFormat
from kit.share.markup import HtmlWalk, clean, markdown_to_html
from kit.share.pages import Page

INDEX_TITLE = "VLM kit runs"
INLINE = {"em": "''", "i": "''", "strong": "'''", "b": "'''"}
HTML_INLINE = {
    "code": "code", "del": "s", "s": "s", "strike": "s", "u": "u", "sub": "sub", "sup": "sup",
}  # fmt: skip
HEADINGS = {f"h{n}": n for n in range(1, 7)}
ONE_LINE = {"li", "td", "th", "caption", *HEADINGS}  # what they hold stays on their line
_REFERENCES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "__": "_&#95;"} | {
    c: f"&#{ord(c)};" for c in "[]{}|'~:=!"
}
_SPECIAL = re.compile(r"__|[&<>\[\]{}|'~:=!]")
_LINE_START = {c: f"&#{ord(c)};" for c in "*#;-"}  # a list, a definition, a rule
_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_ROW_KEY = re.compile(r"^\| \[\[([^\]|]+)")


def escape(text: str) -> str:
    """Text as wikitext that shows exactly it, mid-line (see the module's docstring)."""
    return _SPECIAL.sub(lambda found: _REFERENCES[found.group()], clean(text))


def escape_pre(text: str) -> str:
    text = clean(text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def external_url(href: str) -> str:
    """A web address as an external link's target: whatever would end the link or mean
    wikitext (space, brackets, quotes, pipes, tildes, ``__``) percent-encoded."""
    encoded = quote(href, safe="/:?#&=%+,;@$*()-._")
    return encoded.replace("~", "%7E").replace("__", "_%5F")


def file_name(page: Page, figure_name: str) -> str:
    """A figure's file on the wiki: the page's name, then the figure's (one File namespace
    holds every run's ``output_5_1.png``)."""
    return f"{page.name}-{_FILE_CHARS.sub('-', figure_name)}"


class _Wikitext(HtmlWalk):
    """HTML in, wikitext out; figures and child pages mapped by their link target."""

    def __init__(self, figures: Mapping[str, str], pages: Mapping[str, str]) -> None:
        super().__init__(figures, pages)
        self.open: list[str] = []
        self.space = False  # a space is due before the next inline piece
        self.newlines = 0  # how many newlines the output ends with

    # -- writing ----------------------------------------------------------------------
    def write(self, markup: str) -> None:
        if not markup:
            return
        self.out.append(markup)
        stripped = markup.rstrip("\n")
        self.newlines = len(markup) - len(stripped) + (self.newlines if not stripped else 0)

    def at_line_start(self) -> bool:
        return not self.out or self.newlines > 0

    def newline(self, blank: bool = False) -> None:
        """End the line (``blank``: and the paragraph), unless nothing is written yet;
        emphasis or code left open (by raw HTML) ends with it."""
        self.close_inline()
        self.space = False
        while self.out and self.newlines < (2 if blank else 1):
            self.write("\n")

    def close_inline(self) -> None:
        while self.open and (self.open[-1] in INLINE or self.open[-1] in HTML_INLINE):
            self.close_to(self.open[-1])

    def one_line(self) -> bool:
        return any(tag in ONE_LINE for tag in self.open)

    def block(self) -> None:
        """A paragraph's bounds: a blank line, or a space where everything stays on a line."""
        if self.one_line():
            self.space = True
            self.close_inline()
        else:
            self.newline(blank=True)

    def inline(self, markup: str, text: bool = False) -> None:
        if not markup:
            return
        if self.at_line_start():
            if text and markup[0] in _LINE_START:
                markup = _LINE_START[markup[0]] + markup[1:]
        elif self.space and not self.out[-1].endswith(" "):
            self.write(" ")
        self.space = False
        self.write(markup)

    def list_prefix(self) -> str:
        return "".join("*" if tag == "ul" else "#" for tag in self.open if tag in ("ul", "ol"))

    # -- pieces -----------------------------------------------------------------------
    def image(self, src: str, alt: str) -> str:
        target = unquote(src)
        if target in self.figures:
            return f"[[File:{self.figures[target]}{'|alt=' + escape(alt) if alt else ''}]]"
        if urlsplit(src).scheme in ("http", "https"):
            return f"[{external_url(src)} {escape(alt or 'image')}]"
        return escape(f"[image not shared: {alt or target[:80]}]")

    def link_markup(self, href: str, label: str) -> str:
        target = unquote(href)
        if target in self.pages:
            title = self.pages[target]
            return f"[[{title}|{escape(label or title)}]]"
        if target in self.figures:
            name = self.figures[target]
            return f"[[Media:{name}|{escape(label or name)}]]"
        if urlsplit(href).scheme in ("http", "https", "mailto"):
            return f"[{external_url(href)} {escape(label or href)}]"
        return escape(label)  # a relative link with nothing behind it on the wiki

    # -- HtmlWalk ---------------------------------------------------------------------
    def start(self, tag: str, values: dict[str, str]) -> None:
        if tag in HEADINGS:
            self.block()
            self.write("=" * HEADINGS[tag] + " ")
        elif tag == "p":
            self.block()
            return
        elif tag in ("ul", "ol"):
            if "li" in self.open:
                self.newline()
            else:
                self.block()
        elif tag == "li":
            self.newline()
            self.write((self.list_prefix() or "*") + " ")
        elif tag == "table":
            self.block()
            self.write('{| class="wikitable"\n')
        elif tag == "tr":
            self.newline()
            self.write("|-\n")
        elif tag in ("td", "th"):
            self.newline()
            self.write(("! " if tag == "th" else "| ") + cell_attributes(values))
        elif tag == "caption":
            self.newline()
            self.write("|+ ")
        elif tag == "blockquote":
            self.block()
            self.write("<blockquote>\n")
        elif tag == "br":
            self.inline("<br />")
            return
        elif tag == "hr":
            self.block()
            self.write("----")
            self.block()
            return
        elif tag in INLINE:
            self.inline(INLINE[tag])
        elif tag in HTML_INLINE:
            self.inline(f"<{HTML_INLINE[tag]}>")
        else:
            return
        self.open.append(tag)

    def end(self, tag: str) -> None:
        if tag == "p":
            self.block()
        elif tag in self.open:
            self.close_to(tag)

    def close_to(self, tag: str) -> None:
        while self.open:
            top = self.open.pop()
            if top in INLINE:
                self.write(INLINE[top])
            elif top in HTML_INLINE:
                self.write(f"</{HTML_INLINE[top]}>")
            elif top in HEADINGS:
                self.write(" " + "=" * HEADINGS[top])
                self.block()
            elif top in ("ul", "ol") and "li" not in self.open:
                self.block()
            elif top == "table":
                self.newline()
                self.write("|}")
                self.block()
            elif top == "blockquote":
                self.newline()
                self.write("</blockquote>")
                self.block()
            if top == tag:
                return

    def text(self, data: str) -> None:
        words = " ".join(data.split())
        if data[:1].isspace():
            self.space = True
        self.inline(escape(words), text=True)
        if words and data[-1:].isspace():
            self.space = True

    def preformatted(self, text: str, language: str) -> None:
        self.block()
        # a browser drops a newline straight after <pre>: one more keeps the text's own
        self.inline(f"<pre>{chr(10) if text.startswith(chr(10)) else ''}{escape_pre(text)}</pre>")
        self.block()

    def finish(self) -> None:
        self.close_to("")


def cell_attributes(values: Mapping[str, str]) -> str:
    """A cell's alignment and spans (as mistune's tables and raw HTML give them)."""
    kept = []
    found = re.search(r"text-align:\s*(left|right|center)", values.get("style", ""))
    if found:
        kept.append(f'style="text-align:{found.group(1)}"')
    kept += [
        f'{name}="{values[name]}"'
        for name in ("colspan", "rowspan")
        if values.get(name, "").isdigit()
    ]
    return " ".join(kept) + " | " if kept else ""


def to_wikitext(
    markdown: str, figures: Mapping[str, str], pages: Mapping[str, str] | None = None
) -> str:
    """report.md as wikitext. ``figures`` maps an image's (or link's) target as the text
    writes it to the name of the file uploaded for it; ``pages`` a link's target to the
    title of the wiki page it stands for. No trailing whitespace and in NFC, as MediaWiki
    stores a page, so that a page read back compares equal to what was sent."""
    parser = _Wikitext(figures, pages or {})
    parser.feed(markdown_to_html(markdown, "MediaWiki"))
    return unicodedata.normalize("NFC", parser.result().strip())


def page_titles(page: Page, parent: str | None = None) -> dict[int, str]:
    """Each page's title (by ``id``), its children's ``Parent/child``."""
    title = f"{parent}/{page.name}" if parent else page.name
    titles = {id(page): title}
    for child in page.children:
        titles.update(page_titles(child, title))
    return titles


def page_wikitext(page: Page, titles: Mapping[int, str]) -> str:
    """A planned page (kit.share.pages) as wikitext: its figures as its uploaded files, its
    children's links as links to their pages."""
    figures = {target: file_name(page, f.name) for target, f in page.figure_targets().items()}
    pages = {target: titles[id(child)] for target, child in page.child_targets().items()}
    return to_wikitext(page.text, figures, pages)


def index_row(page: Page) -> tuple[str, str]:
    cells = [page.run.notebook, page.run.status, page.date, page.folder.name]
    return page.name, f"| [[{page.name}]] || " + " || ".join(escape(c) for c in cells)


def index_key(line: str) -> str | None:
    found = _ROW_KEY.match(line)
    return found.group(1) if found else None


WIKITEXT_INDEX = IndexFormat(
    intro=(
        "Runs shared with <code>python -m kit share</code>, newest first. Each page is the "
        "run's report; a reproduce run's children are its sub pages.\n\n"
    ),
    head='{| class="wikitable sortable"\n' + "".join(f"! {c}\n" for c in COLUMNS),
    tail="|}\n",
    row_start="|-\n",
    row=index_row,
    key=index_key,
)
