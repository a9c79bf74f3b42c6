"""The MMMU notebook: run logic without an engine, then end to end on the tiny model.

Engine runs (slow): one full run on a fixture copy with an undecodable image, and one
resume of a hand-made interrupted run folder (seeded answers plus a torn last line) with
image_policy "all"; a third resume of the finished run starts no engine at all.
"""

from __future__ import annotations

import ast
import html
import io
import json
import math
import random
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from kit.core.params import ParameterError, build
from kit.mmmu.answer import LiveScorer, build_request, iter_chunks, question_progress, same_parse
from kit.mmmu.cli import score
from kit.mmmu.dataset import DatasetError, ImageReader, fixture_dataset, load_split
from kit.mmmu.outcome import VENDOR_SETTINGS, deviations
from kit.mmmu.params import MMMUParams
from kit.mmmu.predictions import PredictionLog, check_same_parameters, parse_predictions
from kit.mmmu.questions import (
    FALLBACK_SEED,
    GROUPS,
    MULTIPLE_CHOICE,
    official_prompt,
    referenced_images,
    select_images,
)
from kit.mmmu.scoring import (
    QuestionResult,
    aggregate,
    json_safe,
    recorded_parsed,
    score_predictions,
    score_predictions_vendor,
    score_question,
    score_question_vendor,
)
from kit.models.phi3v.family import PHI3V

from .chatserver import ChatServer
from .conftest import BROKEN_ID, MMMU_SUBJECTS, REPO, kit_in_process

RUN1_SUBJECTS = MMMU_SUBJECTS
RUN2_SUBJECTS = ["Art", "History", "Physics"]
SEEDED = 4


@pytest.fixture(scope="module")
def dataset(mmmu_dataset) -> Path:
    return mmmu_dataset


def _params(**values) -> MMMUParams:
    return build(MMMUParams, values)


# --------------------------------------------------------------------------------------------
# Without an engine
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,expected",
    [
        ({"split": "test"}, "withheld"),
        ({"split": "train"}, "Unknown MMMU split"),
        ({"subjects": "Maths,Art"}, "did you mean 'Math'"),
        ({"image_policy": "every"}, "'first'"),
        ({"limit": 0}, "'limit'"),
        ({"batch_size": -1}, "'batch_size'"),
        ({"max_output_len": 0}, "'max_output_len'"),
        ({"dataset": " "}, "'dataset' is empty"),
    ],
)
def test_parameter_checks(values, expected):
    with pytest.raises(ParameterError, match=re.escape(expected)):
        _params(**values)


def test_defaults_and_subjects():
    p = _params()
    assert (p.dataset, p.split, p.image_policy, p.max_output_len, p.batch_size) == (
        "fixture",
        "validation",
        "first",
        10,
        0,
    )
    assert p.subject_names() is None and _params(subjects="all").subject_names() is None
    assert _params(subjects="Physics,Art").subject_names() == ["Physics", "Art"]
    assert p.effective_batch == p.chunk_size and _params(batch_size=1).effective_batch == 1
    assert issubclass(DatasetError, ParameterError)


def _preflight_dataset(tmp_path: Path, kind: str) -> str:
    if kind == "missing-folder":
        return str(tmp_path / "nowhere")
    if kind == "missing-subjects":
        from kit.mmmu.fixture import write_fixture

        return str(write_fixture(tmp_path / "partial", subjects=("Art",), per_subject=2))
    folder = tmp_path / "cols" / "Art"
    folder.mkdir(parents=True)
    pq.write_table(
        pq.read_table(fixture_dataset() / "Art" / "validation-00000-of-00001.parquet").drop(
            ["options"]
        ),
        folder / "validation-00000-of-00001.parquet",
    )
    return str(tmp_path / "cols")


@pytest.mark.parametrize(
    "kind,values,expected",
    [
        ("missing-folder", {}, "does not exist"),
        ("missing-subjects", {}, "lacks the 'validation' split of 29 subject(s): Accounting"),
        ("wrong-columns", {"subjects": "Art"}, "column(s) options missing"),
        ("not-a-folder-or-hub-id", {}, "does not exist"),
    ],
)
def test_bad_dataset_fails_preflight(tmp_path, kind, values, expected):
    from kit.runs.parameters import preflight

    if kind == "not-a-folder-or-hub-id":
        dataset = str(tmp_path / "a" / "b" / "c")
    else:
        dataset = _preflight_dataset(tmp_path, kind)
    with pytest.raises(DatasetError) as err:
        preflight(MMMUParams, {"dataset": dataset, **values})
    assert expected in str(err.value)
    if kind != "wrong-columns":
        assert "python -m kit run download" in str(err.value)


