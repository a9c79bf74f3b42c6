"""The official MMMU protocol (docs/mmmu.md), checked rule by rule with verdicts worked out
by hand, plus the synthetic fixture and the dataset loader's errors. No engine involved."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kit.core.params import ParameterError
from kit.mmmu.answer import iter_chunks
from kit.mmmu.dataset import DatasetError, ImageReader, check_dataset, load_split, present_subjects
from kit.mmmu.fixture import (
    COLUMNS,
    DEFAULT_PER_SUBJECT,
    DEFAULT_SUBJECTS,
    FIXTURE_VERSION,
    MARKER_FILE,
    ensure_fixture,
    write_fixture,
)
from kit.mmmu.parsing import (
    check_is_number,
    eval_multi_choice,
    eval_open,
    extract_numbers,
    key_subresponses,
    normalize_str,
    parse_multi_choice,
    parse_open,
)
from kit.mmmu.questions import (
    GROUPS,
    MULTIPLE_CHOICE,
    OPEN,
    SPLITS_WITH_ANSWERS,
    SUBJECTS,
    Gold,
    Question,
    decode_image,
    index_to_answer,
    letters,
    official_prompt,
    parse_gold,
    parse_options,
    referenced_images,
    select_images,
)
from kit.mmmu.scoring import (
    QuestionResult,
    aggregate,
    micro_average,
    score_predictions,
    score_question,
)

ABCD = ["A", "B", "C", "D"]


def mc(response: str, options: list[str] | None = None, seed: int = 0) -> tuple[str, bool]:
    options = options or ["Paris", "London", "Berlin", "Madrid"]
    index2ans = index_to_answer(options)
    return parse_multi_choice(response, list(index2ans), index2ans, random.Random(seed))


def question(
    qid: str = "validation_Art_1",
    subject: str = "Art",
    text: str = "What is shown in <image 1>?",
    options: list[str] | None = None,
    answer: Gold = "A",
    qtype: str = MULTIPLE_CHOICE,
    row: int = 0,
    images: tuple[int, ...] = (1,),
    difficulty: str = "Easy",
) -> Question:
    return Question(
        id=qid,
        subject=subject,
        question=text,
        options=list(ABCD if options is None else options),
        answer=answer,
        question_type=qtype,
        topic_difficulty=difficulty,
        row=row,
        images={k: {"bytes": b"", "path": f"{k}.png"} for k in images},
    )


# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------


def test_thirty_subjects_official_order_and_groups():
    assert len(SUBJECTS) == 30 == len(set(SUBJECTS))
    # The official evaluation order (CAT_SHORT2LONG values) happens to be alphabetical.
    assert list(SUBJECTS) == sorted(SUBJECTS)
    assert SUBJECTS[:4] == ("Accounting", "Agriculture", "Architecture_and_Engineering", "Art")
    assert sorted(s for members in GROUPS.values() for s in members) == sorted(SUBJECTS)
    assert list(GROUPS) == [
        "Art and Design",
        "Business",
        "Science",
        "Health and Medicine",
        "Humanities and Social Science",
        "Tech and Engineering",
    ]
    assert [len(m) for m in GROUPS.values()] == [4, 5, 5, 5, 4, 7]
    assert SPLITS_WITH_ANSWERS == ("dev", "validation")


# --------------------------------------------------------------------------------------------
# Columns and prompts
# --------------------------------------------------------------------------------------------


def test_parse_options_and_gold():
    assert parse_options("['a b', \"it's\", '<image 2>']") == ["a b", "it's", "<image 2>"]
    assert parse_options("[]") == []
    with pytest.raises(ValueError, match=r"options is not a Python list literal: '\[unbalanced'"):
        parse_options("[unbalanced")
    assert parse_gold("['24/7', '3.429']") == ["24/7", "3.429"]
    assert parse_gold("B") == "B"
    assert parse_gold("1.06") == "1.06"
    assert parse_gold("[not a literal]") == "[not a literal]"


def test_multiple_choice_prompt_exact():
    q = question(text="Which one? <image 1>", options=["red", "<image 2>"], images=(1, 2))
    assert official_prompt(q) == (
        "Which one? <image 1>\n(A) red\n(B) <image 2>\n\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_nine_options_are_lettered_a_to_i():
    opts = [f"opt{i}" for i in range(1, 10)]
    prompt = official_prompt(question(text="Q?", options=opts))
    lines = prompt.split("\n")
    assert lines[0] == "Q?"
    assert lines[1:10] == [f"({letter}) opt{i}" for i, letter in enumerate("ABCDEFGHI", 1)]
    assert lines[10] == ""
    assert lines[11] == "Answer with the option's letter from the given choices directly."
    assert len(lines) == 12


def test_open_prompt_exact_and_image_marker_kept():
    q = question(text="How many cells in <image 1>?", options=[], answer="3", qtype=OPEN)
    prompt = official_prompt(q)
    assert (
        prompt == "How many cells in <image 1>?\nAnswer the question using a single word or phrase."
    )
    assert "<image 1>" in prompt


def test_referenced_images_first_appearance_unique_existing_only():
    q = question(
        text="Compare <image 2> with <image 1>, then <image 2> again and <image 9>.",
        options=["<image 3>", "<image 1>", "<image 4>"],
        images=(1, 2, 3, 5),
    )
    assert referenced_images(q) == [2, 1, 3]  # 9 and 4 do not exist, 5 is never named
    assert select_images(q, "first") == [1]
    assert select_images(q, "all") == [2, 1, 3]
    assert select_images(question(images=()), "first") == []
    # Nothing referenced: `all` still sends the images the question has.
    assert select_images(question(text="No marker", images=(1, 2)), "all") == [1, 2]
    with pytest.raises(ValueError, match="unknown image policy 'every'"):
        select_images(q, "every")


def test_iter_chunks():
    assert list(iter_chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(iter_chunks([], 3)) == []
    with pytest.raises(ValueError, match="chunk size must be >= 1, got 0"):
        list(iter_chunks([1], 0))


# --------------------------------------------------------------------------------------------
# Multiple-choice parsing
# --------------------------------------------------------------------------------------------


def test_bracketed_letter():
    assert mc("(B)") == ("B", False)
    assert mc("The answer is (C) London") == ("C", False)  # brackets beat option text


def test_spaced_letter_and_edge_punctuation():
    assert mc("B") == ("B", False)  # padded to " B "
    assert mc(" B ") == ("B", False)
    assert mc("B.") == ("B", False)  # "." stripped from the ends
    assert mc("'D'") == ("D", False)


def test_letter_glued_to_punctuation_inside_is_not_found():
    # " B, " is not " B ": nothing matches (3 words, too short for option text) -> fallback.
    assert mc("Answer: B, because")[1] is True


def test_edge_punctuation_is_stripped_one_character_at_a_time_in_order():
    # "B.!" : strip(",") no-op, strip(".") no-op (ends with "!"), strip("!") -> "B."; "." is not
    # tried again, so " B. " has no " B " -> random fallback (the official quirk).
    assert mc("B.!")[1] is True
    assert mc("B!.") == ("B", False)  # "." then "!" removed


def test_option_text_only_when_more_than_five_words():
    assert mc("London")[1] is True  # one word: no text matching, fallback
    assert mc("the city is London today")[1] is True  # exactly 5 words: still no
    assert mc("I think the city is London today") == ("B", False)  # 7 words: text match


def test_last_match_wins():
    # Two bracketed letters: the one whose "(X)" starts last.
    assert mc("(A) is wrong, (C) is right") == ("C", False)
    assert mc("(C) is right, not (A)") == ("A", False)
    # Two spaced letters.
    assert mc("A or maybe B") == ("B", False)
    # Two option texts: the one found last in the lower-cased response.
    assert mc("it is blue, no wait, it is red", ["red", "blue"]) == ("A", False)
    assert mc("it is red, no wait, it is blue", ["red", "blue"]) == ("B", False)


def test_lowercase_letter_is_not_a_letter_match():
    assert mc("a")[1] is True  # " a " is not " A "


def test_fallback_is_seeded_and_flagged():
    expected = random.Random(42).choice(ABCD)
    assert mc("no idea", seed=42) == (expected, True)
    # Same generator, same order -> same picks; each fallback consumes one draw.
    rng1, rng2 = random.Random(42), random.Random(42)
    idx = index_to_answer(ABCD)
    picks1 = [parse_multi_choice("??", ABCD, idx, rng1)[0] for _ in range(20)]
    picks2 = [parse_multi_choice("??", ABCD, idx, rng2)[0] for _ in range(20)]
    assert picks1 == picks2
    ref = random.Random(42)
    assert picks1 == [ref.choice(ABCD) for _ in range(20)]


def test_parsed_letter_does_not_consume_the_generator():
    rng = random.Random(42)
    idx = index_to_answer(ABCD)
    parse_multi_choice("(B)", ABCD, idx, rng)
    assert rng.random() == random.Random(42).random()


# --------------------------------------------------------------------------------------------
# Open parsing and normalization
# --------------------------------------------------------------------------------------------


def test_check_is_number_and_normalize():
    assert check_is_number("1,234")
    assert check_is_number("1.5e3")
    assert not check_is_number("24/7")
    assert normalize_str(" 1,234 ") == [1234.0]
    assert normalize_str("3.14159") == [3.14]
    assert normalize_str("1.5e3") == [1500.0]
    assert normalize_str("Mitochondria") == ["mitochondria"]
    assert normalize_str("C") == [" c", "c "]


def test_extract_numbers_three_patterns():
    # commas first, then scientific, then simple; the simple pattern also sees "234" after the
    # comma (it only refuses a number followed by "," or a digit).
    assert extract_numbers("1,234 and 5.6") == ["1,234", "234", "5.6"]
    # "1.5e3": scientific "1.5e3"; simple refuses "1.5" (followed by e3) but takes "1" and "3".
    assert extract_numbers("1.5e3") == ["1.5e3", "1", "3"]
    assert extract_numbers("-7 or .5") == ["-7", ".5"]


def test_open_commas_and_scientific():
    assert parse_open("1,234") == [1234.0, 234.0]
    assert eval_open("1234", parse_open("1,234"))
    assert parse_open("1.5e3") == [1500.0, 1.0, 3.0]
    assert eval_open("1500", parse_open("1.5e3"))


def test_open_rounding_to_two_decimals():
    assert eval_open("3.14159", parse_open("3.14"))
    assert eval_open("3.14159", parse_open("3.1416"))  # both round to 3.14
    assert not eval_open("3.14159", parse_open("3.149"))  # 3.15


def test_open_key_subresponses():
    # Shortest tail after an indicator: "is " -> "42" beats "answer " -> "is 42".
    assert key_subresponses("The answer is 42.") == ["42"]
    assert parse_open("The answer is 42.") == [42.0]
    # "=" counts on the last line only.
    assert parse_open("x = 5\ny = 7") == [7.0]
    assert not eval_open("5", parse_open("x = 5\ny = 7"))
    # One key per line.
    assert parse_open("so 12\nthus 13") == [12.0, 13.0]
    # A tail that is pure punctuation is dropped; with no key the whole response is kept.
    assert key_subresponses("final answer is :") == ["final answer is :"]


def test_open_single_character_answers():
    assert parse_open("c") == [" c", "c "]
    assert eval_open("c", parse_open("C"))
    assert eval_open("c", parse_open("The answer is c"))
    assert eval_open("c", parse_open("c d"))  # "c " occurs
    assert not eval_open("c", parse_open("abc"))  # neither " c" nor "c " occurs


def test_open_substring_match():
    assert eval_open("mitochondria", parse_open("The mitochondria."))
    assert eval_open("Paris", parse_open("paris, france"))
    assert not eval_open("mitochondria", parse_open("mitochondrion"))


def test_open_list_golds():
    gold = parse_gold("['24/7', '3.429']")
    assert parse_open("24/7") == ["24/7", 24.0, 7.0]
    assert eval_open(gold, parse_open("24/7"))  # string gold is a substring
    assert eval_open(gold, parse_open("3.429"))  # number gold, 3.43 == 3.43
    assert eval_open(gold, parse_open("3.43"))
    assert not eval_open(gold, parse_open("3.4"))


def test_open_number_prediction_never_matches_text_gold():
    assert not eval_open("twelve", [12.0])
    assert not eval_open("12", ["12 apples"])  # gold 12.0 is a number, pred is text


def test_eval_multi_choice():
    assert eval_multi_choice("B", "B")
    assert not eval_multi_choice("B", "C")
    assert eval_multi_choice(["A", "C"], "C")
    assert not eval_multi_choice(["A", "C"], "B")


# --------------------------------------------------------------------------------------------
# Scoring and aggregation
# --------------------------------------------------------------------------------------------


def test_score_question_records_everything():
    q = question(answer="B")
    rng = random.Random(42)
    r = score_question(q, "(B)", rng)
    assert (r.id, r.subject, r.parsed, r.correct, r.used_fallback) == (
        q.id,
        "Art",
        "B",
        True,
        False,
    )
    assert (r.question_type, r.topic_difficulty, r.gold, r.error) == (
        MULTIPLE_CHOICE,
        "Easy",
        "B",
        False,
    )
    o = question(options=[], answer="['24/7', '3.429']", qtype=OPEN)
    o.answer = parse_gold(o.answer)
    assert score_question(o, "3.429", rng).correct
    e = score_question(q, None, rng)
    assert (e.error, e.correct, e.parsed) == (True, False, None)


def test_fallback_consumed_in_official_subject_order_then_dataset_order():
    # Given out of order; the official run sees Accounting, then Art rows 0,1, then Physics.
    qs = [
        question("validation_Physics_1", "Physics", row=0),
        question("validation_Art_2", "Art", row=1),
        question("validation_Accounting_1", "Accounting", row=0),
        question("validation_Art_1", "Art", row=0),
    ]
    responses = {q.id: "I cannot tell" for q in qs}
    report = score_predictions(qs, responses)
    assert [r.id for r in report.records] == [
        "validation_Accounting_1",
        "validation_Art_1",
        "validation_Art_2",
        "validation_Physics_1",
    ]
    ref = random.Random(42)
    assert [r.parsed for r in report.records] == [ref.choice(ABCD) for _ in range(4)]
    assert all(r.used_fallback for r in report.records)
    assert report.counts.fallbacks == 4
    # Same questions in another input order: same picks.
    again = score_predictions(list(reversed(qs)), responses)
    assert [r.parsed for r in again.records] == [r.parsed for r in report.records]


def test_missing_response_is_an_error_and_draws_nothing():
    qs = [question("validation_Art_1", row=0), question("validation_Art_2", row=1)]
    report = score_predictions(qs, {"validation_Art_2": "hmm"})
    first, second = report.records
    assert first.error and not first.correct
    assert second.parsed == random.Random(42).choice(ABCD)
    assert report.counts.to_dict() == {"questions": 2, "answered": 1, "errors": 1, "fallbacks": 1}


def _result(subject: str, correct: bool, qtype: str = MULTIPLE_CHOICE, diff: str = "Easy"):
    return QuestionResult(
        id=f"validation_{subject}_x",
        subject=subject,
        question_type=qtype,
        topic_difficulty=diff,
        gold="A",
        parsed="A" if correct else "B",
        correct=correct,
    )


def test_micro_averaged_groups_and_overall_rounded_to_three_decimals():
    records = (
        [_result("Art", True)]  # Art 1/1 = 1.0
        + [_result("Design", False, OPEN, "Hard")] * 3  # Design 0/3 = 0.0
        + [_result("Physics", True, diff="Medium")] * 2
        + [_result("Physics", False, diff="Medium")]  # Physics 2/3 = 0.667
    )
    report = aggregate(records)
    assert report.subjects["Art"].to_dict() == {"acc": 1.0, "n": 1, "correct": 1}
    assert report.subjects["Design"].acc == 0.0
    assert report.subjects["Physics"].acc == 0.667
    # Art and Design: (1.0*1 + 0.0*3) / 4 = 0.25 (a macro average would give 0.5).
    assert report.groups["Art and Design"].to_dict() == {"acc": 0.25, "n": 4, "correct": 1}
    assert report.groups["Science"].acc == 0.667
    # Overall: (1 + 0 + 2) / 7 = 0.428571... -> 0.429.
    assert report.overall.to_dict() == {"acc": 0.429, "n": 7, "correct": 3}
    assert "Business" not in report.groups  # no data, no row
    assert report.by_question_type["open"].to_dict() == {"acc": 0.0, "n": 3, "correct": 0}
    assert report.by_question_type[MULTIPLE_CHOICE].acc == 0.75
    assert report.by_difficulty["Medium"].acc == 0.667
    d = report.to_dict()
    assert list(d) == [
        "overall",
        "groups",
        "subjects",
        "by_question_type",
        "by_difficulty",
        "counts",
        "letters",
        "seed",
    ]
    assert list(d["subjects"]) == ["Art", "Design", "Physics"]
    json.dumps(report.to_dict(include_records=True))


def test_micro_average_helper():
    assert micro_average([(1.0, 1), (0.0, 3)]) == 0.25
    assert micro_average([]) == 0.0


def test_letter_distribution():
    qs = [
        question("validation_Art_1", answer="A", row=0),
        question("validation_Art_2", answer="C", row=1),
        question("validation_Art_3", answer="C", row=2),
        question("validation_Art_4", options=[], answer="7", qtype=OPEN, row=3),
    ]
    responses = {
        "validation_Art_1": "(A)",
        "validation_Art_2": "A",
        "validation_Art_3": "C",
        "validation_Art_4": "7",
    }
    report = score_predictions(qs, responses)
    assert report.predicted_letters == {"A": 2, "C": 1}
    assert report.gold_letters == {"A": 1, "C": 2}
    assert report.overall.to_dict() == {"acc": 0.75, "n": 4, "correct": 3}


# --------------------------------------------------------------------------------------------
# Fixture
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory) -> Path:
    return ensure_fixture(tmp_path_factory.mktemp("cache"))


def test_fixture_columns_and_types(fixture_dir):
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for subject in DEFAULT_SUBJECTS:
        for split in SPLITS_WITH_ANSWERS:
            schema = pq.read_schema(fixture_dir / subject / f"{split}-00000-of-00001.parquet")
            assert tuple(schema.names) == COLUMNS
            for name in schema.names:
                expected = image_type if name.startswith("image_") else pa.string()
                assert schema.field(name).type == expected, name


def test_fixture_is_deterministic(tmp_path):
    a = write_fixture(tmp_path / "a", seed=3, subjects=("Math", "History"), per_subject=6)
    b = write_fixture(tmp_path / "b", seed=3, subjects=("Math", "History"), per_subject=6)
    c = write_fixture(tmp_path / "c", seed=4, subjects=("Math", "History"), per_subject=6)
    for subject in ("Math", "History"):
        name = f"{subject}/validation-00000-of-00001.parquet"
        assert pq.read_table(a / name).equals(pq.read_table(b / name))
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert not pq.read_table(a / name).equals(pq.read_table(c / name))


def test_fixture_content_covers_the_protocol(fixture_dir):
    qs = load_split(fixture_dir, "validation", list(DEFAULT_SUBJECTS))
    assert len(qs) == len(DEFAULT_SUBJECTS) * DEFAULT_PER_SUBJECT
    mcq = [q for q in qs if q.is_multiple_choice]
    opens = [q for q in qs if not q.is_multiple_choice]
    counts = {len(q.options) for q in mcq}
    assert min(counts) == 2 and max(counts) == 9
    assert all(q.answer in letters(len(q.options)) for q in mcq)
    assert any(isinstance(q.answer, list) for q in opens)  # list gold
    assert any(isinstance(q.answer, str) and check_is_number(q.answer) for q in opens)
    assert any(isinstance(q.answer, str) and not check_is_number(q.answer) for q in opens)
    assert any(len(q.image_refs) >= 3 for q in qs)
    assert any(any("<image" in o for o in q.options) for q in qs)
    assert all("<image 1>" in q.question for q in qs)
    assert any(referenced_images(q) != q.image_refs for q in qs)  # unreferenced image_2
    sizes = {q.load_images("first")[0].size for q in qs}
    assert {(640, 480), (300, 900)} <= sizes
    raw = pq.read_table(fixture_dir / "Math/validation-00000-of-00001.parquet").to_pylist()
    assert "['24/7', '3.429']" in {r["answer"] for r in raw}


def test_fixture_images_decode_lazily_by_policy(fixture_dir):
    qs = load_split(fixture_dir, "validation", "Art")
    multi = next(q for q in qs if len(referenced_images(q)) >= 3)
    assert isinstance(multi.images[1]["bytes"], bytes)  # still raw bytes
    first = multi.load_images("first")
    every = multi.load_images("all")
    assert len(first) == 1 and len(every) == len(referenced_images(multi))
    assert all(img.mode == "RGB" for img in every)


def test_ensure_fixture_reuses_the_cache(tmp_path):
    path = ensure_fixture(tmp_path, subjects=("Art",), per_subject=2)
    marker = json.loads((path / MARKER_FILE).read_text())
    assert marker["version"] == FIXTURE_VERSION
    stamp = (path / "Art/validation-00000-of-00001.parquet").stat().st_mtime_ns
    assert ensure_fixture(tmp_path, subjects=("Art",), per_subject=2) == path
    assert (path / "Art/validation-00000-of-00001.parquet").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp folder left behind
    other = ensure_fixture(tmp_path, subjects=("Art",), per_subject=3)
    assert other != path


def test_load_split_order_and_limit(fixture_dir):
    qs = load_split(fixture_dir, "dev", ["Physics", "Art", "Art"], limit=3)
    assert [q.id for q in qs] == [f"dev_Art_{i}" for i in (1, 2, 3)] + [
        f"dev_Physics_{i}" for i in (1, 2, 3)
    ]
    assert [q.row for q in qs] == [0, 1, 2, 0, 1, 2]


# --------------------------------------------------------------------------------------------
# load_split errors
# --------------------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as err:
        load_split(tmp_path / "nope", "validation", ["Art"])
    assert "python -m kit run download -f params/download-mmmu.yaml" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_missing_subjects_are_all_named(fixture_dir):
    with pytest.raises(DatasetError) as err:
        load_split(fixture_dir, "validation", ["Art", "Biology", "Chemistry"])
    msg = str(err.value)
    assert "Biology" in msg and "Chemistry" in msg and "2 subject" in msg
    assert "python -m kit run download" in msg and "MMMU/MMMU" in msg


def test_missing_columns_are_named(tmp_path):
    folder = tmp_path / "Art"
    folder.mkdir()
    table = pa.table({"id": ["validation_Art_1"], "question": ["q"], "question_type": ["open"]})
    pq.write_table(table, folder / "validation-00000-of-00001.parquet")
    with pytest.raises(DatasetError) as err:
        load_split(tmp_path, "validation", ["Art"])
    msg = str(err.value)
    assert "options" in msg and "answer" in msg and "image_1" in msg


def test_test_split_refused(tmp_path):
    with pytest.raises(DatasetError, match="withheld"):
        load_split(tmp_path, "test", ["Art"])
    with pytest.raises(DatasetError, match="Unknown MMMU split"):
        load_split(tmp_path, "train", ["Art"])


def test_unknown_subject_suggests_closest(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_split(tmp_path, "validation", ["Maths", "art_theory", "Zzz"])
    msg = str(err.value)
    assert "'Maths' (did you mean 'Math'?)" in msg
    assert "'art_theory' (did you mean 'Art_Theory'?)" in msg
    assert "'Zzz'" in msg


# --------------------------------------------------------------------------------------------
# Lazy image loading (the notebook keeps image bytes on disk until a chunk needs them)
# --------------------------------------------------------------------------------------------


def test_lazy_loading_matches_eager(fixture_dir):
    eager = load_split(fixture_dir, "validation", ["Art", "Math"], limit=5)
    lazy = load_split(fixture_dir, "validation", ["Art", "Math"], limit=5, lazy_images=True)
    assert [q.id for q in lazy] == [q.id for q in eager]
    reader = ImageReader()
    for e, z in zip(eager, lazy, strict=True):
        assert (z.question, z.options, z.answer, z.row) == (e.question, e.options, e.answer, e.row)
        assert z.image_refs == e.image_refs
        assert all(ref["bytes"] is None and ref["file"] for ref in z.images.values())
        for k in z.image_refs:
            assert reader.image_bytes(z, k) == e.images[k]["bytes"]
        assert [i.size for i in reader.load_images(z, "all")] == [
            i.size for i in e.load_images("all")
        ]
    with pytest.raises(ValueError, match="ImageReader"):
        lazy[0].load_images()


def test_decode_image_errors_surface_at_decode():
    with pytest.raises(ParameterError, match="'image bytes' cannot be read as an image"):
        decode_image(b"not an image")


def test_check_dataset_is_schema_only_and_lists_present_subjects(fixture_dir, tmp_path):
    files = check_dataset(fixture_dir, "dev", ["Physics", "Art"])
    assert list(files) == ["Art", "Physics"]
    assert present_subjects(fixture_dir, "validation") == sorted(DEFAULT_SUBJECTS)
    bad = tmp_path / "Art"
    bad.mkdir()
    (bad / "validation-00000-of-00001.parquet").write_text("not parquet")
    with pytest.raises(DatasetError, match="cannot be read as a parquet file"):
        check_dataset(tmp_path, "validation", ["Art"])
