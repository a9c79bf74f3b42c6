"""``python -m kit mmmu-score``: responses made anywhere, scored with the official rules and
the vendor's strict one. No engine: the synthetic fixture and hand-made response files."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest

from kit.mmmu import cli as mmmu_cli
from kit.mmmu import dataset as mmmu_dataset
from kit.mmmu.cli import score_main
from kit.mmmu.dataset import fixture_dataset, load_split
from kit.mmmu.questions import GROUPS, PARSED_LIMIT, SUBJECTS, Question
from kit.mmmu.scoring import score_predictions

from .conftest import run_kit


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    return fixture_dataset()


@pytest.fixture(scope="module")
def questions(fixture_dir) -> list[Question]:
    return load_split(fixture_dir, "validation")


def gold_response(q: Question) -> str:
    if q.is_multiple_choice:
        return f"({q.answer})"
    gold = q.answer[0] if isinstance(q.answer, list) else q.answer
    return f"The answer is {gold}"


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def score(tmp_path, lines, capsys, split="validation", dataset="fixture"):
    preds = write_jsonl(tmp_path / "preds.jsonl", lines)
    out = tmp_path / "score.json"
    args = argparse.Namespace(dataset=dataset, predictions=preds, split=split, out=out)
    code = score_main(args)
    captured = capsys.readouterr()
    document = json.loads(out.read_text()) if out.is_file() else None
    return code, captured, document


def test_fixture_covers_all_thirty_subjects(questions):
    assert [q.subject for q in questions] == [s for s in SUBJECTS for _ in range(8)]


def test_all_gold_answers_score_one(tmp_path, capsys, questions):
    lines = [{"id": q.id, "response": gold_response(q)} for q in questions]
    code, captured, doc = score(tmp_path, lines, capsys)
    assert code == 0, captured.err
    assert captured.err == ""
    assert "Overall 1.000 (240/240 correct)" in captured.out
    mmmu = doc["mmmu"]
    assert mmmu["overall"] == {"acc": 1.0, "n": 240, "correct": 240}
    assert list(mmmu["groups"]) == list(GROUPS)
    assert list(mmmu["subjects"]) == list(SUBJECTS)
    assert mmmu["fallbacks"] == 0 and mmmu["errors"] == 0
    assert mmmu["counts"] == {"questions": 240, "answered": 240, "errors": 0, "fallbacks": 0}
    assert [r["source"] for r in mmmu["references"]][:2] == ["S60", "L40s"]
    assert all(doc["problems"][k] == [] for k in doc["problems"])
    assert len(doc["records"]) == 240 and all(r["correct"] for r in doc["records"])


def test_same_verdicts_as_the_protocol_module(tmp_path, capsys, questions):
    """Noise responses: fallbacks drawn from ONE Random(42) in official order, whatever the
    order of the lines in the file."""
    rng = random.Random(7)
    noise = ["no idea", "B", "I think it is (C)", "3", "blue", "", "the answer is 1,234"]
    responses = {q.id: rng.choice(noise) for q in questions}
    lines = [{"id": i, "response": r} for i, r in responses.items()]
    rng.shuffle(lines)
    code, captured, doc = score(tmp_path, lines, capsys)
    assert code == 0, captured.err
    expected = score_predictions(questions, responses)
    assert doc["mmmu"]["overall"] == expected.overall.to_dict()
    assert doc["mmmu"]["fallbacks"] == expected.counts.fallbacks > 0
    assert [r["parsed"] for r in doc["records"]] == [
        json.loads(json.dumps(r.parsed)) for r in expected.records
    ]
    assert [r["used_fallback"] for r in doc["records"]] == [
        r.used_fallback for r in expected.records
    ]
    assert f"Overall {expected.overall.acc:.3f}" in captured.out


def test_problems_are_reported_not_skipped(tmp_path, capsys, questions):
    good = [{"id": q.id, "response": gold_response(q)} for q in questions[2:]]
    lines = [
        *good,
        "this is not json",
        '["a", "list"]',
        {"response": "A"},
        {"id": questions[2].id},
        {"id": questions[3].id + "x", "response": 5},
        {"id": "validation_Nope_1", "response": "A"},
        {"id": questions[2].id, "response": "(Z) a later duplicate"},
        {"id": questions[0].id, "response": None},
    ]
    code, captured, doc = score(tmp_path, lines, capsys)
    assert code == 1
    p = doc["problems"]
    n = len(good)
    assert [m["line"] for m in p["malformed_lines"]] == [n + 1, n + 2, n + 3, n + 4, n + 5]
    assert "not JSON" in p["malformed_lines"][0]["reason"]
    assert 'no "response"' in p["malformed_lines"][3]["reason"]
    assert p["unknown_ids"] == ["validation_Nope_1"]
    assert p["duplicate_ids"] == [questions[2].id]
    assert p["missing_ids"] == [questions[1].id]
    assert p["null_responses"] == [questions[0].id]
    err = captured.err
    for text in ("5 malformed line(s)", "validation_Nope_1", "duplicate", "no line", "null"):
        assert text in err, text
    # The first line of a duplicated id counts; missing and null answers are wrong, not dropped.
    mmmu = doc["mmmu"]
    assert mmmu["counts"]["questions"] == 240 and mmmu["errors"] == 2
    assert mmmu["overall"] == {"acc": round(238 / 240, 3), "n": 240, "correct": 238}
    record = {r["id"]: r for r in doc["records"]}
    assert record[questions[1].id]["missing"] and not record[questions[1].id]["correct"]
    assert record[questions[2].id]["correct"]


def test_partial_dataset_is_flagged(tmp_path, capsys):
    from kit.mmmu.fixture import write_fixture

    folder = write_fixture(tmp_path / "two", subjects=("Art", "Physics"), per_subject=3)
    qs = load_split(folder, "validation", ["Art", "Physics"])
    lines = [{"id": q.id, "response": gold_response(q)} for q in qs]
    code, captured, doc = score(tmp_path, lines, capsys, dataset=str(folder))
    assert code == 1
    assert doc["mmmu"]["overall"] == {"acc": 1.0, "n": 6, "correct": 6}
    assert len(doc["problems"]["dataset_missing_subjects"]) == 28
    assert "lacks 28 subject(s)" in captured.err


def test_cli_end_to_end_and_refusals(tmp_path, questions):
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": q.id, "response": gold_response(q)} for q in questions]
    )
    out = tmp_path / "nested" / "s.json"
    proc = run_kit(
        "mmmu-score", "--dataset", "fixture", "--predictions", str(preds), "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "Overall 1.000" in proc.stdout and json.loads(out.read_text())["mmmu"]["overall"]
    proc = run_kit(
        "mmmu-score", "--dataset", "fixture", "--predictions", str(preds), "--split", "test"
    )
    assert proc.returncode == 2 and "withheld" in proc.stderr
    proc = run_kit("mmmu-score", "--dataset", str(tmp_path / "no"), "--predictions", str(preds))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert "download" in proc.stderr
    proc = run_kit("mmmu-score", "--dataset", "fixture", "--predictions", str(tmp_path / "x"))
    assert proc.returncode == 2 and "--predictions" in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------------
# Both scorings, output size, strict JSON, unusable paths
# --------------------------------------------------------------------------------------------


def test_both_overalls_are_printed_and_written(tmp_path, capsys, questions):
    """Bracketed letters: right officially, wrong vendor-strict; open answers right both ways."""
    lines = [{"id": q.id, "response": gold_response(q)} for q in questions]
    code, captured, doc = score(tmp_path, lines, capsys)
    assert code == 0, captured.err
    n_open = sum(not q.is_multiple_choice for q in questions)
    assert 0 < n_open < len(questions)
    scoring = doc["mmmu"]["scoring"]
    assert (
        scoring["official"]["overall"]
        == doc["mmmu"]["overall"]
        == {
            "acc": 1.0,
            "n": 240,
            "correct": 240,
        }
    )
    strict = scoring["vendor_strict"]
    assert strict["overall"] == {"acc": round(n_open / 240, 3), "n": 240, "correct": n_open}
    assert list(strict["groups"]) == list(GROUPS) and list(strict["subjects"]) == list(SUBJECTS)
    assert strict["counts"]["fallbacks"] == 0 and "response.strip()" in strict["rule"]
    assert scoring["differing_questions"] == 240 - n_open
    assert f"Overall {n_open / 240:.3f} ({n_open}/240 correct), vendor-strict" in captured.out
    assert "Overall 1.000 (240/240 correct), official" in captured.out
    by_source = {r["source"]: r for r in doc["mmmu"]["references"]}
    assert by_source["S60"]["scoring"] == by_source["L40s"]["scoring"] == "vendor-strict"
    assert by_source["model card"]["scoring"] == "official"
    assert by_source["S60"]["this run - reference (points)"] == (
        f"{100 * (round(n_open / 240, 3) - 0.428):+.1f}"
    )
    assert by_source["model card"]["this run - reference (points)"] == "+57.0"
    records = {r["id"]: r for r in doc["records"]}
    for q in questions:
        assert records[q.id]["vendor_strict_correct"] is (not q.is_multiple_choice)
    # Bare letters: the two scorings agree.
    bare = [
        {"id": q.id, "response": q.answer if q.is_multiple_choice else gold_response(q)}
        for q in questions
    ]
    code, captured, doc = score(tmp_path, bare, capsys)
    assert doc["mmmu"]["scoring"]["vendor_strict"]["overall"]["acc"] == 1.0
    assert doc["mmmu"]["scoring"]["differing_questions"] == 0


def test_a_huge_response_is_stored_once(tmp_path, capsys, questions):
    open_q = next(q for q in questions if not q.is_multiple_choice)
    huge = "word " * 2_000_000  # 10 MB, no answer indicator: parses to the whole text
    lines = [{"id": q.id, "response": gold_response(q)} for q in questions if q is not open_q]
    lines.append({"id": open_q.id, "response": huge})
    code, captured, doc = score(tmp_path, lines, capsys)
    assert code == 0, captured.err
    size = (tmp_path / "score.json").stat().st_size
    assert len(huge) < size < len(huge) + 1_000_000  # once, plus the ~200 kB of the rest
    record = next(r for r in doc["records"] if r["id"] == open_q.id)
    assert record["response"] == huge
    assert record["parsed_truncated"] and len(record["parsed"][0]) == PARSED_LIMIT + 1


def test_output_is_strict_json(tmp_path, capsys, questions):
    weird = ["nan", "inf", "-1e999", "Infinity", "NaN"]
    lines = [
        {"id": q.id, "response": weird[i % len(weird)]}
        for i, q in enumerate(q for q in questions if not q.is_multiple_choice)
    ]
    score(tmp_path, lines, capsys)

    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant} written")

    doc = json.loads((tmp_path / "score.json").read_text(), parse_constant=refuse)
    parsed = [x for r in doc["records"] if r["parsed"] for x in r["parsed"]]
    assert {"NaN", "Infinity", "-Infinity"} <= set(parsed)


def _main(tmp_path, capsys, predictions, dataset="fixture", out=None):
    args = argparse.Namespace(dataset=dataset, predictions=predictions, split="validation", out=out)
    code = score_main(args)
    return code, capsys.readouterr()


def _one_paragraph(err: str) -> bool:
    return err.startswith("error: ") and err.strip().count("\n") == 0 and "Traceback" not in err


def test_unwritable_out_is_one_paragraph_and_exit_2_a_full_one_exit_1(tmp_path, questions):
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": q.id, "response": gold_response(q)} for q in questions]
    )
    proc = run_kit(
        "mmmu-score", "--dataset", "fixture", "--predictions", str(preds), "--out", "/proc/x/s.json"
    )
    assert proc.returncode == 2 and _one_paragraph(proc.stderr), proc.stderr
    assert "--out '/proc/x/s.json'" in proc.stderr and "e.g. --out" in proc.stderr
    assert proc.stdout == ""  # refused before scoring
    # Writing fails after scoring (a full disk): not a bad input, so exit 1, naming the file.
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to simulate a full disk")
    proc = run_kit(
        "mmmu-score", "--dataset", "fixture", "--predictions", str(preds), "--out", "/dev/full"
    )
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (
        "error: could not write /dev/full (No space left on device): free space on that disk, "
        "or write elsewhere, then run the command again."
    ), proc.stderr


def test_out_that_is_a_folder(tmp_path, capsys, questions):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": questions[0].id, "response": "A"}])
    code, captured = _main(tmp_path, capsys, preds, out=tmp_path)
    assert code == 2 and _one_paragraph(captured.err) and "is a folder" in captured.err


def test_unreadable_predictions_is_one_paragraph_and_exit_2(tmp_path, capsys, monkeypatch):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "validation_Art_1", "response": "A"}])

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mmmu_cli, "read_predictions", denied)
    code, captured = _main(tmp_path, capsys, preds)
    assert code == 2 and _one_paragraph(captured.err), captured.err
    assert f"--predictions {str(preds)!r} cannot be read" in captured.err
    assert "Permission denied" in captured.err and "readable" in captured.err
    code, captured = _main(tmp_path, capsys, tmp_path)  # a folder, not a file
    assert code == 2 and _one_paragraph(captured.err) and "is a folder" in captured.err


def test_unreadable_dataset_is_one_paragraph_and_exit_2(tmp_path, capsys, fixture_dir, monkeypatch):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "validation_Art_1", "response": "A"}])

    def denied(root, subject, split):
        raise PermissionError(13, "Permission denied", str(root / subject))

    monkeypatch.setattr(mmmu_dataset, "split_files", denied)
    code, captured = _main(tmp_path, capsys, preds, dataset=str(fixture_dir))
    assert code == 2 and _one_paragraph(captured.err), captured.err
    assert f"--dataset {str(fixture_dir)!r} cannot be read" in captured.err
    assert "Permission denied" in captured.err and "download" in captured.err


def test_a_whole_json_document_is_named_as_such_with_the_conversion(tmp_path, capsys, questions):
    """A JSON array (or an object of id -> answer, the official MMMU script's form) is one
    paragraph naming what it is and the jq line that converts it, not N malformed lines."""
    answers = [{"id": q.id, "response": gold_response(q)} for q in questions[:3]]
    array = tmp_path / "array.json"
    array.write_text(json.dumps(answers, indent=2))
    code, captured = _main(tmp_path, capsys, array)
    assert code == 2 and _one_paragraph(captured.err), captured.err
    assert f"--predictions {str(array)!r} is one JSON array, not JSON Lines" in captured.err
    assert f"jq -c '.[]' {array} > predictions.jsonl" in captured.err
    mapping = tmp_path / "answers.json"
    mapping.write_text(json.dumps({a["id"]: a["response"] for a in answers}, indent=2))
    code, captured = _main(tmp_path, capsys, mapping)
    assert code == 2 and _one_paragraph(captured.err), captured.err
    assert "is one JSON object of id -> answer, not JSON Lines" in captured.err
    assert "to_entries[] | {id: .key, response: .value}" in captured.err
    one_line = write_jsonl(tmp_path / "one.jsonl", answers[:1])  # one line: still JSON Lines
    code, captured = _main(tmp_path, capsys, one_line)
    assert "error:" not in captured.err


def test_a_line_that_is_not_utf8_is_malformed_not_guessed(tmp_path, capsys, questions):
    """A byte that is not UTF-8 is never replaced by U+FFFD and scored: the line is listed
    as malformed with the byte and where it is, and its question counts as missing."""
    good = [json.dumps({"id": q.id, "response": gold_response(q)}).encode() for q in questions]
    bad = b'{"id": "' + questions[0].id.encode() + b'", "response": "(A) caf\xe9"}'
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(b"\n".join([bad, *good[1:]]) + b"\n")
    code, captured = _main(tmp_path, capsys, preds, out=tmp_path / "s.json")
    document = json.loads((tmp_path / "s.json").read_text())
    (malformed,) = document["problems"]["malformed_lines"]
    at = bad.index(b"\xe9") + 1
    assert malformed == {"line": 1, "reason": f"not UTF-8 (byte 0xe9 at byte {at})"}
    assert document["problems"]["missing_ids"] == [questions[0].id]
    assert "1 malformed line(s)" in captured.err and code == 1