def test_rejected_before_any_run_folder_or_engine(outputs, tmp_path):
    for args, expected in (
        (["-p", "dataset", str(tmp_path / "nowhere")], "does not exist"),
        (["-p", "split", "test"], "withheld"),
    ):
        proc = kit_in_process(
            "run",
            "mmmu",
            "-f",
            "params/smoke-mmmu.yaml",
            *args,
            env={"KIT_OUTPUTS_DIR": str(outputs)},
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr
        assert not outputs.exists() or not any(outputs.iterdir())


def test_lazy_requests_by_image_policy(dataset):
    qs = load_split(dataset, "validation", ["Art", "Physics"], lazy_images=True)
    assert all(ref["bytes"] is None for q in qs for ref in q.images.values())
    multi = next(q for q in qs if len(referenced_images(q)) >= 3)
    reader = ImageReader()
    first = build_request(multi, _params(image_policy="first", limit_images=7), reader, PHI3V)
    every = build_request(multi, _params(image_policy="all", limit_images=7), reader, PHI3V)
    assert first.images == [1] and len(first.request.images) == 1
    assert first.prompt.startswith("<|user|>\n<|image_1|>\n" + multi.question)
    n = len(referenced_images(multi))
    assert every.images == referenced_images(multi)
    tags = "".join(f"<|image_{k}|>\n" for k in range(1, n + 1))
    assert every.prompt == f"<|user|>\n{tags}{official_prompt(multi)}<|end|>\n<|assistant|>\n"
    assert len(every.request.images) == n
    assert "<image 2>" in every.prompt  # markers stay literally in the text
    refused = build_request(multi, _params(image_policy="all", limit_images=2), reader, PHI3V)
    assert refused.request is None and f"needs {n} images" in refused.error
    broken = next(q for q in qs if q.id == BROKEN_ID)
    failed = build_request(broken, _params(), reader, PHI3V)
    assert failed.request is None and failed.error.startswith("image failed to decode")


def test_prediction_log_drops_a_torn_tail_and_keeps_first_duplicates(tmp_path):
    path = tmp_path / "predictions.jsonl"
    good = [{"id": "a", "response": "x"}, {"id": "b", "response": "y"}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + "not json\n" + json.dumps({"id": "a", "response": "z"}) + '\n{"id": "c"')
    loaded = PredictionLog(path).load()
    assert list(loaded.lines) == ["a", "b"] and loaded.lines["a"]["response"] == "x"
    assert loaded.duplicates == ["a"] and loaded.malformed == [3]
    assert loaded.torn_tail == '{"id": "c"'
    assert path.read_text().endswith("\n") and '{"id": "c"' not in path.read_text()
    assert (tmp_path / "predictions.jsonl.torn").read_text() == '{"id": "c"\n'
    PredictionLog(path).append([{"id": "c", "response": "w"}])
    assert PredictionLog(path).load().lines["c"]["response"] == "w"


def test_one_reader_for_the_log_and_the_scorer(tmp_path):
    """Lines end at "\\n" only: responses keep U+2028, NEL and other separators; malformed
    lines say why; a final line without "\\n" is a line (the log alone treats it as torn)."""
    records = [
        {"id": "a", "response": "x\u2028y\x85z\u2029"},
        {"id": "b", "response": None},
        {"id": "c", "response": 3},
        {"id": "", "response": "x"},
        {"id": "d"},
    ]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    loaded = parse_predictions(text + "[1]\n\nnot json\n" + '{"id": "e", "response": "w"}')
    assert loaded.responses == {"a": "x\u2028y\x85z\u2029", "b": None, "e": "w"}
    assert loaded.line_count == 9 and loaded.malformed == [3, 4, 5, 6, 8]
    reasons = [m["reason"] for m in loaded.malformed_lines()]
    assert reasons[0] == 'c: "response" is int, not a string or null'
    assert reasons[1:4] == ['no string "id"', 'd: no "response"', "not a JSON object"]
    assert reasons[4].startswith("not JSON")
    path = tmp_path / "predictions.jsonl"
    PredictionLog(path).append(records[:2])
    assert PredictionLog(path).load().responses == {"a": records[0]["response"], "b": None}


def test_log_lines_are_strict_json_and_parses_compare_as_recorded(tmp_path):
    path = tmp_path / "predictions.jsonl"
    PredictionLog(path).append([{"id": "a", "response": "nan", "parsed": json_safe([math.nan])}])
    with pytest.raises(ValueError, match="not JSON compliant"):  # NaN is no strict JSON
        PredictionLog(path).append([{"id": "b", "response": "nan", "parsed": [math.nan]}])
    line = PredictionLog(path).load().lines["a"]
    assert line["parsed"] == ["NaN"] and same_parse(line["parsed"], [math.nan])
    long = ["x" * 500]
    assert same_parse(recorded_parsed(long)[0], long) and same_parse(long, long)
    assert not same_parse(["y"], long)


def test_deviations_list_every_vendor_setting_a_run_changes():
    vendor_like = _params(**VENDOR_SETTINGS, model="some/model", dataset="/data/MMMU")
    assert deviations(vendor_like, 900, 0) == []
    dev = deviations(_params(model="some/model", dataset="/data/MMMU"), 900, 0)
    assert [d.split(" ")[0] for d in dev] == ["batch_size", "dtype"]  # the notebook defaults
    assert "batch_size is 0 (vendor: 1)" in dev[0] and "chunk_size" in dev[0]
    changed = _params(
        model="some/model",
        dataset="/data/MMMU",
        **{**VENDOR_SETTINGS, "image_policy": "all", "max_output_len": 32, "scheduling": "vllm"},
    )
    assert [d.split(" ")[0] for d in deviations(changed, 12, 2)] == [
        "image_policy",
        "max_output_len",
        "scheduling",
        "12",
        "2",
    ]


def test_live_scoring_with_a_resumed_prefix_equals_final_scoring(dataset):
    qs = load_split(dataset, "validation", RUN1_SUBJECTS, lazy_images=True)
    rng = random.Random(3)
    responses = {q.id: rng.choice(["no idea", "(B)", "A", "3", "red", None]) for q in qs}
    expected = score_predictions(qs, responses)
    scorer = LiveScorer(qs)
    for q in qs[:17]:  # earlier attempt
        scorer.add(q.id, responses[q.id])
    got = scorer.advance()
    for chunk in iter_chunks(qs[17:], 5):
        for q in chunk:
            scorer.add(q.id, responses[q.id])
        new = scorer.advance()
        assert [r.id for r in new] == [q.id for q in chunk]
        got += new
    assert got == expected.records
    assert sum(r.used_fallback for r in got) == expected.counts.fallbacks > 0


def test_resume_refuses_changed_answer_parameters(tmp_path):
    meta = tmp_path / "predictions.meta.json"
    check_same_parameters(meta, _params().answer_fingerprint())
    check_same_parameters(
        meta, _params(limit=3, gallery_size=2).answer_fingerprint()
    )  # same answers
    with pytest.raises(ParameterError, match="image_policy: 'first' -> 'all'"):
        check_same_parameters(meta, _params(image_policy="all").answer_fingerprint())
    for changed, shown in [  # each changes how the kernels round, so the answers
        ({"batch_size": 1}, "batch_size: 0 -> 1"),
        ({"chunk_size": 8}, "chunk_size: 32 -> 8"),
        ({"scheduling": "vllm"}, "scheduling: 'vendor' -> 'vllm'"),
        ({"max_model_len": 1024}, "max_model_len: "),
        ({"backend": "server"}, "backend: 'offline' -> 'server'"),
        (
            {"engine_args": {"enforce_eager": True}},
            "engine_args: {'mm_processor_cache_gb': 0} -> "
            "{'mm_processor_cache_gb': 0, 'enforce_eager': True}",
        ),
    ]:
        with pytest.raises(ParameterError, match=re.escape(shown)):
            check_same_parameters(meta, _params(**changed).answer_fingerprint())
    # the notebook's own engine defaults, given or not, are the same engine
    check_same_parameters(
        meta, _params(engine_args={"mm_processor_cache_gb": 0}).answer_fingerprint()
    )
    batch1 = tmp_path / "batch1.meta.json"
    check_same_parameters(batch1, _params(batch_size=1).answer_fingerprint())
    check_same_parameters(batch1, _params(batch_size=1, chunk_size=8).answer_fingerprint())


def test_progress_line(capsys):
    progress = question_progress(total=10, already=4, interval_s=0)
    progress.update(3)
    line = capsys.readouterr().out
    assert line.startswith("[mmmu] 7/10 questions (70.0%) | ") and "q/s" in line
    assert "ETA" in line


# --------------------------------------------------------------------------------------------
# Scoring checked from the parquet golds: a server that answers every question "A"
# --------------------------------------------------------------------------------------------

OPEN_GOLD_A = "validation_Art_2"  # an open question whose gold the test sets to "A"


def official_open_correct_for_a(answer: str) -> bool:
    """The official open-answer rule (MMMU eval/utils) for the response "A", written out:
    the response parses to [" a", "a "]; a gold (or each of a list gold) is a number (never
    equal to those strings) or lower-cased text, a single character c as [" c", "c "]; it is
    right when a text gold occurs inside a parsed response."""
    text = answer.strip()
    golds = ast.literal_eval(text) if text.startswith("[") and text.endswith("]") else [answer]
    predictions = [" a", "a "]
    for gold in golds:
        gold = str(gold).strip()
        try:
            float(gold.replace(",", ""))
            continue  # a number: the response "A" holds none
        except ValueError:
            pass
        gold = gold.lower()
        forms = [" " + gold, gold + " "] if len(gold) == 1 else [gold]
        if any(form in prediction for form in forms for prediction in predictions):
            return True
    return False


def expected_for_always_a(dataset: Path, subjects: list[str]) -> dict[str, dict[str, int]]:
    """Per subject and per question type, (correct, n) for the response "A", from the gold
    column of the parquet files (read with pyarrow, not with the kit)."""
    tally: dict[str, dict[str, int]] = {}
    for subject in subjects:
        path = dataset / subject / "validation-00000-of-00001.parquet"
        for row in pq.read_table(path, columns=["id", "question_type", "answer"]).to_pylist():
            if row["question_type"] == "multiple-choice":
                gold = row["answer"].strip()
                letters = ast.literal_eval(gold) if gold.startswith("[") else [gold]
                right = "A" in letters
            else:
                right = official_open_correct_for_a(row["answer"])
            for key in (subject, row["question_type"]):
                counts = tally.setdefault(key, {"correct": 0, "n": 0})
                counts["correct"] += right
                counts["n"] += 1
    return tally


def accuracy(counts: dict[str, int]) -> dict:
    return {"acc": round(counts["correct"] / counts["n"], 3), **counts}


@pytest.fixture(scope="module")
def always_a_dataset(tmp_path_factory) -> Path:
    """The fixture's six subjects (one per group); one open gold is the letter "A"."""
    dest = tmp_path_factory.mktemp("mmmu-always-a")
    for subject in MMMU_SUBJECTS:
        shutil.copytree(fixture_dataset() / subject, dest / subject)
    path = dest / "Art" / "validation-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    (row,) = [r for r in rows if r["id"] == OPEN_GOLD_A]
    assert row["question_type"] == "open"
    row["answer"] = "A"
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)
    return dest


