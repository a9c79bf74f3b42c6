"""The MMMU protocol's scoring as pure functions: verdicts per question, both ways, and aggregates.

Part of the MMMU protocol (MMMU-Benchmark/MMMU, eval/*_utils.py), deterministic and
engine-free. Two scorings of the same responses (docs/mmmu.md compares them):

- ``official`` (`score_predictions`): a multiple-choice letter is read from "(X)", " X " or an
  option's text, else drawn at random; open answers by the official open parsing.
- ``vendor_strict`` (`score_predictions_vendor`): as the vendor's accuracy script (Enflame
  vllm-gcu, benchmarks/benchmark_vision_language.py --acc) scores Phi-3.5-vision: a
  multiple-choice answer counts only when ``response.strip()`` equals the gold letter; open
  answers by the official open parsing. No random draw. Both produce a `ScoreReport`
  aggregated the same way, so only the per-question verdicts differ.

Faithfulness notes (why the code looks the way it does):
- Questions are scored in official order (kit.mmmu.questions.official_order) with ONE
  ``random.Random(42)``: the random fallback of multiple-choice parsing depends on that order.
- Group and overall accuracies are computed as the official code does, sum(acc * n) / sum(n)
  over subjects in float arithmetic, then rounded to 3 decimals.
- A missing response counts as wrong and draws nothing, so the Overall stays over the whole
  question set; non-finite parses are recorded as strings, so files stay strict JSON.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeGuard

from kit.mmmu.parsing import (
    eval_multi_choice,
    eval_open,
    parse_multi_choice,
    parse_open,
    vendor_multi_choice,
)
from kit.mmmu.questions import (
    _SUBJECT_RANK,
    FALLBACK_SEED,
    GROUPS,
    MULTIPLE_CHOICE,
    OFFICIAL,
    PARSED_LIMIT,
    SUBJECTS,
    VENDOR_STRICT,
    Gold,
    Question,
    index_to_answer,
    official_order,
)
from kit.records.mmmu import Accuracy, Counts


@dataclass
class QuestionResult:
    """The verdict on one question, as recorded for the report."""

    id: str
    subject: str
    question_type: str
    topic_difficulty: str
    gold: Gold
    parsed: str | list[str | float] | None
    correct: bool
    used_fallback: bool = False
    error: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-able: a parsed "nan" or "inf" becomes a string (see `json_safe`)."""
        out = asdict(self)
        out["parsed"] = json_safe(self.parsed)
        return out


