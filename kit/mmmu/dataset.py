"""The MMMU dataset: a split read from the hub's parquet layout, checked before any engine starts.

A dataset is a local folder, a hub id (its parquet files for the split and subjects fetched
into the hub cache) or ``fixture``, the synthetic folder built once in the kit's cache.
Folder, subject files and required columns are checked from parquet schemas alone, and a
problem is a DatasetError (a ParameterError) saying what to do, so a bad dataset stops
``kit run`` before a run folder is made. The test split is refused: its answers are
withheld. Questions can be loaded without their image bytes; :class:`ImageReader` then reads
one subject's images at a time, so memory stays bounded by the largest subject.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.core.params import ParameterError
from kit.mmmu.fixture import ensure_fixture
from kit.mmmu.questions import (
    _SUBJECT_RANK,
    IMAGE_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SPLITS_WITH_ANSWERS,
    SUBJECTS,
    Question,
    decode_image,
    parse_gold,
    parse_options,
    select_images,
)
from kit.models.checkpoint import HUB_ID

DOWNLOAD_HINT = (
    "run the download notebook: python -m kit run download -f params/download-mmmu.yaml, "
    "or copy the MMMU/MMMU hub dataset folder here"
)


class DatasetError(ParameterError):
    """The MMMU folder cannot be used as asked; the message says what to do.

    A ParameterError (hence a ValueError), so `python -m kit run` rejects it before any run
    folder is made or engine started, like any other bad parameter."""


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


FIXTURE = "fixture"


def fixture_dataset() -> Path:
    """The synthetic MMMU folder (all 30 subjects, 8 questions each, dev and validation),
    built once under the kit's cache."""

    return ensure_fixture(cache_root(), subjects=SUBJECTS)


def resolve_dataset(
    dataset: str, split: str = "validation", subjects: Sequence[str] | None = None
) -> Path:
    """``fixture`` -> the cached synthetic folder; an existing folder; or a hub id, whose
    parquet files for the split and subjects are fetched into the hub cache."""
    if dataset == FIXTURE:
        return fixture_dataset()
    path = Path(dataset).expanduser()
    if path.is_dir():
        return path.resolve()
    if HUB_ID.match(dataset) and not dataset.startswith((".", "/", "~")):
        return _hub_snapshot(dataset, split, subjects)
    raise DatasetError(
        f"Parameter 'dataset': MMMU folder {dataset!r} does not exist. Expected one folder per "
        f"subject holding {split}-00000-of-00001.parquet; to get it, {DOWNLOAD_HINT}. Use "
        "'fixture' for the synthetic test set."
    )


def _hub_snapshot(repo_id: str, split: str, subjects: Sequence[str] | None) -> Path:
    names = resolve_subjects(subjects)
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id=repo_id,
            repo_type="dataset",
            allow_patterns=[f"{s}/{split}-*.parquet" for s in names],
        )
    except Exception as exc:  # offline, unknown repo, gated, ...
        raise DatasetError(
            f"Parameter 'dataset': {repo_id!r} is not a local folder, and fetching it as a hub "
            f"dataset failed ({type(exc).__name__}: {str(exc)[:200]}). Pass a local MMMU folder "
            f"instead; to get one, {DOWNLOAD_HINT}."
        ) from exc
    return Path(folder)