def test_accuracy_of_a_server_that_always_answers_a(always_a_dataset, tmp_path, smoke_model):
    """Every question answered "A" (tests/chatserver.py, no engine): multiple choice is right
    exactly where the gold letter is A, open questions as the official rule says (only the
    gold "A" here, lower-cased on both sides), and no response needs the random fallback."""
    outputs = tmp_path / "outputs"
    with ChatServer() as fake:
        proc = kit_in_process(
            "run", "mmmu", "-f", "params/smoke-mmmu.yaml", "-p", "backend", "server",
            "-p", "base_url", fake.base_url, "-p", "dataset", str(always_a_dataset),
            "-p", "subjects", ",".join(MMMU_SUBJECTS), "-p", "limit", "8",
            env={"KIT_OUTPUTS_DIR": str(outputs)},
        )  # fmt: skip
        asked = len(fake.requests)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = outputs.glob("*-mmmu-*")
    mmmu = json.loads((folder / "results.json").read_text())["mmmu"]
    tally = expected_for_always_a(always_a_dataset, MMMU_SUBJECTS)
    total = {k: sum(tally[s][k] for s in MMMU_SUBJECTS) for k in ("correct", "n")}
    assert total["n"] == asked == 48
    assert 0 < total["correct"] < total["n"]  # the check can tell right from wrong
    assert tally["open"]["correct"] == 1  # the gold "A": both sides lower-cased
    assert mmmu["overall"] == accuracy(total)
    assert mmmu["subjects"] == {s: accuracy(tally[s]) for s in MMMU_SUBJECTS}
    members = {group: [s for s in MMMU_SUBJECTS if s in names] for group, names in GROUPS.items()}
    assert mmmu["groups"] == {g: accuracy(tally[s]) for g, (s,) in members.items()}
    assert mmmu["by_question_type"] == {t: accuracy(tally[t]) for t in ("multiple-choice", "open")}
    assert mmmu["counts"] == {"questions": 48, "answered": 48, "errors": 0, "fallbacks": 0}
    # vendor-strict: a response that is exactly the gold letter; open answers officially
    assert mmmu["scoring"]["vendor_strict"]["overall"] == accuracy(total)
    lines = _lines(folder / "predictions.jsonl")
    assert {x["response"] for x in lines} == {"A"} and not any(x["fallback"] for x in lines)
    assert next(x for x in lines if x["id"] == OPEN_GOLD_A)["correct"] is True


