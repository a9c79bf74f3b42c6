"""A run's page in Confluence *storage format* (XHTML): report.md rendered to HTML with
mistune (the Markdown library nbconvert uses), then rebuilt tag by tag as storage format
(kit.share.markup's walk, which MediaWiki's wikitext shares).

Only known tags are kept (headings, paragraphs, lists, tables, emphasis, code, quotes);
others are dropped with their text kept, script and style with their text. Every piece of
text and every attribute is escaped again here, and characters XML forbids become U+FFFD,
so whatever a model or a dataset wrote reads as text and the body always parses as XML.
``<pre>`` becomes the code macro, images the page's attachments (``ac:image``), links to a
reproduce run's children Confluence page links (``ac:link``) by title.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from kit.share.markup import HtmlWalk, clean
from kit.share.markup import markdown_to_html as html_of
from kit.share.pages import Page

AC = "http://atlassian.com/content"
RI = "http://atlassian.com/resource/identifier"
KEPT = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "b", "i", "u",
    "code", "del", "s", "sub", "sup", "blockquote", "tr", "th", "td", "caption",
}  # fmt: skip
VOID = {"br", "hr"}
TABLE_PARTS = {"thead", "tbody", "tfoot"}  # one <tbody> per table, as Confluence keeps them
# the code macro's names for the fences report.md and people write
LANGUAGES = {
    "text": "text", "python": "py", "py": "py", "bash": "bash", "sh": "bash", "shell": "bash",
    "console": "bash", "json": "js", "javascript": "js", "js": "js", "yaml": "yml", "yml": "yml",
    "xml": "xml", "html": "xml", "diff": "diff", "sql": "sql", "java": "java", "cpp": "cpp",
    "c++": "cpp", "css": "css", "powershell": "powershell",
}  # fmt: skip
_VOLATILE = {f"{{{AC}}}macro-id", f"{{{AC}}}schema-version", f"{{{AC}}}local-id", "local-id"}


def escape(text: str) -> str:
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attribute(text: str) -> str:
    return escape(text).replace('"', "&quot;")


def cdata(text: str) -> str:
    return "<![CDATA[" + clean(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


class _Storage(HtmlWalk):
    """HTML in, storage format out; the links it knows are mapped by their target."""

    def __init__(self, attachments: Mapping[str, str], pages: Mapping[str, str]) -> None:
        super().__init__(attachments, pages)
        self.open: list[str] = []

    # -- pieces -----------------------------------------------------------------------
    def image(self, src: str, alt: str) -> str:
        target = unquote(src)
        alt_attr = f' ac:alt="{attribute(alt)}"' if alt else ""
        if target in self.figures:
            name = attribute(self.figures[target])
            return f'<ac:image{alt_attr}><ri:attachment ri:filename="{name}"/></ac:image>'
        if urlsplit(src).scheme in ("http", "https"):
            return f'<ac:image{alt_attr}><ri:url ri:value="{attribute(src)}"/></ac:image>'
        return escape(f"[image not shared: {alt or target[:80]}]")

    def link_markup(self, href: str, label: str) -> str:
        target = unquote(href)
        if target in self.pages:
            title = self.pages[target]
            return (
                f'<ac:link><ri:page ri:content-title="{attribute(title)}"/>'
                f"<ac:plain-text-link-body>{cdata(label or title)}</ac:plain-text-link-body>"
                "</ac:link>"
            )
        if target in self.figures:
            name = self.figures[target]
            return (
                f'<ac:link><ri:attachment ri:filename="{attribute(name)}"/>'
                f"<ac:plain-text-link-body>{cdata(label or name)}</ac:plain-text-link-body>"
                "</ac:link>"
            )
        if urlsplit(href).scheme in ("http", "https", "mailto"):
            return f'<a href="{attribute(href)}">{escape(label or href)}</a>'
        return escape(label)  # a relative link with nothing behind it on Confluence

    def close_to(self, tag: str) -> None:
        while self.open:
            top = self.open.pop()
            self.out.append("</tbody></table>" if top == "table" else f"</{top}>")
            if top == tag:
                return

    # -- HtmlWalk ---------------------------------------------------------------------
    def start(self, tag: str, values: dict[str, str]) -> None:
        if tag in VOID:
            self.out.append(f"<{tag}/>")
        elif tag == "table":
            self.out.append("<table><tbody>")
            self.open.append(tag)
        elif tag in KEPT:
            spans = "".join(
                f' {name}="{values[name]}"'
                for name in ("colspan", "rowspan")
                if tag in ("td", "th") and values.get(name, "").isdigit()
            )
            self.out.append(f"<{tag}{spans}>")
            self.open.append(tag)

    def end(self, tag: str) -> None:
        if tag in self.open:
            self.close_to(tag)

    def text(self, data: str) -> None:
        self.out.append(escape(data))

    def preformatted(self, text: str, language: str) -> None:
        name = LANGUAGES.get(language)
        parameter = f'<ac:parameter ac:name="language">{name}</ac:parameter>' if name else ""
        self.out.append(
            f'<ac:structured-macro ac:name="code">{parameter}'
            f"<ac:plain-text-body>{cdata(text)}</ac:plain-text-body></ac:structured-macro>"
        )

    def finish(self) -> None:
        self.close_to("")


def markdown_to_html(text: str) -> str:
    return html_of(text, "Confluence")


def to_storage(
    markdown: str, attachments: Mapping[str, str], pages: Mapping[str, str] | None = None
) -> str:
    """report.md as storage format. ``attachments`` maps an image's (or link's) target as
    the text writes it to the file name it has on the page; ``pages`` a link's target to the
    title of the Confluence page it stands for."""
    parser = _Storage(attachments, pages or {})
    parser.feed(markdown_to_html(markdown))
    return parser.result().strip() + "\n"


def page_storage(page: Page) -> str:
    """A planned page (kit.share.pages) as storage format: its figures as its attachments,
    its children's links as links to their pages (titled by their names)."""
    attachments = {target: figure.name for target, figure in page.figure_targets().items()}
    pages = {target: child.name for target, child in page.child_targets().items()}
    return to_storage(page.text, attachments, pages)


def parse_storage(body: str) -> ET.Element:
    """The body as XML, wrapped in a root declaring the ``ac`` and ``ri`` namespaces (a
    ParseError when it is not well-formed)."""
    return ET.fromstring(f'<storage xmlns:ac="{AC}" xmlns:ri="{RI}">{body}</storage>')


def same_storage(stored: str, body: str) -> bool:
    """Whether a page's stored body says what ``body`` says: equal as canonical XML,
    whitespace around text and the ids Confluence adds to macros aside."""
    if stored == body:
        return True
    try:
        trees = [parse_storage(stored), parse_storage(body)]
    except ET.ParseError:
        return False
    for tree in trees:
        for element in tree.iter():
            for name in _VOLATILE & set(element.attrib):
                del element.attrib[name]
    first, second = (ET.canonicalize(ET.tostring(t), strip_text=True) for t in trees)
    return first == second
