"""What the Confluence and MediaWiki formats share: report.md rendered to HTML with mistune
(the Markdown library nbconvert uses), and that HTML walked tag by tag by a subclass that
writes the wiki's own markup.

The walk drops script, style, head and title with their text; collects a ``<pre>``'s text
whole (with its code's language) and a link's text whole, and hands them on; every other
tag and every text goes to the subclass, which keeps what it knows and escapes every text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html.parser import HTMLParser

from kit.core.params import ParameterError

DROPPED_WITH_TEXT = {"script", "style", "head", "title"}
# characters XML forbids (and MediaWiki replaces): U+FFFD instead, the same on every wiki
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def markdown_to_html(text: str, where: str) -> str:
    """report.md as HTML; raw HTML in it is kept, for the walk to filter."""
    try:
        import mistune
    except ImportError:
        raise ParameterError(
            f"sharing to {where} needs the Python package mistune (it comes with nbconvert: "
            "`pip install nbconvert`, or `pip install mistune`); nothing was sent."
        ) from None
    render = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    return str(render(text))


class HtmlWalk(HTMLParser):
    """HTML in, a wiki's markup out (``out``). ``figures`` maps a link or image target as
    the page's text writes it to the name the figure has on the wiki; ``pages`` maps a link
    target to the title of the wiki page it stands for (a reproduce run's child)."""

    def __init__(self, figures: Mapping[str, str], pages: Mapping[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.figures = figures
        self.pages = pages
        self.out: list[str] = []
        self.skipping: str | None = None
        self.pre: list[str] | None = None
        self.language = ""
        self.link: tuple[str, list[str]] | None = None

    # -- what a subclass writes ------------------------------------------------------
    def start(self, tag: str, values: dict[str, str]) -> None:
        """An opening tag (not pre, a, img, nor one dropped with its text)."""

    def end(self, tag: str) -> None:
        """A closing tag (not pre nor a)."""

    def text(self, data: str) -> None:
        """Text outside pre and links, as it stands (entities already decoded)."""
        raise NotImplementedError

    def inline(self, markup: str) -> None:
        """Markup made here (an image, a link) where the text flows."""
        self.out.append(markup)

    def preformatted(self, text: str, language: str) -> None:
        """A ``<pre>``'s whole text; ``language`` from its code's ``language-`` class."""
        raise NotImplementedError

    def image(self, src: str, alt: str) -> str:
        raise NotImplementedError

    def link_markup(self, href: str, label: str) -> str:
        raise NotImplementedError

    def finish(self) -> None:
        """Close whatever the HTML left open."""

    # -- HTMLParser -------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if self.skipping:
            return
        if tag in DROPPED_WITH_TEXT:
            self.skipping = tag
        elif self.pre is not None:
            if tag == "code":
                found = re.search(r"language-(\S+)", values.get("class", ""))
                self.language = found.group(1).lower() if found else self.language
            elif tag == "br":
                self.pre.append("\n")
        elif tag == "pre":
            self.pre, self.language = [], ""
        elif self.link is not None:
            if tag == "img":
                self.link[1].append(values.get("alt", ""))
            elif tag == "br":
                self.link[1].append(" ")
        elif tag == "img":
            self.inline(self.image(values.get("src", ""), values.get("alt", "")))
        elif tag == "a":
            self.link = (values.get("href", ""), [])
        else:
            self.start(tag, values)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping:
                self.skipping = None
            return
        if self.pre is not None:
            if tag == "pre":
                self.flush_pre()
            return
        if self.link is not None:
            if tag == "a":
                self.flush_link()
            return
        self.end(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre is not None:
            self.pre.append(data)
        elif self.link is not None:
            self.link[1].append(data)
        else:
            self.text(data)

    def flush_pre(self) -> None:
        text = "".join(self.pre or []).rstrip("\n")
        self.pre = None
        self.preformatted(text, self.language)

    def flush_link(self) -> None:
        href, text = self.link or ("", [])
        self.link = None
        self.inline(self.link_markup(href, " ".join("".join(text).split())))

    def result(self) -> str:
        self.close()
        if self.pre is not None:
            self.flush_pre()
        if self.link is not None:
            self.flush_link()
        self.finish()
        return "".join(self.out)
