"""The ``compare`` section of results.json: the baseline, one row per (run, scenario) with
each value's ratio to the baseline and flags where conditions differ, and the runs left
out (failed, unreadable, another schema)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kit.records.base import mapping


@dataclass(frozen=True)
class CompareRecord:
    baseline: str | None
    rows: Sequence[Mapping[str, Any]] = ()
    excluded: Sequence[Mapping[str, Any]] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "rows": [dict(r) for r in self.rows],
            "excluded": [dict(r) for r in self.excluded],
        }

    @classmethod
    def of(cls, section: Any) -> CompareRecord | None:
        section = mapping(section)
        if not section:
            return None
        return cls(
            baseline=section.get("baseline"),
            rows=tuple(mapping(r) for r in section.get("rows") or ()),
            excluded=tuple(mapping(r) for r in section.get("excluded") or ()),
        )