# --------------------------------------------------------------------------------------------
# End to end on the tiny model
# --------------------------------------------------------------------------------------------


def _lines(path: Path) -> list[dict]:
    # "\n" only: splitlines() would also split a response holding U+2028.
    return [json.loads(line) for line in path.read_text().split("\n") if line]


@pytest.fixture(scope="module")
def run1(mmmu_run):
    return mmmu_run


@pytest.mark.slow
def test_run_records_every_question_once_in_official_order(run1, dataset):
    folder, proc = run1
    for name in ("mmmu.ipynb", "report.html", "results.json", "predictions.jsonl", "engine.log"):
        assert (folder / name).is_file(), name
    qs = load_split(dataset, "validation", RUN1_SUBJECTS, limit=2, lazy_images=True)
    lines = _lines(folder / "predictions.jsonl")
    assert [x["id"] for x in lines] == [q.id for q in qs]
    for line, q in zip(lines, qs, strict=True):
        assert set(line) >= {"id", "subject", "prompt", "images", "response", "parsed"}
        assert set(line) >= {"correct", "fallback", "error", "gold"}
        assert (
            line["prompt"] == f"<|user|>\n<|image_1|>\n{official_prompt(q)}<|end|>\n<|assistant|>\n"
        )
        assert line["images"] == [1] and line["subject"] == q.subject
        if q.id != BROKEN_ID:
            assert isinstance(line["response"], str) and line["error"] is None
            assert line["num_output_tokens"] <= 10
    out = proc.stdout + proc.stderr
    assert "[mmmu] 12 questions: 0 already in predictions.jsonl, 12 to answer" in out
    assert "[mmmu] 12/12 questions (100.0%)" in out  # progress reaches papermill's log


