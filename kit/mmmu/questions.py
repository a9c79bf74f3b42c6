"""The MMMU protocol's questions as pure functions: subjects, question shape, images, prompt.

Part of the MMMU protocol (MMMU-Benchmark/MMMU, eval/*_utils.py), deterministic and
engine-free: the 30 subjects and their groups, one :class:`Question` per parquet row (options
and list golds parsed from their string literals), which images a policy sends, and the
official prompt. The engine only has to turn ``official_prompt(q)`` plus
``q.load_images(policy)`` into a response string per question id.

Faithfulness notes: subjects are evaluated in ``SUBJECTS`` order (the official CAT_SHORT2LONG
order, which is alphabetical) and questions within a subject in dataset order
(:func:`official_order`), since the random fallback of multiple-choice parsing depends on that
order. The image policy ``first`` (image_1 only) is the official and the vendor's protocol.
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.core.images import decode_image_bytes

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

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."

OPEN_INSTRUCTION = "Answer the question using a single word or phrase."

_IMAGE_MARKER = re.compile(r"<image (\d+)>")

_SUBJECT_RANK = {s: i for i, s in enumerate(SUBJECTS)}

Gold = str | list[str]


def decode_image(data: bytes, rgb: bool = True, source: str = "image bytes") -> Any:
    """Image bytes as vLLM prepares them for the model (EXIF orientation applied,
    transparency on white, RGB), fully decoded so errors surface here, not in the engine;
    errors are ParameterErrors naming ``source``. ``rgb=False``: the image as stored."""
    if rgb:
        return decode_image_bytes(data, source, "image")
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img


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


def official_prompt(question: Question) -> str:
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


def official_order(questions: Iterable[Question]) -> list[Question]:
    """Sort by official subject order (unknown subjects last, by name), then dataset row."""
    return sorted(
        questions,
        key=lambda q: (_SUBJECT_RANK.get(q.subject, len(SUBJECTS)), q.subject, q.row),
    )
