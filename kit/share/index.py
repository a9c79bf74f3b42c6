"""The wiki's list of shared runs: one row per shared run, newest first. On a git wiki
``vlm-kit/index.md`` (a Markdown table); on MediaWiki a page of its own (a wikitext table,
kit.share.mediawiki_format).

The rows lie between two HTML comments (invisible in a wiki); a run shared again replaces
its own row (its key is its page's link), every other row and any text outside the
comments stay as they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kit.report.markdown import markdown_cell
from kit.share.pages import Page

INDEX_NAME = "index.md"
BEGIN = "<!-- vlm-kit runs: rows kept by `python -m kit share`; edit outside these comments -->"
END = "<!-- end of vlm-kit runs -->"
COLUMNS = ("run", "notebook", "status", "date", "run folder")
TITLE = (
    "# VLM kit runs\n\n"
    "Runs shared with `python -m kit share`, newest first. Each page is the run's report; "
    "a reproduce run's children are its sub pages.\n\n"
)
_LINK = re.compile(r"\]\(([^)]+)\)")


@dataclass(frozen=True)
class IndexFormat:
    """How one wiki writes the index: the text of a new one, the table around the rows, a
    page's row (with its key) and the key of a row read back (None: not a row)."""

    intro: str
    head: str
    tail: str
    row_start: str  # before each row
    row: Callable[[Page], tuple[str, str]]
    key: Callable[[str], str | None]


def index_row(page: Page) -> str:
    cells = [
        f"[{markdown_cell(page.name)}]({page.path.name})",
        markdown_cell(page.run.notebook),
        markdown_cell(page.run.status),
        markdown_cell(page.date),
        markdown_cell(page.folder.name),
    ]
    return "| " + " | ".join(cells) + " |"


def row_key(line: str) -> str | None:
    """The page a Markdown table row links to (None for the header and separator rows)."""
    if not line.startswith("|"):
        return None
    found = _LINK.search(line.split("|")[1] if line.count("|") > 1 else "")
    return found.group(1) if found else None


MARKDOWN = IndexFormat(
    intro=TITLE,
    head="| " + " | ".join(COLUMNS) + " |\n|" + "|".join("---" for _ in COLUMNS) + "|\n",
    tail="",
    row_start="",
    row=lambda page: (page.path.name, index_row(page)),
    key=row_key,
)


def updated_index(existing: str | None, pages: Sequence[Page], form: IndexFormat = MARKDOWN) -> str:
    """The index with a row for each of ``pages`` (replacing their earlier rows)."""
    text = existing if existing is not None else form.intro + f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text.split(BEGIN, 1)[1]:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"  # a hand-made page keeps its text
    before, rest = text.split(BEGIN, 1)
    block, after = rest.split(END, 1)
    rows = {}
    for line in block.splitlines():
        key = form.key(line)
        if key:
            rows[key] = line
    for page in pages:
        key, line = form.row(page)
        rows[key] = line
    # page names start with the date: newest first
    body = "".join(form.row_start + rows[key] + "\n" for key in sorted(rows, reverse=True))
    return f"{before}{BEGIN}\n{form.head}{body}{form.tail}{END}{after}"