@pytest.mark.slow
def test_undecodable_image_is_an_error_and_the_run_continues(run1):
    folder, _ = run1
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "ok" and results["error"] is None
    mmmu = results["mmmu"]
    lines = _lines(folder / "predictions.jsonl")
    assert mmmu["counts"] == {
        "questions": 12,
        "answered": 11,
        "errors": 1,
        "fallbacks": sum(x["fallback"] for x in lines),  # as each answer's line records it
    }
    ((error,),) = [mmmu["error_questions"]]
    assert error["id"] == BROKEN_ID and error["error"].startswith("image failed to decode")
    line = next(x for x in lines if x["id"] == BROKEN_ID)
    assert line["response"] is None and line["correct"] is False and line["error"]
    assert "image failed to decode" in (folder / "report.html").read_text()


@pytest.mark.slow
def test_results_are_the_scoring_of_the_recorded_predictions(run1, dataset):
    """results.json agrees with a rescoring of predictions.jsonl and with the scorer CLI (the
    same scorer: a check that the record and the log agree; the scorer itself is checked
    against the parquet golds by test_accuracy_of_a_server_that_always_answers_a)."""
    folder, _ = run1
    mmmu = json.loads((folder / "results.json").read_text())["mmmu"]
    lines = _lines(folder / "predictions.jsonl")
    qs = load_split(dataset, "validation", RUN1_SUBJECTS, limit=2, lazy_images=True)
    report = score_predictions(qs, {x["id"]: x["response"] for x in lines})
    summary = json.loads(json.dumps(report.to_dict()))
    for key in ("overall", "groups", "subjects", "by_question_type", "by_difficulty", "counts"):
        assert mmmu[key] == summary[key], key
    assert list(mmmu["groups"]) == list(GROUPS)  # one subject per group
    assert mmmu["fallbacks"] == sum(x["fallback"] for x in lines)
    assert mmmu["parse_mismatches"] == 0
    assert mmmu["parameters"]["image_policy"] == "first" and mmmu["parameters"]["limit"] == 2
    assert not mmmu["comparable_with_references"] and mmmu["deviations"]
    # The scorer CLI gives the same verdicts (questions beyond limit 2 are reported missing).
    document, _ = score(str(dataset), folder / "predictions.jsonl")
    records = {r["id"]: r for r in document["records"]}
    for x in lines:
        assert (records[x["id"]]["parsed"], records[x["id"]]["correct"]) == (
            x["parsed"],
            x["correct"],
        )
    assert len(document["problems"]["missing_ids"]) == 6 * 8 - 12


