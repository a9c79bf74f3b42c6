"""The MMMU protocol (MMMU-Benchmark/MMMU, eval/*_utils.py) as pure functions, with the
vendor's stricter multiple-choice scoring beside it.

Everything here is deterministic and engine-free: loading the hub parquet files, building the
official prompts, parsing free-text responses, scoring and aggregating. The engine only has to
turn `build_prompt(q)` plus `q.load_images(policy)` into a response string per question id.

Two scorings of the same responses (docs/mmmu.md compares them):
- ``official`` (`score_predictions`): a multiple-choice letter is read from "(X)", " X " or an
  option's text, else drawn at random; open answers by the official open parsing.
- ``vendor_strict`` (`score_predictions_vendor`): as the vendor's accuracy script (Enflame
  vllm-gcu, benchmarks/benchmark_vision_language.py --acc) scores Phi-3.5-vision: a
  multiple-choice answer counts only when ``response.strip()`` equals the gold letter; open
  answers by the official open parsing. No random draw. Both produce a `ScoreReport`
  aggregated the same way, so only the per-question verdicts differ.

Faithfulness notes (why the code looks the way it does):
- Subjects are evaluated in `SUBJECTS` order (the official CAT_SHORT2LONG order, which is
  alphabetical), questions within a subject in dataset order, with ONE `random.Random(42)`:
  the random fallback of multiple-choice parsing depends on that order.
- Group and overall accuracies are computed as the official code does, sum(acc * n) / sum(n)
  over subjects in float arithmetic, then rounded to 3 decimals.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kit.params import ParameterError

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

#: Subject groups and their members, in the official display order (DOMAIN_CAT2SUB_CAT).
GROUPS: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
}

#: The 30 subjects in the official evaluation order (CAT_SHORT2LONG values: alphabetical).
SUBJECTS: tuple[str, ...] = (
    "Accounting",
    "Agriculture",
    "Architecture_and_Engineering",
    "Art",
    "Art_Theory",
    "Basic_Medical_Science",
    "Biology",
    "Chemistry",
    "Clinical_Medicine",
    "Computer_Science",
    "Design",
    "Diagnostics_and_Laboratory_Medicine",
    "Economics",
    "Electronics",
    "Energy_and_Power",
    "Finance",
    "Geography",
    "History",
    "Literature",
    "Manage",
    "Marketing",
    "Materials",
    "Math",
    "Mechanical_Engineering",
    "Music",
    "Pharmacy",
    "Physics",
    "Psychology",
    "Public_Health",
    "Sociology",
)

#: Subject -> group name.
SUBJECT_GROUP: dict[str, str] = {s: g for g, members in GROUPS.items() for s in members}

SPLITS_WITH_ANSWERS = ("dev", "validation")
MULTIPLE_CHOICE = "multiple-choice"
OPEN = "open"
IMAGE_COLUMNS = tuple(f"image_{k}" for k in range(1, 8))
REQUIRED_COLUMNS = ("id", "question", "options", "answer", "question_type", "image_1")
OPTIONAL_COLUMNS = ("explanation", "img_type", "topic_difficulty", "subfield", *IMAGE_COLUMNS[1:])
IMAGE_POLICIES = ("first", "all")
FALLBACK_SEED = 42
OFFICIAL = "official"
VENDOR_STRICT = "vendor_strict"
SCORING_RULES = {
    OFFICIAL: (
        "official MMMU parsing: a multiple-choice letter is read from '(X)', ' X ' or the "
        "option's text, else drawn by random.Random(42); open answers by the official open "
        "parsing"
    ),
    VENDOR_STRICT: (
        "the vendor's script (Enflame vllm-gcu benchmark_vision_language.py --acc): a "
        "multiple-choice answer counts only when response.strip() equals the gold letter; "
        "open answers by the official open parsing"
    ),
}
#: Longest string a recorded parse keeps (an open answer's parse can be the whole response).
PARSED_LIMIT = 200
DOWNLOAD_HINT = (
    "run the download notebook: python -m kit run download -f params/download-mmmu.yaml, "
    "or copy the MMMU/MMMU hub dataset folder here"
)

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."

_IMAGE_MARKER = re.compile(r"<image (\d+)>")
_SUBJECT_RANK = {s: i for i, s in enumerate(SUBJECTS)}

Gold = str | list[str]
T = TypeVar("T")


class DatasetError(ParameterError):
    """The MMMU folder cannot be used as asked; the message says what to do.

    A ParameterError (hence a ValueError), so `python -m kit run` rejects it before any run
    folder is made or engine started, like any other bad parameter."""


# --------------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------------


@dataclass
class Question:
    """One MMMU question; images stay as the parquet's {bytes, path} dicts until asked for."""

    id: str
    subject: str
    question: str
    options: list[str]
    answer: Gold
    question_type: str
    topic_difficulty: str = ""
    img_type: str = ""
    subfield: str = ""
    explanation: str = ""
    row: int = 0
    images: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def image_refs(self) -> list[int]:
        """Numbers k of the non-null image_k columns, ascending."""
        return sorted(self.images)

    @property
    def is_multiple_choice(self) -> bool:
        return self.question_type == MULTIPLE_CHOICE

    def image_numbers(self, policy: str = "first") -> list[int]:
        """Which image_k columns a policy sends to the model (see `select_images`)."""
        return select_images(self, policy)

    def load_images(self, policy: str = "first", rgb: bool = True) -> list[Any]:
        """Decode the images chosen by `policy` into PIL images (RGB unless rgb=False).
        Questions loaded with `lazy_images=True` need an `ImageReader` instead."""
        out = []
        for k in select_images(self, policy):
            data = self.images[k].get("bytes")
            if data is None:
                raise ValueError(
                    f"{self.id}: image_{k} was loaded lazily; read it with ImageReader"
                )
            out.append(decode_image(data, rgb, f"{self.id} image_{k}"))
        return out


