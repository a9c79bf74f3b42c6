"""The reproduce notebook: the vendor's whole document, run as child runs, with a verdict
beside every claim.

The document (docs/vendor-reference.md) makes claims in four sections: the model revision,
a demo answer, an MMMU accuracy and a performance table, under a stated test environment.
``python -m kit run reproduce`` runs them in the document's order (the model check in the
kernel, then demo, MMMU and each perf row as ordinary ``kit run`` children, each in its own
run folder beside the parent's) and records every child as it ends (``children.json``).
This module is that running side: the parameters, the plan of children, their records and
the model check. The verdict rules are kit.verdicts, the report kit.reproduce_report.

A child that fails is recorded with its error and the next one runs; ``--resume`` on the
parent reruns only the children that are missing or did not end ``ok``, each in its own
folder (an MMMU child keeps the answers it saved).
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