@pytest.mark.slow
def test_results_hold_both_scorings(run1, dataset):
    folder, _ = run1

    def refuse(constant):
        raise AssertionError(f"results.json holds {constant}")

    mmmu = json.loads((folder / "results.json").read_text(), parse_constant=refuse)["mmmu"]
    lines = _lines(folder / "predictions.jsonl")
    qs = load_split(dataset, "validation", RUN1_SUBJECTS, limit=2, lazy_images=True)
    responses = {x["id"]: x["response"] for x in lines}
    official = score_predictions(qs, responses)
    strict = json.loads(json.dumps(score_predictions_vendor(qs, responses).to_dict()))
    scoring = mmmu["scoring"]
    assert scoring["official"]["overall"] == mmmu["overall"]
    for key in ("overall", "groups", "subjects", "by_question_type", "counts"):
        assert scoring["vendor_strict"][key] == strict[key], key
    assert scoring["differing_questions"] == sum(
        x["correct"] != x["vendor_strict_correct"] for x in lines
    )
    for x, q in zip(lines, qs, strict=True):
        assert x["vendor_strict_correct"] == score_question_vendor(q, x["response"]).correct
    assert mmmu["deviations"][0].startswith("scoring:")
    assert "batch_size is 0 (vendor: 1)" in " ".join(mmmu["deviations"])
    by_source = {r["source"]: r for r in mmmu["references"]}
    assert by_source["S60"]["scoring"] == "vendor-strict"
    assert by_source["model card"]["scoring"] == "official"
    points = 100 * (scoring["vendor_strict"]["overall"]["acc"] - 0.428)
    assert by_source["S60"]["this run - reference (points)"] == f"{points:+.1f}"
    assert official.overall.to_dict() == mmmu["overall"]
    report = (folder / "report.html").read_text()
    for text in ("vendor-strict", "Differences from the vendor", "scoring:"):
        assert text in report, text


@pytest.mark.slow
def test_report_escapes_dataset_and_model_text(run1):
    folder, _ = run1
    report = (folder / "report.html").read_text()
    assert "&lt;image 1&gt;" in report and "<image 1>" not in report
    for text in ("MMMU Overall vs references", "S60", "0.428", "Art and Design", "Letters"):
        assert text in report, text
    assert "data:image/png;base64," in report  # charts and thumbnails, inline
    assert not re.search(r"<script[^>]+src=[\"']?https?://", report)
    wrong = [x for x in _lines(folder / "predictions.jsonl") if x["response"] and not x["correct"]]
    assert wrong
    for x in wrong:  # the gallery shows every wrong answer here (gallery_size 12)
        assert html.escape(x["response"], quote=False) in report
    assert "Loading safetensors" not in report


