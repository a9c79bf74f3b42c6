"""Progress of a run in the terminal: one line per notebook section, with the time since start.

Papermill logs every cell it executes; those lines are turned into the heading of the
notebook section the cell belongs to, printed once per section, so the terminal of
``python -m kit run`` shows where a long run is without repeating the cells' output.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from pathlib import Path

from kit.core.progress import format_duration


def section_titles(source: Path) -> dict[int, str]:
    """Papermill's cell numbers (from 1, its injected-parameters cell included) -> the
    heading of the notebook section the cell belongs to."""
    import nbformat

    cells = nbformat.read(str(source), as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    if tagged:  # papermill inserts its injected-parameters cell right after this one
        cells = cells[: tagged[0] + 1] + [cells[tagged[0]]] + cells[tagged[0] + 1 :]
    titles, current = {}, "Start"
    for number, cell in enumerate(cells, start=1):
        if cell.cell_type == "markdown":
            headings = [ln for ln in cell.source.splitlines() if ln.startswith("#")]
            if headings:
                current = headings[0].lstrip("#").strip()
        titles[number] = current
    return titles


class SectionLog(logging.Handler):
    """Turns papermill's "Executing Cell N" log into one line per notebook section, with
    the time since the run started. The rest of papermill's log repeats the cells' output,
    which reaches the terminal once, through ``stdout_file``/``stderr_file``."""

    CELL = re.compile(r"Executing Cell (\d+)")

    def __init__(self, titles: dict[int, str], started: float):
        super().__init__(logging.INFO)
        self.titles, self.started = titles, started
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = self.CELL.match(message)
        if match:
            title = self.titles.get(int(match.group(1)))
            if title and title != self.last:
                self.last = title
                elapsed = format_duration(time.monotonic() - self.started)
                print(f"[{elapsed}] {title}", flush=True)


@contextlib.contextmanager
def section_progress(source: Path, started: float):
    logger = logging.getLogger("papermill")
    handler = SectionLog(section_titles(source), started)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])