def decode_image(data: bytes, rgb: bool = True, source: str = "image bytes") -> Any:
    """Image bytes as vLLM prepares them for the model (EXIF orientation applied,
    transparency on white, RGB), fully decoded so errors surface here, not in the engine;
    errors are ParameterErrors naming ``source``. ``rgb=False``: the image as stored."""
    if rgb:
        from kit.images import decode_image_bytes

        return decode_image_bytes(data, source, "image")
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img


class ImageReader:
    """Image bytes of lazily loaded questions, read from their parquet file on demand.

    Keeps the image columns of ONE parquet file (one subject) in memory at a time; callers
    that walk questions in official order therefore read each file once, and memory is bounded
    by the largest subject instead of growing with the number of questions."""

    def __init__(self) -> None:
        self._file: str | None = None
        self._table: Any = None

    def image_bytes(self, question: Question, k: int) -> bytes:
        ref = question.images[k]
        if ref.get("bytes") is not None:
            return ref["bytes"]
        if ref["file"] != self._file:
            import pyarrow.parquet as pq

            names = set(pq.ParquetFile(ref["file"]).schema_arrow.names)
            self._table = None  # free the previous file before reading the next
            self._table = pq.read_table(
                ref["file"], columns=[c for c in IMAGE_COLUMNS if c in names]
            )
            self._file = ref["file"]
        value = self._table.column(f"image_{k}")[ref["file_row"]].as_py()
        return value["bytes"]

    def load_images(self, question: Question, policy: str = "first", rgb: bool = True):
        """Decoded images chosen by `policy`, in order (PIL errors propagate)."""
        return [
            decode_image(self.image_bytes(question, k), rgb, f"{question.id} image_{k}")
            for k in select_images(question, policy)
        ]

    def close(self) -> None:
        self._file = None
        self._table = None


def parse_options(s: str | Sequence[str] | None) -> list[str]:
    """The options column is a Python list literal in a string ("[]" for open questions)."""
    if s is None:
        return []
    if not isinstance(s, str):
        return [str(o) for o in s]
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"options is not a Python list literal: {s[:80]!r}") from exc
    if not isinstance(value, list | tuple):
        raise ValueError(f"options is not a list: {s[:80]!r}")
    return [str(o) for o in value]


