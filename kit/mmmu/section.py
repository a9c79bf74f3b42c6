"""What an MMMU scoring reports: the ``mmmu`` section of results.json, tables, charts, gallery.

Shared by the notebook (through :mod:`kit.mmmu_run`) and ``python -m kit mmmu-score``. The
functions return rows, PNG bytes or HTML strings; notebooks show them with ``kit.display``'s
``show_*`` helpers. Everything from the model or the dataset is escaped.

The ``mmmu`` section (``mmmu_section``), one shape for both callers::

    overall, groups, subjects,          official scoring, as before (the headline numbers)
    by_question_type, by_difficulty,
    counts, fallbacks, errors, letters, seed
    scoring:
      official:      {overall, rule}
      vendor_strict: {overall, groups, subjects, by_question_type, counts, rule}
      differing_questions: questions the two scorings judge differently
    parameters:      what was scored
    references:      [{source, accuracy, scoring, "this run - reference (points)", note}]
                     the vendor's rows (S60, L40s) are compared with this run's vendor-strict
                     Overall, any other row (the model card) with the official one
    ...              the caller's extra keys (the notebook: deviations, timing, ...)

Accuracies are {"acc", "n", "correct"} with acc rounded to 3 decimals; docs/mmmu.md explains
both scorings and why they differ.
"""

from __future__ import annotations

from typing import Any

from kit.mmmu.questions import OFFICIAL, SCORING_RULES, VENDOR_STRICT
from kit.mmmu.scoring import ScoreReport, differing_verdicts
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


def scoring_section(official: ScoreReport, vendor: ScoreReport) -> dict[str, Any]:
    """Both Overalls side by side; the vendor-strict breakdown in full."""
    strict = vendor.to_dict()
    return {
        OFFICIAL: {
            "overall": official.overall.to_dict(),
            "rule": SCORING_RULES[OFFICIAL],
        },
        VENDOR_STRICT: {
            "overall": strict["overall"],
            "groups": strict["groups"],
            "subjects": strict["subjects"],
            "by_question_type": strict["by_question_type"],
            "counts": strict["counts"],
            "rule": SCORING_RULES[VENDOR_STRICT],
        },
        "differing_questions": len(differing_verdicts(official, vendor)),
    }


def mmmu_section(
    official: ScoreReport,
    vendor: ScoreReport,
    parameters: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``mmmu`` JSON shared by the notebook's results.json and the scorer CLI (shape in
    the module docstring)."""
    summary = official.to_dict()
    answered = official.overall.n > 0
    return {
        "overall": summary["overall"],
        "groups": summary["groups"],
        "subjects": summary["subjects"],
        "by_question_type": summary["by_question_type"],
        "by_difficulty": summary["by_difficulty"],
        "counts": summary["counts"],
        "fallbacks": official.counts.fallbacks,
        "errors": official.counts.errors,
        "letters": summary["letters"],
        "seed": summary["seed"],
        "scoring": scoring_section(official, vendor),
        "parameters": parameters,
        "references": reference_rows(
            official.overall.acc if answered else None,
            vendor.overall.acc if answered else None,
        ),
        **(extra or {}),
    }