def json_safe(value: Any) -> Any:
    """Non-finite floats (an open answer "nan" or "1e999" parses to one) as the strings "NaN",
    "Infinity", "-Infinity", so files stay strict JSON; text parses are lower-case, so these
    cannot be confused with one."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value


def recorded_parsed(parsed: Any, limit: int = PARSED_LIMIT) -> tuple[Any, bool]:
    """A parse as files record it: strict JSON, strings cut to `limit` characters (an open
    answer without an answer indicator parses to the whole response, which the record
    already holds). Returns (value, whether anything was cut)."""
    cut = False

    def clip(value: Any) -> Any:
        nonlocal cut
        if isinstance(value, str) and len(value) > limit:
            cut = True
            return value[:limit] + "…"
        if isinstance(value, list):
            return [clip(v) for v in value]
        return value

    return clip(json_safe(parsed)), cut


def _result_base(question: Question) -> dict[str, Any]:
    return dict(
        id=question.id,
        subject=question.subject,
        question_type=question.question_type,
        topic_difficulty=question.topic_difficulty,
        gold=question.answer,
    )


def score_question(question: Question, response: str | None, rng: random.Random) -> QuestionResult:
    """Parse and judge one response. A missing response (None) is an error: wrong, no parse,
    and no draw from rng."""
    base = _result_base(question)
    if response is None:
        return QuestionResult(**base, parsed=None, correct=False, error=True)
    if question.is_multiple_choice:
        index2ans = index_to_answer(question.options)
        letter, fallback = parse_multi_choice(response, list(index2ans), index2ans, rng)
        ok = eval_multi_choice(question.answer, letter)
        return QuestionResult(**base, parsed=letter, correct=ok, used_fallback=fallback)
    preds = parse_open(response)
    return QuestionResult(**base, parsed=preds, correct=eval_open(question.answer, preds))


def score_question_vendor(question: Question, response: str | None) -> QuestionResult:
    """Judge one response the vendor's way: a multiple-choice answer is right only when
    ``response.strip()`` is the gold letter ("(B)", "B.", "b" are wrong); open answers are
    parsed as officially. No random draw; a missing response is an error, as officially."""
    base = _result_base(question)
    if response is None:
        return QuestionResult(**base, parsed=None, correct=False, error=True)
    if question.is_multiple_choice:
        answer = vendor_multi_choice(response)
        return QuestionResult(
            **base, parsed=answer, correct=eval_multi_choice(question.answer, answer)
        )
    preds = parse_open(response.strip())
    return QuestionResult(**base, parsed=preds, correct=eval_open(question.answer, preds))


@dataclass
class ScoreReport:
    """Per-question verdicts and the official aggregates."""

    records: list[QuestionResult]
    overall: Accuracy
    groups: dict[str, Accuracy]
    subjects: dict[str, Accuracy]
    by_question_type: dict[str, Accuracy]
    by_difficulty: dict[str, Accuracy]
    counts: Counts
    predicted_letters: dict[str, int]
    gold_letters: dict[str, int]
    seed: int | None = FALLBACK_SEED  # None: the scoring draws nothing (vendor-strict)
    scoring: str = OFFICIAL

    def to_dict(self, include_records: bool = False) -> dict[str, Any]:
        """JSON-able summary; the per-question records only on request (they are long)."""
        out: dict[str, Any] = {
            "overall": self.overall.to_dict(),
            "groups": {k: v.to_dict() for k, v in self.groups.items()},
            "subjects": {k: v.to_dict() for k, v in self.subjects.items()},
            "by_question_type": {k: v.to_dict() for k, v in self.by_question_type.items()},
            "by_difficulty": {k: v.to_dict() for k, v in self.by_difficulty.items()},
            "counts": self.counts.to_dict(),
            "letters": {"predicted": self.predicted_letters, "gold": self.gold_letters},
            "seed": self.seed,
        }
        if include_records:
            out["records"] = [r.to_dict() for r in self.records]
        return out


def micro_average(parts: Iterable[tuple[float, int]]) -> float:
    """sum(acc * n) / sum(n) over (acc, n) pairs, 0 when empty (official
    calculate_ins_level_acc, unrounded)."""
    total = 0.0
    count = 0
    for acc, n in parts:
        total += acc * n
        count += n
    return total / count if count else 0.0


def _tally(records: Iterable[QuestionResult], key: Any) -> dict[str, tuple[int, int]]:
    """(correct, n) per value of key(record), keys in first-seen order."""
    tally: dict[str, tuple[int, int]] = {}
    for r in records:
        correct, n = tally.get(key(r), (0, 0))
        tally[key(r)] = (correct + int(r.correct), n + 1)
    return tally


def _accuracy_by(records: Iterable[QuestionResult], key: Any) -> dict[str, Accuracy]:
    """Plain accuracy per value of key(record), keys in first-seen order."""
    return {k: Accuracy(round(c / n, 3), n, c) for k, (c, n) in _tally(records, key).items()}


def aggregate(
    records: Sequence[QuestionResult], seed: int | None = FALLBACK_SEED, scoring: str = OFFICIAL
) -> ScoreReport:
    """Aggregate verdicts: subjects, groups and Overall the official way (micro-averages of
    unrounded subject accuracies, rounded to 3 decimals), whichever scoring made them. Groups
    without data are left out."""
    raw: dict[str, tuple[float, int, int]] = {}
    for subject, (correct, n) in _tally(records, lambda r: r.subject).items():
        raw[subject] = (correct / n, n, correct)
    ordered = sorted(raw, key=lambda s: (_SUBJECT_RANK.get(s, len(SUBJECTS)), s))

    subjects = {s: Accuracy(round(raw[s][0], 3), raw[s][1], raw[s][2]) for s in ordered}
    groups: dict[str, Accuracy] = {}
    for group, members in GROUPS.items():
        present = [s for s in members if s in raw]
        if present:
            group_acc = micro_average((raw[s][0], raw[s][1]) for s in present)
            groups[group] = Accuracy(
                round(group_acc, 3),
                sum(raw[s][1] for s in present),
                sum(raw[s][2] for s in present),
            )
    overall_acc = micro_average((raw[s][0], raw[s][1]) for s in ordered)
    overall = Accuracy(
        round(overall_acc, 3), sum(raw[s][1] for s in ordered), sum(raw[s][2] for s in ordered)
    )

    mc = [r for r in records if r.question_type == MULTIPLE_CHOICE]
    predicted = Counter(r.parsed for r in mc if is_letter(r.parsed))
    gold = Counter(g for r in mc for g in (r.gold if isinstance(r.gold, list) else [r.gold]))
    return ScoreReport(
        records=list(records),
        overall=overall,
        groups=groups,
        subjects=subjects,
        by_question_type=_accuracy_by(records, lambda r: r.question_type),
        by_difficulty=_accuracy_by(records, lambda r: r.topic_difficulty or "unknown"),
        counts=Counts(
            questions=len(records),
            answered=sum(not r.error for r in records),
            errors=sum(r.error for r in records),
            fallbacks=sum(r.used_fallback for r in records),
        ),
        predicted_letters=dict(sorted(predicted.items())),
        gold_letters=dict(sorted(gold.items())),
        seed=seed,
        scoring=scoring,
    )


def is_letter(value: Any) -> TypeGuard[str]:
    """An option letter A-Z (a vendor-strict parse is any stripped response; only exact
    letters count as predicted letters)."""
    return isinstance(value, str) and len(value) == 1 and "A" <= value <= "Z"


def score_predictions(
    questions: Iterable[Question],
    responses: Mapping[str, str | None],
    seed: int = FALLBACK_SEED,
) -> ScoreReport:
    """Score responses by question id with ONE random.Random(seed) consumed in official order,
    so fallback picks match the official run. Missing ids count as errors (wrong)."""
    rng = random.Random(seed)
    records = [score_question(q, responses.get(q.id), rng) for q in official_order(questions)]
    return aggregate(records, seed=seed)


def score_predictions_vendor(
    questions: Iterable[Question],
    responses: Mapping[str, str | None],
    official: ScoreReport | None = None,
) -> ScoreReport:
    """The vendor-strict scoring of the same responses, aggregated like the official one.
    Missing ids count as errors (wrong); the vendor's run answers every question.

    Open questions are parsed exactly as officially (the official parser strips the response
    first), so given `official`, the official report of the SAME responses, their verdicts
    are taken from it instead of parsing long responses twice."""
    known = {r.id: r for r in official.records} if official is not None else {}
    records = [
        known[q.id]
        if q.id in known and not q.is_multiple_choice
        else score_question_vendor(q, responses.get(q.id))
        for q in official_order(questions)
    ]
    return aggregate(records, seed=None, scoring=VENDOR_STRICT)


def differing_verdicts(official: ScoreReport, vendor: ScoreReport) -> list[str]:
    """Ids of the questions the two scorings judge differently, in official order."""
    strict = {r.id: r.correct for r in vendor.records}
    return [r.id for r in official.records if r.id in strict and strict[r.id] != r.correct]