def parse_gold(answer: Any) -> Gold:
    """Golds such as "['24/7', '3.429']" are lists (the official answer file stores lists)."""
    if isinstance(answer, list | tuple):
        return [str(a) for a in answer]
    text = str(answer)
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, list):
            return [str(a) for a in value]
    return text


def letters(n: int) -> list[str]:
    """Option letters A, B, C, ... for n options (official get_multi_choice_info)."""
    return [chr(ord("A") + i) for i in range(n)]


def index_to_answer(options: Sequence[str]) -> dict[str, str]:
    """Letter -> option text, as used by the option-text fallback of the parser."""
    return dict(zip(letters(len(options)), options, strict=True))


def build_prompt(question: Question) -> str:
    """The official prompt text; `<image N>` markers stay literally in it."""
    if question.is_multiple_choice:
        listing = "".join(f"({k}) {opt}\n" for k, opt in index_to_answer(question.options).items())
        return f"{question.question}\n{listing}\n{MC_INSTRUCTION}"
    return f"{question.question}\n{OPEN_INSTRUCTION}"


def referenced_images(question: Question) -> list[int]:
    """Image numbers named by `<image N>` in question then options: first appearance, unique,
    existing columns only."""
    seen: list[int] = []
    for text in (question.question, *question.options):
        for match in _IMAGE_MARKER.finditer(text):
            k = int(match.group(1))
            if k in question.images and k not in seen:
                seen.append(k)
    return seen


def select_images(question: Question, policy: str) -> list[int]:
    """`first`: image_1 only (official and vendor protocol). `all`: the referenced images; a
    question that references none gets all its non-null images so it is never sent blind."""
    if policy == "first":
        return [1] if 1 in question.images else []
    if policy == "all":
        return referenced_images(question) or question.image_refs
    raise ValueError(f"unknown image policy {policy!r}; use one of {IMAGE_POLICIES}")


def iter_chunks(items: Sequence[T] | Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items, so callers decode images chunk by chunk."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------------------------
# Response parsing (official eval_utils semantics)
# --------------------------------------------------------------------------------------------

_EDGE_PUNCTUATION = (",", ".", "!", "?", ";", ":", "'")


def parse_multi_choice(
    response: str,
    all_choices: Sequence[str],
    index2ans: Mapping[str, str],
    rng: random.Random,
) -> tuple[str, bool]:
    """Return (letter, used_fallback). Candidates: "(X)", else " X ", else (responses of more
    than 5 words) option texts; several -> the one found last; none -> rng.choice."""
    if not all_choices:
        return "", False
    text = response
    for ch in _EDGE_PUNCTUATION:  # one character at a time, in this order, like the original
        text = text.strip(ch)
    text = f" {text} "

    bracketed = [c for c in all_choices if f"({c})" in text]
    if bracketed:
        return _last_found(bracketed, lambda c: text.rfind(f"({c})")), False
    spaced = [c for c in all_choices if f" {c} " in text]
    if spaced:
        return _last_found(spaced, lambda c: text.rfind(f" {c} ")), False
    if len(text.split()) > 5:
        lowered = text.lower()
        by_text = [c for c, ans in index2ans.items() if ans.lower() in lowered]
        if by_text:
            return _last_found(by_text, lambda c: lowered.rfind(index2ans[c].lower())), False
    return rng.choice(list(all_choices)), True


def _last_found(candidates: list[str], position: Any) -> str:
    """The candidate whose match starts last; ties go to the earlier letter (np.argmax)."""
    best = candidates[0]
    best_pos = position(best)
    for c in candidates[1:]:
        pos = position(c)
        if pos > best_pos:
            best, best_pos = c, pos
    return best


def check_is_number(s: str) -> bool:
    """True when float() accepts the string once commas are removed."""
    try:
        float(s.replace(",", ""))
    except ValueError:
        return False
    return True


def normalize_str(s: str) -> list[str | float]:
    """Numbers -> [round(float, 2)]; text -> [lower]; a single character c -> [" c", "c "]
    so that a one-letter answer cannot match inside any word."""
    s = s.strip()
    if check_is_number(s):
        return [round(float(s.replace(",", "")), 2)]
    s = s.lower()
    if len(s) == 1:
        return [" " + s, s + " "]
    return [s]


_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def extract_numbers(s: str) -> list[str]:
    """All numbers in the text: comma-grouped, then scientific, then simple (official order)."""
    return _NUM_COMMAS.findall(s) + _NUM_SCIENTIFIC.findall(s) + _NUM_SIMPLE.findall(s)


_KEY_INDICATORS = (
    "could be ",
    "so ",
    "is ",
    "thus ",
    "therefore ",
    "final ",
    "answer ",
    "result ",
)
_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}


