"""Writing pages, figures and the index into a wiki's clone: only files whose bytes change
are written (each whole or not at all), and figures a page no longer has are removed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kit.core.files import write_atomic
from kit.share.index import INDEX_NAME, updated_index
from kit.share.pages import KIT_FOLDER, Page


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return True


def write_page(root: Path, page: Page) -> None:
    """The page, its figures (stale ones removed), and its children's pages."""
    write_if_changed(root / page.path, page.text.encode("utf-8"))
    figure_dir = root / page.figure_dir
    names = {figure.name for figure in page.figures}
    for figure in page.figures:
        write_if_changed(figure_dir / figure.name, figure.read_bytes())
    if figure_dir.is_dir():  # child pages and their folders share it: only old figures go
        for old in figure_dir.iterdir():
            if old.is_file() and old.suffix != ".md" and old.name not in names:
                old.unlink()
    for child in page.children:
        write_page(root, child)


def write_index(root: Path, pages: Sequence[Page]) -> Path:
    path = root / KIT_FOLDER / INDEX_NAME
    existing = path.read_text(encoding="utf-8") if path.is_file() else None
    write_if_changed(path, updated_index(existing, pages).encode("utf-8"))
    return path
