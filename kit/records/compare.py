"""The ``compare`` section of results.json: the baseline, one row per (run, scenario) with
each value's ratio to the baseline and flags where conditions differ, the runs left out
(failed, unreadable, another schema), and each compared numerics run's verdict against its
reference (``numerics``, one NumericsRow per run checked against a reference)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.records.base import mapping


@dataclass(frozen=True)
class NumericsRow:
    """A compared numerics run against its reference (kit.records.numerics'
    NumericsComparison, summed up): who, against whom, the overall verdict, how many prompts
    got each verdict, |Δ logprob| over the teacher-forced positions, and which prompts
    diverged. ``reference`` is the reference's label where it is one of the compared runs
    (``reference_run`` its folder name), else the reference as the run recorded it."""

    label: str
    run: str  # the run's folder name
    reference: str
    verdict: str
    reference_run: str | None = None  # the reference's folder, when it was compared too
    counts: Mapping[str, int] = field(default_factory=dict)
    positions: int = 0
    mean_abs_delta: float | None = None
    max_abs_delta: float | None = None
    diverged: Sequence[str] = ()  # ids of the prompts whose verdict is "diverged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "run": self.run,
            "reference": self.reference,
            "reference_run": self.reference_run,
            "verdict": self.verdict,
            "counts": dict(self.counts),
            "positions": self.positions,
            "mean_abs_delta": self.mean_abs_delta,
            "max_abs_delta": self.max_abs_delta,
            "diverged": list(self.diverged),
        }

    @classmethod
    def of(cls, section: Any) -> NumericsRow:
        section = mapping(section)
        reference_run = section.get("reference_run")
        return cls(
            label=str(section.get("label") or ""),
            run=str(section.get("run") or ""),
            reference=str(section.get("reference") or ""),
            verdict=str(section.get("verdict") or "?"),
            reference_run=None if reference_run is None else str(reference_run),
            counts=dict(mapping(section.get("counts"))),
            positions=section.get("positions") or 0,
            mean_abs_delta=section.get("mean_abs_delta"),
            max_abs_delta=section.get("max_abs_delta"),
            diverged=tuple(str(d) for d in section.get("diverged") or ()),
        )


@dataclass(frozen=True)
class CompareRecord:
    baseline: str | None
    rows: Sequence[Mapping[str, Any]] = ()
    excluded: Sequence[Mapping[str, Any]] = ()
    numerics: Sequence[NumericsRow] = ()  # empty: no compared run was checked numerically

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "rows": [dict(r) for r in self.rows],
            "excluded": [dict(r) for r in self.excluded],
            "numerics": [r.to_dict() for r in self.numerics],
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
            numerics=tuple(NumericsRow.of(r) for r in section.get("numerics") or ()),
        )
