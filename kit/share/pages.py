"""A run as a wiki page: its name, its Markdown (report.md with figure and child links
rewritten) and its figures; a reproduce run's children as its sub pages.

Pages live under ``vlm-kit/`` in the wiki: ``vlm-kit/<date>-<label>-<id>.md``, its figures in
``vlm-kit/<date>-<label>-<id>/``, a reproduce run's children as
``vlm-kit/<parent>/<child>.md`` (with their figures in ``vlm-kit/<parent>/<child>/``). Every
link is relative, so it works in the wiki and in the clone alike. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from kit.core.params import ParameterError
from kit.records.base import ResultsError
from kit.records.results import RunRecord, read_run

KIT_FOLDER = PurePosixPath("vlm-kit")  # everything the kit writes in a wiki lies here
REPORT = "report.md"
FIGURES = "report_files"
CHILDREN_FILE = "children.json"  # a reproduce run's children (kit.reproduce.children)
MAX_SLUG = 48


@dataclass(frozen=True)
class Page:
    """One run's page: where it goes in the wiki, its text, its figures and sub pages."""

    run: RunRecord
    folder: Path  # the run folder it was made from (only read)
    path: PurePosixPath  # relative to the wiki's root, ending in .md
    text: str
    figures: tuple[Path, ...] = ()  # copied into ``figure_dir`` under their own names
    children: tuple[Page, ...] = ()
    notes: tuple[str, ...] = field(default=())  # children that could not be shared, why

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def figure_dir(self) -> PurePosixPath:
        """The page's own folder: its figures, and a reproduce run's child pages."""
        return self.path.with_suffix("")

    @property
    def date(self) -> str:
        return run_date(self.run, self.folder)

    def all_pages(self) -> list[Page]:
        return [self, *(p for child in self.children for p in child.all_pages())]

    def figure_targets(self) -> dict[str, Path]:
        """Each figure by the link target the page's text names it with (``<page>/x.png``)."""
        return {target(self.figure_dir.name, figure.name): figure for figure in self.figures}

    def child_targets(self) -> dict[str, Page]:
        """Each child page by the link target the text names it with (``<page>/<child>.md``)."""
        return {target(self.figure_dir.name, child.path.name): child for child in self.children}


def target(own_dir: str, name: str) -> str:
    """How a page's text links what lies in its own folder (a figure, a child's page)."""
    return f"{own_dir}/{name}"


def run_date(run: RunRecord, folder: Path) -> str:
    """YYYY-MM-DD the run started: its record's, else its folder name's, else 'undated'."""
    if re.match(r"\d{4}-\d\d-\d\d", run.started_at):
        return run.started_at[:10]
    found = re.match(r"(\d{4})(\d\d)(\d\d)-", folder.name)
    return "-".join(found.groups()) if found else "undated"


def short_id(folder: Path) -> str:
    """The run folder's own id (``...-3a18a6``), else six hex digits of its name's hash."""
    found = re.search(r"-([0-9a-f]{6,})$", folder.name)
    if found:
        return found.group(1)[:6]
    return hashlib.sha256(folder.name.encode()).hexdigest()[:6]


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:MAX_SLUG].strip("-") or "run"


def page_name(run: RunRecord, folder: Path) -> str:
    """``2026-12-05-smoke-demo-3a18a6``: date, label (or notebook), the folder's id."""
    what = run.label or (run.notebook if run.notebook != "?" else "")
    return f"{run_date(run, folder)}-{slug(what)}-{short_id(folder)}"


def read_shareable(folder: Path, what: str = "RUN_FOLDER") -> RunRecord:
    """The run in ``folder``, or a ParameterError saying why it cannot be shared."""
    if not folder.is_dir():
        raise ParameterError(
            f"{what} {str(folder)!r} is not a folder. Give a run folder "
            "(outputs/<timestamp>-<notebook>-<id>/), one that holds results.json and report.md."
        )
    try:
        run = read_run(folder)
    except ResultsError as exc:
        raise ParameterError(
            f"{what} {str(folder)!r} is not a run folder the kit can read: {exc}. Give a "
            "folder written by `python -m kit run` (outputs/<timestamp>-<notebook>-<id>/)."
        ) from None
    if not (folder / REPORT).is_file():
        raise ParameterError(
            f"{what} {str(folder)!r} has no {REPORT}, the page a wiki shows. Render it with "
            f"`python -m kit render {folder}/<notebook>.ipynb`, then share it again."
        )
    return run


def figure_files(folder: Path) -> tuple[Path, ...]:
    figures = folder / FIGURES
    if not figures.is_dir():
        return ()
    return tuple(sorted(p for p in figures.iterdir() if p.is_file()))


def rewrite_figures(text: str, figure_dir: str) -> str:
    """``report_files/x.png`` links (Markdown and raw HTML) point at the page's folder."""
    return re.sub(r"(?<=[(\"'])report_files/", f"{figure_dir}/", text)


def child_folders(run: RunRecord, folder: Path) -> list[tuple[str, Path]]:
    """A reproduce run's children: (link as the report writes it, child folder), from
    children.json and the results' own list (as the record has them; one each)."""
    records: list[Any] = list(run.reproduce.children) if run.reproduce else []
    try:
        saved = json.loads((folder / CHILDREN_FILE).read_text())
        records += list(saved.get("children") or []) if isinstance(saved, dict) else []
    except (OSError, ValueError):
        pass
    out: dict[str, Path] = {}
    for record in records:
        link = record.get("folder") if isinstance(record, Mapping) else None
        if isinstance(link, str) and link:
            out.setdefault(link.rstrip("/"), folder / link)
    return sorted(out.items())


def rewrite_child_link(text: str, link: str, target: str | None, title: str) -> str:
    """Links to a child's report (``[../c](../c/report.md)``, ``.html`` or the folder)
    point at its page; with no page, the link becomes text saying so."""
    name = PurePosixPath(link).name
    names = "|".join(re.escape(n) for n in dict.fromkeys((name, quote(name))))
    pattern = re.compile(r"\[([^\]]*)\]\(\.\./(?:" + names + r")(?:/(?:report\.(?:md|html))?)?\)")

    def replace(found: re.Match[str]) -> str:
        label = found.group(1)
        if label.strip() in {link, f"../{name}", name}:
            label = title
        return f"[{label}]({target})" if target else f"{label} (not shared)"

    return pattern.sub(replace, text)


def plan_page(folder: Path, under: PurePosixPath = KIT_FOLDER, depth: int = 0) -> Page:
    """The page of the run in ``folder`` (and of its children), placed in ``under``."""
    run = read_shareable(folder, "RUN_FOLDER" if depth == 0 else "the child folder")
    path = under / f"{page_name(run, folder)}.md"
    own_dir = path.with_suffix("")
    text = rewrite_figures((folder / REPORT).read_text(encoding="utf-8"), own_dir.name)
    children: list[Page] = []
    notes: list[str] = []
    for link, child_folder in child_folders(run, folder) if depth == 0 else []:
        try:
            child = plan_page(child_folder, own_dir, depth + 1)
        except ParameterError as exc:
            notes.append(f"child {link} not shared: {exc}")
            text = rewrite_child_link(text, link, None, link)
            continue
        children.append(child)
        text = rewrite_child_link(text, link, target(own_dir.name, child.path.name), child.name)
    return Page(run, folder, path, text, figure_files(folder), tuple(children), tuple(notes))
