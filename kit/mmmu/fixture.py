"""A small synthetic MMMU folder with the hub's exact layout and columns, for tests and smoke runs.

The real dataset is large and needs a download; the fixture exercises every code path that
matters (2-9 options, open numeric / text / list golds, several images, `<image N>` markers in
questions and options, odd image sizes) and is reproducible: same seed, same parquet content
(byte for byte with the same pyarrow and Pillow versions).
The questions are about the drawn pictures (colour, shape, count), so a real model can answer.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.mmmu.questions import IMAGE_COLUMNS, SPLITS_WITH_ANSWERS, SUBJECTS

#: Bump whenever the generated content changes, so cached fixtures are rebuilt.
FIXTURE_VERSION = 1

DEFAULT_SUBJECTS = ("Art", "Economics", "History", "Math", "Physics")

DEFAULT_PER_SUBJECT = 8

MARKER_FILE = ".fixture.json"


#: Hub column order of MMMU/MMMU parquet files.
COLUMNS = (
    "id",
    "question",
    "options",
    "explanation",
    *IMAGE_COLUMNS,
    "img_type",
    "answer",
    "topic_difficulty",
    "question_type",
    "subfield",
)

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 30),
    "purple": (130, 40, 170),
    "orange": (245, 140, 20),
    "black": (10, 10, 10),
    "pink": (245, 130, 190),
    "cyan": (30, 200, 210),
    "brown": (120, 70, 30),
}

SHAPES = ("circle", "square", "triangle", "diamond")

SIZES = ((640, 480), (300, 900), (1024, 1024), (1000, 500), (480, 640), (120, 80))


#: Option counts cycled through the multiple-choice questions (covers 2..9).
OPTION_COUNTS = (4, 2, 9, 5, 3, 7, 6, 8)


#: Question kinds cycled per subject; the list gold appears once per subject.
KINDS = ("mc_colour", "open_count", "mc_image_options", "open_shape", "mc_shape", "open_list")

DIFFICULTIES = ("Easy", "Medium", "Hard")


def _image_schema() -> Any:
    import pyarrow as pa

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def arrow_schema() -> Any:
    """The hub schema: strings everywhere, images as struct{bytes, path}, plus the
    `huggingface` metadata so `datasets` decodes the image columns as Image features."""
    import pyarrow as pa

    fields = [(c, _image_schema() if c in IMAGE_COLUMNS else pa.string()) for c in COLUMNS]
    features = {
        c: {"_type": "Image"} if c in IMAGE_COLUMNS else {"dtype": "string", "_type": "Value"}
        for c in COLUMNS
    }
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    return pa.schema(fields, metadata=meta)


def draw_image(
    rng: random.Random, size: tuple[int, int], colour: str, shape: str, count: int
) -> bytes:
    """PNG bytes of `count` shapes of one colour on a light background."""
    from PIL import Image, ImageDraw

    w, h = size
    bg = tuple(rng.randint(225, 250) for _ in range(3))
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    cell = max(8, min(w, h) // 4)
    fill = COLOURS[colour]
    for _ in range(count):
        x = rng.randint(0, max(0, w - cell))
        y = rng.randint(0, max(0, h - cell))
        box = (x, y, x + cell - 1, y + cell - 1)
        if shape == "circle":
            draw.ellipse(box, fill=fill)
        elif shape == "square":
            draw.rectangle(box, fill=fill)
        elif shape == "triangle":
            draw.polygon(
                [(x + cell // 2, y), (x, y + cell - 1), (x + cell - 1, y + cell - 1)], fill
            )
        else:
            mid = cell // 2
            draw.polygon(
                [(x + mid, y), (x + cell - 1, y + mid), (x + mid, y + cell - 1), (x, y + mid)], fill
            )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _image(rng: random.Random, qid: str, k: int, size: tuple[int, int], **kw: Any) -> dict:
    return {"bytes": draw_image(rng, size, **kw), "path": f"{qid}_image_{k}.png"}


def _mc_options(rng: random.Random, correct: str, pool: Sequence[str], n: int) -> tuple[list, str]:
    """n options from pool including `correct`, shuffled; returns (options, gold letter)."""
    others = [p for p in pool if p != correct]
    opts = [correct, *rng.sample(others, min(n, len(pool)) - 1)]
    rng.shuffle(opts)
    return opts, chr(ord("A") + opts.index(correct))


def make_row(rng: random.Random, split: str, subject: str, index: int) -> dict[str, Any]:
    """One question of the kind scheduled for position `index` (0-based) in the subject."""
    qid = f"{split}_{subject}_{index + 1}"
    kind = KINDS[index % len(KINDS)]
    size = SIZES[(index + len(subject)) % len(SIZES)]
    colour = rng.choice(list(COLOURS))
    shape = rng.choice(SHAPES)
    count = rng.randint(1, 6)
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(
        id=qid,
        explanation="",
        img_type="['Diagrams']",
        topic_difficulty=DIFFICULTIES[(index + len(subject)) % len(DIFFICULTIES)],
        subfield=f"Synthetic {subject}",
        question_type="multiple-choice" if kind.startswith("mc") else "open",
        options="[]",
    )
    row["image_1"] = _image(rng, qid, 1, size, colour=colour, shape=shape, count=count)
    n_opts = OPTION_COUNTS[(index + SUBJECTS.index(subject)) % len(OPTION_COUNTS)]

    if kind == "mc_colour":
        opts, gold = _mc_options(rng, colour, list(COLOURS), n_opts)
        row.update(question="What colour are the shapes in <image 1>?", answer=gold)
        row["options"] = repr(opts)
    elif kind == "mc_shape":
        # A second, unreferenced-in-text image tests the image policies.
        other = rng.choice([s for s in SHAPES if s != shape])
        row["image_2"] = _image(rng, qid, 2, (300, 900), colour=colour, shape=other, count=2)
        opts, gold = _mc_options(rng, shape, SHAPES, min(n_opts, len(SHAPES)))
        row.update(question="Which shape is drawn in <image 1>? Ignore the other picture.")
        row.update(options=repr(opts), answer=gold)
    elif kind == "mc_image_options":
        n = max(2, min(n_opts, 4))
        pool = [c for c in COLOURS if c != colour]
        answer_pos = rng.randrange(n)
        for k in range(n):
            c = colour if k == answer_pos else pool[(index + k) % len(pool)]
            row[f"image_{k + 2}"] = _image(
                rng, qid, k + 2, (200, 150), colour=c, shape=shape, count=1
            )
        opts = [f"<image {k + 2}>" for k in range(n)]
        row.update(
            question=f"<image 1> shows {count} shape(s). Which picture has the same colour?",
            options=repr(opts),
            answer=chr(ord("A") + answer_pos),
        )
    elif kind == "open_count":
        row.update(question=f"How many {shape}s are in <image 1>?", answer=str(count))
    elif kind == "open_shape":
        row.update(question="Name the shape drawn in <image 1>.", answer=shape)
    else:  # open_list: several accepted golds, stored as a list literal string like the hub
        row.update(
            question="Give the ratio of 24 to 7 shown by <image 1> (fraction or decimal).",
            answer="['24/7', '3.429']",
        )
    return row


def _subject_rng(seed: int, split: str, subject: str) -> random.Random:
    """Stable per-subject stream, so a subject's content does not depend on the others."""
    return random.Random(zlib.crc32(f"{seed}/{split}/{subject}".encode()))