def key_subresponses(response: str) -> list[str]:
    """Per line, the shortest tail after an answer indicator ("=" only on the last line);
    the whole (lower-cased) response when no line has one."""
    text = response.strip().strip(".").lower()
    # The official split is r"\.\s(?=[A-Z])|\n" on lower-cased text: only newlines can match.
    lines = text.split("\n")
    keys: list[str] = []
    for i, line in enumerate(lines):
        indicators = _KEY_INDICATORS + (("=",) if i == len(lines) - 1 else ())
        shortest: str | None = None
        for ind in indicators:
            if ind in line:
                tail = line.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            keys.append(shortest)
    return keys or [text]


def parse_open(response: str) -> list[str | float]:
    """Normalized candidate answers: key sub-responses plus every number in them, unique."""
    keys = key_subresponses(response)
    raw = list(keys)
    for key in keys:
        raw.extend(extract_numbers(key))
    normalized = [v for item in raw for v in normalize_str(item)]
    return list(dict.fromkeys(normalized))


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def eval_multi_choice(gold: Gold, pred: str) -> bool:
    """Exact letter match, or membership when the gold is a list."""
    if isinstance(gold, list):
        return pred in gold
    return gold == pred


def eval_open(gold: Gold, pred: Sequence[str | float]) -> bool:
    """A text prediction is right if a text gold is a substring of it; a number prediction
    if it equals a gold number (both rounded to 2 decimals)."""
    golds = [
        g for item in (gold if isinstance(gold, list) else [gold]) for g in normalize_str(item)
    ]
    for p in pred:
        if isinstance(p, str):
            if any(isinstance(g, str) and g in p for g in golds):
                return True
        elif p in golds:
            return True
    return False


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


def vendor_multi_choice(response: str) -> str:
    """The vendor's multiple-choice "parse": the response without surrounding whitespace
    (its Phi3VImageInput.dataset_pred_post_process); the gold must equal it exactly."""
    return response.strip()


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


def official_order(questions: Iterable[Question]) -> list[Question]:
    """Sort by official subject order (unknown subjects last, by name), then dataset row."""
    return sorted(
        questions,
        key=lambda q: (_SUBJECT_RANK.get(q.subject, len(SUBJECTS)), q.subject, q.row),
    )


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """Accuracy rounded to 3 decimals, with the counts it came from."""

    acc: float
    n: int
    correct: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"acc": self.acc, "n": self.n, "correct": self.correct}


@dataclass
class Counts:
    questions: int
    answered: int
    errors: int
    fallbacks: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


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


def _accuracy_by(records: Iterable[QuestionResult], key: Any) -> dict[str, Accuracy]:
    """Plain accuracy per value of key(record), keys in first-seen order."""
    tally: dict[str, list[int]] = {}
    for r in records:
        slot = tally.setdefault(key(r), [0, 0])
        slot[0] += int(r.correct)
        slot[1] += 1
    return {k: Accuracy(round(c / n, 3), n, c) for k, (c, n) in tally.items()}


