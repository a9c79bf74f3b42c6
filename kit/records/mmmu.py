"""The one reader of ``results.json``: its schema version, where it lies, and typed sections.

Every notebook writes one results.json; reports, the run index and the comparison read it
back only through this module, so each field is named in one place, and a file written by
an older kit (no ``engine``, no ``schedule``, no vendor-strict MMMU scoring) reads as "not
recorded" instead of failing. The writers: kit.run (``Run.document``: the envelope),
kit.engine (``engine_config``: ``engine``), kit.perf_run (``point_record``: ``perf.points``),
kit.mmmu_report (``mmmu_section``: ``mmmu``) and kit.demo (``DemoResult``: ``demo``);
docs/methodology.md says what the numbers mean.

Nothing here imports vLLM or kit.run: it works wherever a results.json was copied to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kit.records.base import known_fields, mapping


@dataclass(frozen=True)
class Accuracy:
    """An MMMU accuracy: acc rounded to 3 decimals over n questions (docs/mmmu.md)."""

    acc: float | None = None
    n: int | None = None
    correct: int | None = None

    @classmethod
    def of(cls, section: Any) -> Accuracy | None:
        section = mapping(section)
        return cls(**known_fields(cls, section)) if section else None


@dataclass(frozen=True)
class MMMURecord:
    """The ``mmmu`` section (kit.mmmu_report.mmmu_section): the official Overall (the
    headline; the section's top-level ``overall``), the vendor-strict Overall beside it, and
    the published references each compared with one of them."""

    official: Accuracy
    vendor_strict: Accuracy | None  # None in files older than the vendor-strict scoring
    differing_questions: int | None  # questions the two scorings judge differently
    references: tuple[dict[str, Any], ...]
    parameters: dict[str, Any]  # what was scored
    counts: dict[str, Any]
    section: dict[str, Any] = field(repr=False)  # everything, groups and subjects included

    @classmethod
    def of(cls, section: Any) -> MMMURecord | None:
        section = mapping(section)
        if not section:
            return None
        scoring = mapping(section.get("scoring"))
        official = Accuracy.of(section.get("overall")) or Accuracy.of(
            mapping(scoring.get("official")).get("overall")
        )
        return cls(
            official=official or Accuracy(),
            vendor_strict=Accuracy.of(mapping(scoring.get("vendor_strict")).get("overall")),
            differing_questions=scoring.get("differing_questions"),
            references=tuple(section.get("references") or ()),
            parameters=dict(mapping(section.get("parameters"))),
            counts=dict(mapping(section.get("counts"))),
            section=dict(section),
        )
