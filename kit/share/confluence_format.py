"""A run's page in Confluence *storage format* (XHTML): report.md rendered to HTML with
mistune (the Markdown library nbconvert uses), then rebuilt tag by tag as storage format.

Only known tags are kept (headings, paragraphs, lists, tables, emphasis, code, quotes);
others are dropped with their text kept, script and style with their text. Every piece of
text and every attribute is escaped again here, and characters XML forbids become U+FFFD,
so whatever a model or a dataset wrote reads as text and the body always parses as XML.
``<pre>`` becomes the code macro, images the page's attachments (``ac:image``), links to a
reproduce run's children Confluence page links (``ac:link``) by title.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from kit.core.params import ParameterError
from kit.share.pages import Page

AC = "http://atlassian.com/content"
RI = "http://atlassian.com/resource/identifier"
KEPT = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "b", "i", "u",
    "code", "del", "s", "sub", "sup", "blockquote", "tr", "th", "td", "caption",
}  # fmt: skip
VOID = {"br", "hr"}
DROPPED_WITH_TEXT = {"script", "style", "head", "title"}
TABLE_PARTS = {"thead", "tbody", "tfoot"}  # one <tbody> per table, as Confluence keeps them
# the code macro's names for the fences report.md and people write
LANGUAGES = {
    "text": "text", "python": "py", "py": "py", "bash": "bash", "sh": "bash", "shell": "bash",
    "console": "bash", "json": "js", "javascript": "js", "js": "js", "yaml": "yml", "yml": "yml",
    "xml": "xml", "html": "xml", "diff": "diff", "sql": "sql", "java": "java", "cpp": "cpp",
    "c++": "cpp", "css": "css", "powershell": "powershell",
}  # fmt: skip
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_VOLATILE = {f"{{{AC}}}macro-id", f"{{{AC}}}schema-version", f"{{{AC}}}local-id", "local-id"}


def clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def escape(text: str) -> str:
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attribute(text: str) -> str:
    return escape(text).replace('"', "&quot;")


def cdata(text: str) -> str:
    return "<![CDATA[" + clean(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


class _Storage(HTMLParser):
    """HTML in, storage format out; the links it knows are mapped by their target."""

    def __init__(self, attachments: Mapping[str, str], pages: Mapping[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.attachments = attachments  # link target -> attachment file name
        self.pages = pages  # link target -> page title
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping: str | None = None
        self.pre: list[str] | None = None
        self.language = ""
        self.link: tuple[str, list[str]] | None = None

    # -- pieces -----------------------------------------------------------------------
    def image(self, src: str, alt: str) -> str:
        target = unquote(src)
        alt_attr = f' ac:alt="{attribute(alt)}"' if alt else ""
        if target in self.attachments:
            name = attribute(self.attachments[target])
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
        if target in self.attachments:
            name = self.attachments[target]
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
            self.out.append(self.image(values.get("src", ""), values.get("alt", "")))
        elif tag == "a":
            self.link = (values.get("href", ""), [])
        elif tag in VOID:
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
                href, text = self.link
                self.link = None
                self.out.append(self.link_markup(href, " ".join("".join(text).split())))
            return
        if tag in self.open:
            self.close_to(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre is not None:
            self.pre.append(data)
        elif self.link is not None:
            self.link[1].append(data)
        else:
            self.out.append(escape(data))

    def flush_pre(self) -> None:
        text = "".join(self.pre or []).rstrip("\n")
        self.pre = None
        language = LANGUAGES.get(self.language)
        parameter = (
            f'<ac:parameter ac:name="language">{language}</ac:parameter>' if language else ""
        )
        self.out.append(
            f'<ac:structured-macro ac:name="code">{parameter}'
            f"<ac:plain-text-body>{cdata(text)}</ac:plain-text-body></ac:structured-macro>"
        )

    def result(self) -> str:
        self.close()
        if self.pre is not None:
            self.flush_pre()
        if self.link is not None:
            self.handle_endtag("a")
        self.close_to("")
        return "".join(self.out).strip() + "\n"


def markdown_to_html(text: str) -> str:
    try:
        import mistune
    except ImportError:
        raise ParameterError(
            "sharing to Confluence needs the Python package mistune (it comes with nbconvert: "
            "`pip install nbconvert`, or `pip install mistune`); nothing was sent."
        ) from None
    render = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    return str(render(text))


def to_storage(
    markdown: str, attachments: Mapping[str, str], pages: Mapping[str, str] | None = None
) -> str:
    """report.md as storage format. ``attachments`` maps an image's (or link's) target as
    the text writes it to the file name it has on the page; ``pages`` a link's target to the
    title of the Confluence page it stands for."""
    parser = _Storage(attachments, pages or {})
    parser.feed(markdown_to_html(markdown))
    return parser.result()


def page_storage(page: Page) -> str:
    """A planned page (kit.share.pages) as storage format: its figures as its attachments,
    its children's links as links to their pages (titled by their names)."""
    folder = page.figure_dir.name
    attachments = {f"{folder}/{figure.name}": figure.name for figure in page.figures}
    pages = {f"{folder}/{child.path.name}": child.name for child in page.children}
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