def summarize(
    records: Sequence[QuestionResult], seed: int | None = FALLBACK_SEED, scoring: str = OFFICIAL
) -> ScoreReport:
    """Aggregate verdicts: subjects, groups and Overall the official way (micro-averages of
    unrounded subject accuracies, rounded to 3 decimals), whichever scoring made them. Groups
    without data are left out."""
    raw: dict[str, tuple[float, int, int]] = {}
    for subject, acc in _accuracy_by(records, lambda r: r.subject).items():
        raw[subject] = (acc.correct / acc.n, acc.n, acc.correct)
    ordered = sorted(raw, key=lambda s: (_SUBJECT_RANK.get(s, len(SUBJECTS)), s))

    subjects = {s: Accuracy(round(raw[s][0], 3), raw[s][1], raw[s][2]) for s in ordered}
    groups: dict[str, Accuracy] = {}
    for group, members in GROUPS.items():
        present = [s for s in members if s in raw]
        if present:
            acc = micro_average((raw[s][0], raw[s][1]) for s in present)
            groups[group] = Accuracy(
                round(acc, 3), sum(raw[s][1] for s in present), sum(raw[s][2] for s in present)
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


def is_letter(value: Any) -> bool:
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
    return summarize(records, seed=seed)


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
    return summarize(records, seed=None, scoring=VENDOR_STRICT)


def differing_verdicts(official: ScoreReport, vendor: ScoreReport) -> list[str]:
    """Ids of the questions the two scorings judge differently, in official order."""
    strict = {r.id: r.correct for r in vendor.records}
    return [r.id for r in official.records if r.id in strict and strict[r.id] != r.correct]


# --------------------------------------------------------------------------------------------
# Dataset loading
# --------------------------------------------------------------------------------------------


def split_files(dataset_dir: Path, subject: str, split: str) -> list[Path]:
    """The parquet shard(s) of one subject and split (the hub has one: -00000-of-00001)."""
    folder = dataset_dir / subject
    return sorted(folder.glob(f"{split}-*.parquet")) if folder.is_dir() else []


def resolve_subjects(subjects: str | Sequence[str] | None) -> list[str]:
    """Validate subject names (None or "all" = all 30) and put them in official order."""
    if subjects is None or subjects == "all":
        return list(SUBJECTS)
    names = [subjects] if isinstance(subjects, str) else list(subjects)
    unknown = [s for s in names if s not in _SUBJECT_RANK]
    if unknown:
        hints = []
        for s in unknown:
            close = difflib.get_close_matches(s, SUBJECTS, n=1, cutoff=0.5)
            if not close:
                lowered = {x.lower(): x for x in SUBJECTS}
                close = [lowered[s.lower()]] if s.lower() in lowered else []
            hints.append(f"{s!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DatasetError(
            f"Unknown MMMU subject(s): {', '.join(hints)}. Subject names are case-sensitive "
            f"folder names; valid ones: {', '.join(SUBJECTS)}."
        )
    return sorted(set(names), key=_SUBJECT_RANK.__getitem__)


def check_split(split: str) -> None:
    """Refuse the test split (answers withheld) and unknown splits."""
    if split == "test":
        raise DatasetError(
            "The MMMU test split has its answers withheld (the hub stores empty golds), so it "
            "cannot be scored locally. Use split 'validation' (900 questions, the split the "
            "model card and the vendor report) or 'dev' (5 per subject)."
        )
    if split not in SPLITS_WITH_ANSWERS:
        raise DatasetError(
            f"Unknown MMMU split {split!r}; use one of {', '.join(SPLITS_WITH_ANSWERS)}."
        )


def load_split(
    dataset_dir: str | Path,
    split: str,
    subjects: str | Sequence[str] | None = None,
    limit: int | None = None,
    lazy_images: bool = False,
) -> list[Question]:
    """Read `<dataset_dir>/<Subject>/<split>-*.parquet` for each subject, in official order.
    `limit` keeps the first N questions of EACH subject (quick runs keep every group).
    With `lazy_images`, image bytes stay on disk until an `ImageReader` asks for them."""
    files = check_dataset(dataset_dir, split, subjects)
    questions: list[Question] = []
    for s, paths in files.items():
        rows = [
            row
            for path in paths
            for row in (_read_rows_lazy(path) if lazy_images else _read_rows(path))
        ]
        if limit is not None:
            rows = rows[: max(limit, 0)]
        questions.extend(_to_question(s, i, row) for i, row in enumerate(rows))
    return questions


def check_dataset(
    dataset_dir: str | Path, split: str, subjects: str | Sequence[str] | None = None
) -> dict[str, list[Path]]:
    """Check folder, subject files and required columns (parquet schemas only: cheap) and
    return subject -> parquet files, in official order."""
    check_split(split)
    names = resolve_subjects(subjects)
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"MMMU dataset folder {str(root)!r} does not exist. Expected one folder per subject "
            f"holding {split}-00000-of-00001.parquet; to get it, {DOWNLOAD_HINT}."
        )
    files = {s: split_files(root, s, split) for s in names}
    missing = [s for s in names if not files[s]]
    if missing:
        raise DatasetError(
            f"MMMU folder {str(root)!r} lacks the {split!r} split of {len(missing)} subject(s): "
            f"{', '.join(missing)} (expected <Subject>/{split}-00000-of-00001.parquet). To get "
            f"them, {DOWNLOAD_HINT}."
        )
    for paths in files.values():
        for path in paths:
            _columns(path)
    return files


