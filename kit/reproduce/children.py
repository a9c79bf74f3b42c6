"""``children.json``: what became of each child of a reproduction, and which need to run again.

A child's record is saved as soon as it changes, so a killed parent keeps what its children
did. On ``--resume`` a child needs no rerun only when it ended ``ok`` and, for a run folder,
that folder's own results.json still says so; an in-kernel check needs its kept result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kit.records.results import read_document
from kit.reproduce.params import ChildPlan

CHILDREN_FILE = "children.json"

OK = "ok"


@dataclass
class ChildRecord:
    """A child's outcome, saved as soon as it changes so a killed parent keeps it."""

    key: str
    section: str
    notebook: str | None
    status: str = "pending"  # pending, running, ok, failed, interrupted
    folder: str | None = None  # relative to the parent's run folder (../<child folder>)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None  # an in-kernel check keeps its result here

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ChildRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_children(path: Path) -> dict[str, ChildRecord]:
    """An earlier attempt's children (empty when there is none or it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for item in data.get("children") or []:
        if isinstance(item, Mapping) and item.get("key"):
            out[str(item["key"])] = ChildRecord.of(item)
    return out


def child_finished(record: ChildRecord | None, parent: Path) -> bool:
    """Whether a child needs no rerun: it ended ok, and (for a run folder) its own
    results.json still says so."""
    if record is None or record.status != OK:
        return False
    if record.notebook is None:
        return record.result is not None
    if not record.folder:
        return False
    document = read_document(parent / record.folder)
    return document is not None and document.get("status") == OK


def children_to_run(
    plans: Sequence[ChildPlan], previous: Mapping[str, ChildRecord], parent: Path
) -> list[str]:
    """Keys of the children that are missing or did not finish ok (pure but for reading
    the children's results.json)."""
    return [p.key for p in plans if not child_finished(previous.get(p.key), parent)]
