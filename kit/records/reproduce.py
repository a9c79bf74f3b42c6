"""The ``reproduce`` section of results.json: one verdict per claim of the vendor's document,
each with the numbers behind it (value, 95% interval, n, the document's value and the
ratio), so a dashboard or a later comparison can read them back, not only the text; the
children that ran; and the model check and demo agreement in detail.

Schema 1 files carried the verdicts' measurements as text only: their ``numbers`` read as
empty. docs/reproduce.md says how each verdict is decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.core.intervals import Interval
from kit.records.base import known_fields, mapping


@dataclass(frozen=True)
class Measured:
    """One number behind a verdict."""

    value: float | None = None
    low: float | None = None  # the interval, where there is one
    high: float | None = None
    n: int | None = None  # what the value counts over (questions, iterations, words)
    method: str | None = None  # "wilson", "student-t"
    confidence: float | None = None
    reference: float | None = None  # the document's value
    ratio: float | None = None  # value / reference

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> Measured:
        return cls(**known_fields(cls, mapping(section)))

    @classmethod
    def of_interval(cls, interval: Interval, reference: float | None = None) -> Measured:
        estimate = interval.estimate
        return cls(
            value=estimate,
            low=interval.low,
            high=interval.high,
            n=interval.n,
            method=interval.method,
            confidence=interval.confidence,
            reference=reference,
            ratio=estimate / reference if estimate is not None and reference else None,
        )


@dataclass(frozen=True)
class Verdict:
    """One claim of the document, the kit's measurement beside it, and the verdict."""

    section: str
    claim: str
    document: str  # the document's value, as text
    measured: str  # the measurement, as text
    verdict: str
    why: str
    link: str | None = None  # the child's run folder, relative to the parent's
    numbers: Mapping[str, Measured] = field(default_factory=dict)  # the measurement's numbers

    def row(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "claim": self.claim,
            "document": self.document,
            "measured": self.measured,
            "verdict": self.verdict,
            "why": self.why,
            "run": self.link or "",
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "numbers"},
            "numbers": {name: number.to_dict() for name, number in self.numbers.items()},
        }

    @classmethod
    def of(cls, section: Any) -> Verdict:
        section = mapping(section)
        values = {k: v for k, v in known_fields(cls, section).items() if k != "numbers"}
        numbers = {k: Measured.of(v) for k, v in mapping(section.get("numbers")).items()}
        return cls(
            **{
                "section": "?",
                "claim": "?",
                "document": "",
                "measured": "",
                "verdict": "?",
                "why": "",
                **values,
            },
            numbers=numbers,
        )


@dataclass(frozen=True)
class ReproduceRecord:
    """While the children run: their records and which were kept from an earlier attempt;
    once the report is built: the verdicts, their counts, and the details behind them."""

    children: Sequence[Mapping[str, Any]] = ()
    reused: Sequence[str] | None = None  # children kept from an earlier attempt
    verdicts: Sequence[Verdict] | None = None
    verdict_counts: Mapping[str, int] | None = None
    tolerance: float | None = None  # a perf column reproduces within this share
    demo: Mapping[str, Any] | None = None  # the demo answer's agreement in words and tokens
    model: Mapping[str, Any] | None = None  # the model folder against its manifest

    def to_dict(self) -> dict[str, Any]:
        if self.verdicts is None:
            return {"children": [dict(c) for c in self.children], "reused": list(self.reused or ())}
        return {
            "children": [dict(c) for c in self.children],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "verdict_counts": dict(self.verdict_counts or {}),
            "tolerance": self.tolerance,
            "demo": None if self.demo is None else dict(self.demo),
            "model": None if self.model is None else dict(self.model),
        }

    @classmethod
    def of(cls, section: Any) -> ReproduceRecord | None:
        section = mapping(section)
        if not section:
            return None
        verdicts = section.get("verdicts")
        return cls(
            children=tuple(mapping(c) for c in section.get("children") or ()),
            reused=section.get("reused"),
            verdicts=None if verdicts is None else tuple(Verdict.of(v) for v in verdicts),
            verdict_counts=section.get("verdict_counts"),
            tolerance=section.get("tolerance"),
            demo=section.get("demo"),
            model=section.get("model"),
        )