def write_fixture(
    dest_dir: str | Path,
    seed: int = 0,
    subjects: Sequence[str] = DEFAULT_SUBJECTS,
    per_subject: int = DEFAULT_PER_SUBJECT,
    split: str = "validation",
) -> Path:
    """Write `<dest>/<Subject>/<split>-00000-of-00001.parquet` for each subject; returns dest.
    Other splits already in dest are left alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    unknown = [s for s in subjects if s not in SUBJECTS]
    if unknown:
        raise ValueError(f"unknown MMMU subjects: {unknown}")
    if split not in SPLITS_WITH_ANSWERS:
        raise ValueError(f"fixture split must be one of {SPLITS_WITH_ANSWERS}, got {split!r}")
    if per_subject < 1:
        raise ValueError("per_subject must be >= 1")
    dest = Path(dest_dir)
    schema = arrow_schema()
    for subject in subjects:
        rng = _subject_rng(seed, split, subject)
        rows = [make_row(rng, split, subject, i) for i in range(per_subject)]
        table = pa.Table.from_pylist(rows, schema=schema)
        folder = dest / subject
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
    return dest


def _fixture_params(seed: int, subjects: Sequence[str], per_subject: int, splits: Sequence[str]):
    return {
        "version": FIXTURE_VERSION,
        "seed": seed,
        "subjects": list(subjects),
        "per_subject": per_subject,
        "splits": list(splits),
    }


def ensure_fixture(
    cache_dir: str | Path,
    seed: int = 0,
    subjects: Sequence[str] = DEFAULT_SUBJECTS,
    per_subject: int = DEFAULT_PER_SUBJECT,
    splits: Sequence[str] = SPLITS_WITH_ANSWERS,
) -> Path:
    """Build the fixture once under cache_dir and reuse it. The folder name hashes the
    parameters and generator version; it is built in a temp folder and renamed into place,
    so a crash or a concurrent build never leaves a half-written fixture."""
    params = _fixture_params(seed, subjects, per_subject, splits)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    cache = Path(cache_dir)
    target = cache / f"mmmu-fixture-{digest}"
    if _valid(target, params):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mmmu-fixture-", dir=cache))
    try:
        for split in splits:
            write_fixture(tmp, seed=seed, subjects=subjects, per_subject=per_subject, split=split)
        (tmp / MARKER_FILE).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
        if target.exists() and not _valid(target, params):
            shutil.rmtree(target)  # stale or half-deleted: replace it
        try:
            os.rename(tmp, target)
        except OSError:
            if not _valid(target, params):  # someone else won the race with a valid build
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _valid(folder: Path, params: dict) -> bool:
    marker = folder / MARKER_FILE
    try:
        return json.loads(marker.read_text()) == params
    except (OSError, ValueError):
        return False
