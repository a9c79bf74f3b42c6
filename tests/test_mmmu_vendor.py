"""The vendor-strict MMMU scoring beside the official one (docs/mmmu.md), on hand-made
responses whose verdicts are worked out by hand, plus the strict-JSON form of parses.
No engine, no dataset files."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

from kit.mmmu.parsing import vendor_multi_choice
from kit.mmmu.questions import (
    MULTIPLE_CHOICE,
    OFFICIAL,
    OPEN,
    PARSED_LIMIT,
    VENDOR_STRICT,
    Gold,
    Question,
)
from kit.mmmu.scoring import (
    QuestionResult,
    differing_verdicts,
    recorded_parsed,
    score_predictions,
    score_predictions_vendor,
    score_question,
    score_question_vendor,
)

OPTIONS = ["Paris", "London", "Berlin", "Madrid"]


def mc_question(qid: str = "validation_Art_1", answer: Gold = "B", subject: str = "Art"):
    return Question(
        id=qid,
        subject=subject,
        question="Which city is shown in <image 1>?",
        options=list(OPTIONS),
        answer=answer,
        question_type=MULTIPLE_CHOICE,
        images={1: {"bytes": b"", "path": "1.png"}},
    )


def open_question(qid: str = "validation_Physics_1", answer: Gold = "3"):
    return Question(
        id=qid,
        subject="Physics",
        question="How many forces act on the block in <image 1>?",
        options=[],
        answer=answer,
        question_type=OPEN,
        images={1: {"bytes": b"", "path": "1.png"}},
    )


def official(question: Question, response: str | None, seed: int = 0) -> QuestionResult:
    return score_question(question, response, random.Random(seed))


# (response, official verdict, vendor-strict verdict) for a gold of "B"; None: the official
# verdict is the random fallback's (checked separately below).
MULTIPLE_CHOICE_CASES = [
    ("B", True, True),
    (" B ", True, True),
    ("B\n", None, True),  # officially " B\n " holds neither "(B)" nor " B ": random letter
    ("\nB", None, True),
    ("(B)", True, False),
    ("B.", True, False),  # the official parser strips edge punctuation first
    ("The answer is B", True, False),
    ("(B) London", True, False),
    ("I am quite sure that it is London", True, False),  # > 5 words: option text
    ("b", None, False),  # lower case is no letter for either
    ("London", None, False),  # 1 word: no option-text match officially
    ("A", False, False),
    ("(A)", False, False),
    ("", None, False),
]


@pytest.mark.parametrize("response,official_ok,vendor_ok", MULTIPLE_CHOICE_CASES)
def test_multiple_choice_verdicts_differ_by_rule(response, official_ok, vendor_ok):
    q = mc_question()
    result = score_question_vendor(q, response)
    assert result.correct is vendor_ok
    assert result.parsed == response.strip() and not result.used_fallback and not result.error
    verdict = official(q, response)
    if official_ok is None:
        assert verdict.used_fallback  # a random letter: right only by chance
    else:
        assert verdict.correct is official_ok and not verdict.used_fallback


def test_vendor_rule_is_exact_equality_after_strip():
    assert vendor_multi_choice("\t B \n") == "B"
    assert vendor_multi_choice("B.") == "B."
    q = mc_question(answer=["A", "B"])  # a list gold: membership, as officially
    assert score_question_vendor(q, "B").correct
    assert not score_question_vendor(q, "A, B").correct


def test_official_random_fallback_can_be_right_where_vendor_strict_never_is():
    q = mc_question()
    picks = {official(q, "b", seed).parsed for seed in range(40)}
    assert "B" in picks and len(picks) > 1  # the fallback draws among A-D
    assert not any(score_question_vendor(q, "b").correct for _ in range(3))


@pytest.mark.parametrize(
    "response",
    ["3", " 3 ", "3.", "The answer is 3.", "three", "so the answer is 3.00\nfinal: 4", "nan", ""],
)
def test_open_questions_are_judged_as_officially(response):
    q = open_question()
    vendor = score_question_vendor(q, response)
    expected = official(q, response)
    assert vendor.to_dict() == expected.to_dict()  # to_dict: "nan" parses to "NaN", comparable


def test_missing_response_is_an_error_under_both():
    q = mc_question()
    result = score_question_vendor(q, None)
    assert result.error and not result.correct and result.parsed is None


def _two_subjects() -> tuple[list[Question], dict[str, str | None]]:
    questions = [
        mc_question("validation_Art_1", "A"),
        mc_question("validation_Art_2", "B"),
        open_question("validation_Physics_1", "3"),
        mc_question("validation_Physics_2", "C", subject="Physics"),
    ]
    responses = {
        "validation_Art_1": "A",  # right both ways
        "validation_Art_2": "(B)",  # right officially only
        "validation_Physics_1": "3",  # right both ways
        "validation_Physics_2": "C.",  # right officially only
    }
    return questions, responses


def test_vendor_summary_has_the_official_structure_and_hand_computed_values():
    questions, responses = _two_subjects()
    off = score_predictions(questions, responses)
    strict = score_predictions_vendor(questions, responses)
    assert (off.scoring, strict.scoring) == (OFFICIAL, VENDOR_STRICT)
    assert off.overall.to_dict() == {"acc": 1.0, "n": 4, "correct": 4}
    assert strict.overall.to_dict() == {"acc": 0.5, "n": 4, "correct": 2}
    assert list(strict.subjects) == list(off.subjects) == ["Art", "Physics"]
    assert list(strict.groups) == list(off.groups) == ["Art and Design", "Science"]
    assert strict.subjects["Art"].to_dict() == {"acc": 0.5, "n": 2, "correct": 1}
    assert strict.groups["Science"].to_dict() == {"acc": 0.5, "n": 2, "correct": 1}
    assert strict.counts.fallbacks == 0 and strict.seed is None
    assert strict.predicted_letters == {"A": 1}  # only exact letters count as letters
    assert differing_verdicts(off, strict) == ["validation_Art_2", "validation_Physics_2"]
    assert set(strict.to_dict()) == set(off.to_dict())


def test_reusing_the_official_open_verdicts_changes_nothing():
    questions, responses = _two_subjects()
    responses["validation_Physics_1"] = "so it is 3\nthe answer is 4"
    off = score_predictions(questions, responses)
    alone = score_predictions_vendor(questions, responses)
    reused = score_predictions_vendor(questions, responses, off)
    assert alone.records == reused.records
    assert alone.to_dict() == reused.to_dict()


def test_non_finite_parses_are_strict_json():
    q = open_question(answer="5")
    for response, text in (("nan", "NaN"), ("inf", "Infinity"), ("-1e999", "-Infinity")):
        result = official(q, response)
        record = result.to_dict()
        assert text in record["parsed"]
        json.dumps(record, allow_nan=False)  # raises on NaN or Infinity
        parsed, cut = recorded_parsed(result.parsed)
        assert text in parsed and not cut


def test_long_parses_are_cut_once_recorded():
    q = open_question(answer="5")
    response = "no indicator here " * 100
    result = official(q, response)
    assert result.parsed == [response.strip().lower()]
    parsed, cut = recorded_parsed(result.parsed)
    assert cut and len(parsed[0]) == PARSED_LIMIT + 1 and parsed[0].endswith("…")
    assert recorded_parsed(["short", 2.5])[0] == ["short", 2.5]
    assert recorded_parsed("B") == ("B", False)


def test_each_reference_is_compared_with_the_scoring_it_used():
    from kit.mmmu.section import reference_rows, reference_scoring
    from kit.records.references import load_references

    scorings = {r.device: reference_scoring(r) for r in load_references().mmmu}
    assert scorings == {"S60": VENDOR_STRICT, "L40s": VENDOR_STRICT, "model card": OFFICIAL}
    explicit = SimpleNamespace(source="vendor doc", label=None, scoring=OFFICIAL)
    assert reference_scoring(explicit) == OFFICIAL
    rows = {r["source"]: r for r in reference_rows(official=0.5, vendor_strict=0.4)}
    assert rows["S60"]["this run - reference (points)"] == "-2.8"  # 0.400 - 0.428
    assert rows["model card"]["this run - reference (points)"] == "+7.0"  # 0.500 - 0.430
    assert (
        rows["L40s"]["scoring"] == "vendor-strict" and rows["model card"]["scoring"] == "official"
    )
    assert all(r["this run - reference (points)"] is None for r in reference_rows(None, None))
