"""The MMMU run's outcome: every answer scored both ways, and how the run differs from the vendor's.

:func:`score` rescores everything in ``predictions.jsonl`` with the official rules and the
vendor-strict rule (kit.mmmu.scoring) and records the ``mmmu`` section of ``results.json``.
Its deviations list what keeps the numbers from being the vendor's run repeated: the scoring
(always), the fixture or the tiny model, every setting that differs from the vendor's
(``VENDOR_SETTINGS``), a partial validation split, unanswered questions; the references are
comparable only when the scoring is the only entry. :func:`check_parses` fails the run when a
parse written as an answer arrived differs from the final scoring's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.mmmu.answer import AnswerStats, QuestionPlan, same_parse
from kit.mmmu.dataset import FIXTURE
from kit.mmmu.params import MMMUParams
from kit.mmmu.questions import SUBJECTS
from kit.mmmu.scoring import ScoreReport, score_predictions, score_predictions_vendor
from kit.mmmu.section import mmmu_section
from kit.models.registry import is_tiny_model
from kit.records.mmmu import MMMURecord

#: The vendor's accuracy run (docs/mmmu.md): MMMU validation, image_1, greedy, 10 new tokens,
#: one question per llm.generate call, bf16, max_model_len 32768, one card, vLLM 0.6's
#: scheduler. A run whose value differs lists it among its deviations.
VENDOR_SETTINGS: dict[str, Any] = {
    "split": "validation",
    "image_policy": "first",
    "max_output_len": 10,
    "temperature": 0.0,
    "num_crops": 4,
    "batch_size": 1,
    "dtype": "bfloat16",
    "max_model_len": 32768,
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "data_parallel_size": 1,
    "scheduling": "vendor",
}


#: Why a difference matters, shown beside it.
VENDOR_SETTING_NOTES = {
    "batch_size": "0 sends chunk_size questions per llm.generate call and lets vLLM batch them; "
    "batched kernels round differently, so a few answers may change",
    "dtype": "'auto' takes the checkpoint's torch_dtype (bfloat16 for Phi-3.5-vision-instruct)",
    "scheduling": "'vllm' keeps the installed vLLM's scheduler defaults",
}


#: Always listed: the two scorings and which reference is compared with which.
SCORING_DEVIATION = (
    "scoring: this run's Overall (mmmu.overall) uses the official MMMU parsing; the vendor's "
    "script counts a multiple-choice answer only when response.strip() is the gold letter. "
    "S60 and L40s are compared with this run's vendor-strict Overall "
    "(mmmu.scoring.vendor_strict), the model card with the official one (docs/mmmu.md)"
)

FULL_VALIDATION = 900


@dataclass
class Outcome:
    report: ScoreReport  # the official scoring
    vendor: ScoreReport  # the vendor-strict scoring of the same responses
    section: MMMURecord
    lines: dict[str, dict[str, Any]]  # id -> predictions.jsonl record
    mismatches: list[str]  # ids whose recorded parse differs from the final scoring


class ParseMismatch(RuntimeError):
    """Answers parsed when they arrived differ from the final scoring of the same responses."""


def check_parses(outcome: Outcome) -> None:
    """Each answer's parse, written to predictions.jsonl as it arrived, equals the final
    scoring's: the same seeded draws, in the official order (kit.mmmu.answer)."""
    if outcome.mismatches:
        raise ParseMismatch(
            "parsed answers in predictions.jsonl differ from the final scoring: "
            f"{outcome.mismatches[:5]}"
        )


def deviations(params: MMMUParams, n_questions: int, errors: int) -> list[str]:
    """Why this run's numbers are not the vendor's run repeated: data, model and every
    setting of `VENDOR_SETTINGS` this run changed. The scoring difference, always there, is
    `SCORING_DEVIATION` (``score`` lists it first)."""
    out = []
    if params.dataset == FIXTURE:
        out.append("dataset is the synthetic fixture, not MMMU")
    if is_tiny_model(params.model):
        out.append("model is the tiny random-weight test model: its accuracy is noise")
    for key, expected in VENDOR_SETTINGS.items():
        value = getattr(params, key)
        if value != expected:
            note = VENDOR_SETTING_NOTES.get(key)
            out.append(f"{key} is {value!r} (vendor: {expected!r})" + (f"; {note}" if note else ""))
    if params.split == "validation" and n_questions != FULL_VALIDATION:
        out.append(f"{n_questions} questions, not the full {FULL_VALIDATION} of validation")
    if errors:
        out.append(f"{errors} question(s) could not be answered (counted wrong)")
    return out


def score(run: Any, plan: QuestionPlan, stats: AnswerStats) -> Outcome:
    """Score every question from predictions.jsonl both ways and record ``mmmu`` in
    results.json (shape: kit.records.mmmu.MMMURecord)."""
    params = plan.params
    loaded = plan.log.load()
    ids = {q.id for q in plan.questions}
    lines = {i: r for i, r in loaded.lines.items() if i in ids}
    responses = {
        i: (r.get("response") if r.get("error") is None else None) for i, r in lines.items()
    }
    report = score_predictions(plan.questions, responses)
    vendor = score_predictions_vendor(plan.questions, responses, report)
    mismatches = [
        r.id
        for r in report.records
        if "parsed" in lines.get(r.id, {})
        and (
            not same_parse(lines[r.id]["parsed"], r.parsed)
            or bool(lines[r.id].get("fallback")) != r.used_fallback
        )
    ]
    errors = [
        {"id": i, "error": lines[i].get("error") if i in lines else "no answer recorded"}
        for i in (r.id for r in report.records if r.error)
    ]
    parameters = {
        "model": params.model,
        "dataset": params.dataset,
        "dataset_path": str(plan.dataset_path),
        "split": params.split,
        "subjects": sorted({q.subject for q in plan.questions}, key=SUBJECTS.index),
        "limit": params.limit,
        "image_policy": params.image_policy,
        "num_crops": params.num_crops,
        "max_output_len": params.max_output_len,
        "temperature": params.temperature,
        "batch_size": params.batch_size,
        "chunk_size": params.chunk_size,
        "limit_images": params.limit_images,
    }
    dev = deviations(params, len(plan.questions), report.counts.errors or 0)
    section = mmmu_section(
        report,
        vendor,
        parameters,
        # The scoring difference is not counted: each reference is compared with the
        # Overall of its own scoring.
        comparable_with_references=not dev,
        deviations=[SCORING_DEVIATION, *dev],
        error_questions=errors,
        timing={**stats.to_dict(), "previously_answered": len(plan.previous)},
        predictions_file=str(plan.log.path),
        parse_mismatches=len(mismatches),
    )
    run.record("mmmu", section)
    return Outcome(
        report=report, vendor=vendor, section=section, lines=lines, mismatches=mismatches
    )
