"""The ``mmmu`` section of results.json (and of ``kit mmmu-score``'s output): the official
scoring's aggregates at the top, the vendor-strict scoring beside it under ``scoring``, the
published references each compared with the Overall of its own scoring, and, for a notebook
run, its deviations from the vendor's run, errors, timing and predictions file.

docs/mmmu.md states both protocols. Files of an older kit may lack the vendor-strict
scoring or any extra: they read as "not recorded".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.records.base import known_fields, mapping


@dataclass(frozen=True)
class Accuracy:
    """An MMMU accuracy: ``acc`` rounded to 3 decimals over ``n`` questions, ``correct``
    of them right (the official micro-average for groups and Overall)."""

    acc: float | None = None
    n: int | None = None
    correct: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"acc": self.acc, "n": self.n, "correct": self.correct}

    @classmethod
    def of(cls, section: Any) -> Accuracy | None:
        section = mapping(section)
        return cls(**known_fields(cls, section)) if section else None


def _accuracies(section: Any) -> dict[str, Accuracy]:
    return {key: Accuracy.of(value) or Accuracy() for key, value in mapping(section).items()}


def _plain(table: Mapping[str, Accuracy]) -> dict[str, dict[str, Any]]:
    return {key: value.to_dict() for key, value in table.items()}


@dataclass(frozen=True)
class Counts:
    questions: int | None = None
    answered: int | None = None
    errors: int | None = None  # questions no answer came back for (counted wrong)
    fallbacks: int | None = None  # multiple-choice answers parsed to no letter: a seeded draw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> Counts:
        return cls(**known_fields(cls, mapping(section)))


@dataclass(frozen=True)
class VendorStrictScores:
    """The vendor's scoring of the same responses: a multiple-choice answer counts only when
    ``response.strip()`` is the gold letter."""

    overall: Accuracy
    groups: Mapping[str, Accuracy] = field(default_factory=dict)
    subjects: Mapping[str, Accuracy] = field(default_factory=dict)
    by_question_type: Mapping[str, Accuracy] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "groups": _plain(self.groups),
            "subjects": _plain(self.subjects),
            "by_question_type": _plain(self.by_question_type),
            "counts": self.counts.to_dict(),
            "rule": self.rule,
        }

    @classmethod
    def of(cls, section: Any) -> VendorStrictScores | None:
        section = mapping(section)
        overall = Accuracy.of(section.get("overall"))
        if overall is None:
            return None
        return cls(
            overall=overall,
            groups=_accuracies(section.get("groups")),
            subjects=_accuracies(section.get("subjects")),
            by_question_type=_accuracies(section.get("by_question_type")),
            counts=Counts.of(section.get("counts")),
            rule=section.get("rule"),
        )


@dataclass(frozen=True)
class Scoring:
    """Both Overalls side by side (``scoring`` in the file)."""

    official_overall: Accuracy
    official_rule: str | None = None
    vendor_strict: VendorStrictScores | None = None  # None in files older than it
    differing_questions: int | None = None  # questions the two scorings judge differently

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "official": {"overall": self.official_overall.to_dict(), "rule": self.official_rule}
        }
        if self.vendor_strict is not None:
            out["vendor_strict"] = self.vendor_strict.to_dict()
        out["differing_questions"] = self.differing_questions
        return out

    @classmethod
    def of(cls, section: Any) -> Scoring | None:
        section = mapping(section)
        if not section:
            return None
        official = mapping(section.get("official"))
        return cls(
            official_overall=Accuracy.of(official.get("overall")) or Accuracy(),
            official_rule=official.get("rule"),
            vendor_strict=VendorStrictScores.of(section.get("vendor_strict")),
            differing_questions=section.get("differing_questions"),
        )


#: Written by one caller only: the notebook (kit.mmmu.outcome) or ``kit mmmu-score``.
EXTRAS = (
    "source",
    "comparable_with_references",
    "deviations",
    "error_questions",
    "timing",
    "predictions_file",
    "parse_mismatches",
)


@dataclass(frozen=True)
class MMMURecord:
    """The official Overall (the headline) with its breakdowns, both scorings, what was
    scored, and the published references."""

    overall: Accuracy
    groups: Mapping[str, Accuracy] = field(default_factory=dict)
    subjects: Mapping[str, Accuracy] = field(default_factory=dict)
    by_question_type: Mapping[str, Accuracy] = field(default_factory=dict)
    by_difficulty: Mapping[str, Accuracy] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    fallbacks: int | None = None
    errors: int | None = None
    letters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # predicted, gold
    seed: int | None = None  # the official fallback draw's seed
    scoring: Scoring | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)  # what was scored
    references: Sequence[Mapping[str, Any]] = ()  # published accuracies, each vs this run
    source: str | None = None  # "python -m kit mmmu-score" for responses made elsewhere
    comparable_with_references: bool | None = None
    deviations: Sequence[str] | None = None  # why this is not the vendor's run repeated
    error_questions: Sequence[Mapping[str, Any]] | None = None
    timing: Mapping[str, Any] | None = None
    predictions_file: str | None = None
    parse_mismatches: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "overall": self.overall.to_dict(),
            "groups": _plain(self.groups),
            "subjects": _plain(self.subjects),
            "by_question_type": _plain(self.by_question_type),
            "by_difficulty": _plain(self.by_difficulty),
            "counts": self.counts.to_dict(),
            "fallbacks": self.fallbacks,
            "errors": self.errors,
            "letters": {k: dict(v) for k, v in self.letters.items()},
            "seed": self.seed,
            "scoring": None if self.scoring is None else self.scoring.to_dict(),
            "parameters": dict(self.parameters),
            "references": [dict(r) for r in self.references],
        }
        for name in EXTRAS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def of(cls, section: Any) -> MMMURecord | None:
        section = mapping(section)
        if not section:
            return None
        scoring = Scoring.of(section.get("scoring"))
        overall = Accuracy.of(section.get("overall")) or (
            scoring.official_overall if scoring else Accuracy()
        )
        extras = {name: section.get(name) for name in EXTRAS}
        return cls(
            overall=overall,
            groups=_accuracies(section.get("groups")),
            subjects=_accuracies(section.get("subjects")),
            by_question_type=_accuracies(section.get("by_question_type")),
            by_difficulty=_accuracies(section.get("by_difficulty")),
            counts=Counts.of(section.get("counts")),
            fallbacks=section.get("fallbacks"),
            errors=section.get("errors"),
            letters={k: dict(mapping(v)) for k, v in mapping(section.get("letters")).items()},
            seed=section.get("seed"),
            scoring=scoring,
            parameters=dict(mapping(section.get("parameters"))),
            references=tuple(mapping(r) for r in section.get("references") or ()),
            **extras,
        )

    @property
    def official(self) -> Accuracy:
        """The official Overall: the headline, compared with the model card."""
        return self.overall

    @property
    def vendor_strict(self) -> Accuracy | None:
        """The vendor-strict Overall, compared with the vendor's S60 and L40s numbers."""
        if self.scoring is None or self.scoring.vendor_strict is None:
            return None
        return self.scoring.vendor_strict.overall

    @property
    def differing_questions(self) -> int | None:
        return None if self.scoring is None else self.scoring.differing_questions