def present_subjects(dataset_dir: str | Path, split: str) -> list[str]:
    """Subjects (official order) whose folder holds the split's parquet file(s)."""
    root = Path(dataset_dir).expanduser()
    return [s for s in SUBJECTS if split_files(root, s, split)]


def _columns(path: Path) -> list[str]:
    """The columns to read from one parquet file, after checking the required ones exist."""
    import pyarrow.parquet as pq

    try:
        names = set(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-parquet files
        raise DatasetError(
            f"{str(path)!r} cannot be read as a parquet file ({exc}). Re-download it: "
            f"{DOWNLOAD_HINT}."
        ) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise DatasetError(
            f"{str(path)!r} is not an MMMU parquet file: column(s) {', '.join(missing)} "
            f"missing (required: {', '.join(REQUIRED_COLUMNS)}). Re-download it: {DOWNLOAD_HINT}."
        )
    return [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of one parquet file as dicts, after checking the required columns exist."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=_columns(path)).to_pylist()


def _read_rows_lazy(path: Path) -> list[dict[str, Any]]:
    """Rows without image bytes: each present image becomes a reference
    {"bytes": None, "path", "file", "file_row"} that `ImageReader` resolves later."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    columns = _columns(path)
    table = pq.read_table(path, columns=columns)
    image_cols = [c for c in columns if c in IMAGE_COLUMNS]
    rows = table.drop_columns(image_cols).to_pylist()
    for col in image_cols:
        lengths = pc.binary_length(pc.struct_field(table[col], "bytes")).to_pylist()
        names = pc.struct_field(table[col], "path").to_pylist()
        for i, row in enumerate(rows):
            row[col] = (
                {"bytes": None, "path": names[i], "file": str(path), "file_row": i}
                if lengths[i]
                else None
            )
    return rows


def _to_question(subject: str, row_index: int, row: dict[str, Any]) -> Question:
    qid = str(row["id"])
    try:
        options = parse_options(row["options"])
    except ValueError as exc:
        raise DatasetError(f"Question {qid}: {exc}.") from exc
    images = {
        k: img
        for k in range(1, 8)
        if isinstance(img := row.get(f"image_{k}"), dict) and (img.get("bytes") or img.get("file"))
    }
    return Question(
        id=qid,
        subject=subject,
        question=str(row["question"] or ""),
        options=options,
        answer=parse_gold(row["answer"]),
        question_type=str(row["question_type"]),
        topic_difficulty=str(row.get("topic_difficulty") or ""),
        img_type=str(row.get("img_type") or ""),
        subfield=str(row.get("subfield") or ""),
        explanation=str(row.get("explanation") or ""),
        row=row_index,
        images=images,
    )