@pytest.mark.slow
def test_resume_of_a_finished_run_starts_no_engine(run1, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(run1[0], folder)
    before = (folder / "predictions.jsonl").read_bytes()
    proc = kit_in_process("run", "mmmu", "--resume", str(folder))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (folder / "predictions.jsonl").read_bytes() == before
    assert (folder / "mmmu.attempt-1.ipynb").is_file() and (folder / "report.html").is_file()
    old = json.loads((run1[0] / "results.json").read_text())["mmmu"]
    new = json.loads((folder / "results.json").read_text())["mmmu"]
    assert new["overall"] == old["overall"] and new["subjects"] == old["subjects"]
    assert new["timing"]["previously_answered"] == 12 and new["timing"]["answered"] == 0
    assert "Engine (as vLLM configured it)" not in (folder / "report.html").read_text()


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, dataset, smoke_model):
    """An interrupted run folder made by hand: SEEDED answers, then a line cut by a kill."""
    folder = tmp_path_factory.mktemp("interrupted")
    values = yaml.safe_load((REPO / "params/smoke-mmmu.yaml").read_text())
    values.update(
        dataset=str(dataset), subjects=RUN2_SUBJECTS, limit=3, image_policy="all", chunk_size=4
    )
    (folder / "parameters.yaml").write_text(yaml.safe_dump(values))
    qs = load_split(dataset, "validation", RUN2_SUBJECTS, limit=3, lazy_images=True)
    rng = random.Random(FALLBACK_SEED)
    seeded = []
    for q in qs[: SEEDED + 1]:
        response = "no idea at all" if q.is_multiple_choice else "4"
        result = score_question(q, response, rng)
        seeded.append(
            json.dumps(
                {
                    "id": q.id,
                    "response": response,
                    "parsed": result.parsed,
                    "correct": result.correct,
                    "fallback": result.used_fallback,
                    "error": None,
                }
            )
            + "\n"
        )
    assert any('"fallback": true' in s for s in seeded[:SEEDED])  # the replay matters
    head = "".join(seeded[:SEEDED])
    torn = seeded[SEEDED][:25]
    (folder / "predictions.jsonl").write_text(head + torn)
    proc = kit_in_process("run", "mmmu", "--resume", str(folder))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return folder, qs, head, torn


@pytest.mark.slow
def test_resume_keeps_earlier_answers_and_completes_without_duplicates(resumed):
    folder, qs, head, torn = resumed
    text = (folder / "predictions.jsonl").read_text()
    assert text.startswith(head)
    lines = _lines(folder / "predictions.jsonl")
    assert [x["id"] for x in lines] == [q.id for q in qs]  # each once, official order
    assert (folder / "predictions.jsonl.torn").read_text() == torn + "\n"
    mmmu = json.loads((folder / "results.json").read_text())["mmmu"]
    assert mmmu["timing"]["previously_answered"] == SEEDED
    assert mmmu["timing"]["answered"] + mmmu["timing"]["errors"] == len(qs) - SEEDED
    assert mmmu["parse_mismatches"] == 0 and mmmu["counts"]["questions"] == len(qs)
    report = score_predictions(qs, {x["id"]: x["response"] for x in lines})
    assert mmmu["overall"] == report.overall.to_dict()
    assert mmmu["fallbacks"] == report.counts.fallbacks


@pytest.mark.slow
def test_resume_with_image_policy_all_sends_every_referenced_image(resumed):
    folder, qs, _, _ = resumed
    by_id = {q.id: q for q in qs}
    new = _lines(folder / "predictions.jsonl")[SEEDED:]
    multi = [x for x in new if len(x["images"]) > 1]
    assert multi, "the resumed part must include multi-image questions"
    for x in new:
        q = by_id[x["id"]]
        assert x["images"] == select_images(q, "all")
        tags = "".join(f"<|image_{k}|>\n" for k in range(1, len(x["images"]) + 1))
        assert x["prompt"].startswith(f"<|user|>\n{tags}")
        if x["id"] != BROKEN_ID:
            assert x["error"] is None and x["num_prompt_tokens"] > 144 * len(x["images"])
    results = json.loads((folder / "results.json").read_text())
    assert results["parameters"]["limit_images"] == max(len(x["images"]) for x in new)


def test_png_output_is_a_real_png():
    from kit.mmmu.report import letter_chart

    report = aggregate(
        [
            QuestionResult("validation_Art_1", "Art", MULTIPLE_CHOICE, "Easy", "A", "B", False),
            QuestionResult("validation_Art_2", "Art", MULTIPLE_CHOICE, "Easy", "C", "C", True),
        ]
    )
    from PIL import Image

    assert Image.open(io.BytesIO(letter_chart(report))).format == "PNG"
