"""The ``mmmu`` section, one shape for the notebook's results.json and ``kit mmmu-score``
(kit.records.mmmu.MMMURecord): the official aggregates, both Overalls side by side, what
was scored, and the published references each against this run's Overall of the same
scoring (the vendor's S60 and L40s rows: vendor-strict; the model card: official).
docs/mmmu.md explains both scorings and why they differ.
"""

from __future__ import annotations

from typing import Any

from kit.mmmu.questions import OFFICIAL, SCORING_RULES, VENDOR_STRICT
from kit.mmmu.scoring import ScoreReport, differing_verdicts
from kit.records.mmmu import MMMURecord, Scoring, VendorStrictScores
from kit.records.references import load_references

SCORING_NAMES = {OFFICIAL: "official", VENDOR_STRICT: "vendor-strict"}


def reference_scoring(reference: Any) -> str:
    """The scoring a published accuracy is compared with: the row's own ``scoring`` when it
    names one; else the vendor document's rows were made by the vendor's script
    (vendor-strict) and anything else (the model card) is compared with the official one."""
    explicit = getattr(reference, "scoring", None)
    if explicit in SCORING_NAMES:
        return explicit
    source = f"{reference.source or ''} {reference.label or ''}".lower()
    return VENDOR_STRICT if "vendor" in source else OFFICIAL


def reference_rows(
    official: float | None, vendor_strict: float | None = None
) -> list[dict[str, Any]]:
    """params/references.yaml's MMMU rows, each against this run's Overall of its scoring."""

    overall = {OFFICIAL: official, VENDOR_STRICT: vendor_strict}
    rows = []
    for ref in load_references().mmmu:
        scoring = reference_scoring(ref)
        mine = overall[scoring]
        rows.append(
            {
                "source": ref.device,
                "accuracy": ref.accuracy,
                "scoring": SCORING_NAMES[scoring],
                "this run - reference (points)": (
                    None if mine is None else f"{100 * (mine - ref.accuracy):+.1f}"
                ),
                "note": ref.label or ref.source or "",
            }
        )
    return rows


def scoring_section(official: ScoreReport, vendor: ScoreReport) -> Scoring:
    """Both Overalls side by side; the vendor-strict breakdown in full."""
    return Scoring(
        official_overall=official.overall,
        official_rule=SCORING_RULES[OFFICIAL],
        vendor_strict=VendorStrictScores(
            overall=vendor.overall,
            groups=vendor.groups,
            subjects=vendor.subjects,
            by_question_type=vendor.by_question_type,
            counts=vendor.counts,
            rule=SCORING_RULES[VENDOR_STRICT],
        ),
        differing_questions=len(differing_verdicts(official, vendor)),
    )


def mmmu_section(
    official: ScoreReport, vendor: ScoreReport, parameters: dict[str, Any], **extras: Any
) -> MMMURecord:
    """The section for both callers; ``extras`` are the caller's own fields (the notebook:
    deviations, timing, ...; the scorer: its source)."""
    answered = bool(official.overall.n)
    return MMMURecord(
        overall=official.overall,
        groups=official.groups,
        subjects=official.subjects,
        by_question_type=official.by_question_type,
        by_difficulty=official.by_difficulty,
        counts=official.counts,
        fallbacks=official.counts.fallbacks,
        errors=official.counts.errors,
        letters={"predicted": official.predicted_letters, "gold": official.gold_letters},
        seed=official.seed,
        scoring=scoring_section(official, vendor),
        parameters=parameters,
        references=reference_rows(
            official.overall.acc if answered else None,
            vendor.overall.acc if answered else None,
        ),
        **extras,
    )
