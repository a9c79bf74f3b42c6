"""The MMMU notebook's engine side: parameters, batched resumable answering, scoring.

The protocol itself (prompts, parsing, both scorings, aggregation) is in :mod:`kit.mmmu`; the
results.json section, tables, charts and gallery in :mod:`kit.mmmu_report`. How a run proceeds:

1. :func:`prepare` resolves the dataset (a folder, a hub id, or ``fixture``), loads the
   questions in official order WITHOUT their image bytes, and reads the run's
   ``predictions.jsonl``: ids already there are skipped (``--resume``).
2. :func:`answer` sends the remaining questions to vLLM in chunks (``batch_size`` questions,
   or ``chunk_size`` when ``batch_size`` is 0), decoding each chunk's images just before it is
   submitted; every answer is parsed and appended to ``predictions.jsonl`` when its chunk
   returns, so an interrupted run loses at most one chunk.
3. :func:`score` rescores everything with ``kit.mmmu.score_predictions`` (ONE
   ``random.Random(42)`` consumed in official order, as the official code does) and with the
   vendor-strict rule (``kit.mmmu.score_predictions_vendor``), and records the ``mmmu``
   section of ``results.json``.

Parsing at answer time uses the same generator replayed in official order, so the parsed
answer written to each line equals the final verdict; :func:`score` checks that.

``predictions.jsonl`` has one reader, :func:`read_predictions` (also used by
``python -m kit mmmu-score``); every JSON file written here is strict JSON.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit import jsonio
from kit import mmmu as M
from kit.backend import Backend, Completion, GenRequest, GenSampling
from kit.engine import HUB_ID, AnswerParams
from kit.mmmu_report import mmmu_section
from kit.params import ParameterError, check_generation
from kit.pauses import pause_point
from kit.progress import Progress
from kit.prompts import PHI3V, ModelFamily

FIXTURE = "fixture"
PREDICTIONS_FILE = "predictions.jsonl"
PREDICTIONS_META_FILE = "predictions.meta.json"
ALL = "all"
#: Parameters that change answers: a resumed run must keep them.
ANSWER_PARAMETERS = (
    "model",
    "dataset",
    "split",
    "image_policy",
    "num_crops",
    "max_output_len",
    "temperature",
    "dtype",
    "seed",
)
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
PROGRESS_INTERVAL_S = 5.0
#: Engine arguments this notebook sets unless engine_args gives them. Every MMMU image is seen
#: once, so vLLM's multimodal processor cache (4 GiB by default, kept in the frontend AND the
#: engine core) only grows with the number of questions; off, peak memory stays flat.
ENGINE_DEFAULTS = {"mm_processor_cache_gb": 0}
#: Exceptions a single bad request raises (too many tokens or images, odd image sizes); the
#: question is recorded as an error. Anything else (engine died, ...) stops the run.
INPUT_ERRORS = (ValueError, TypeError, ZeroDivisionError, IndexError, OverflowError)


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass
class MMMUParams(AnswerParams):
    dataset: str = FIXTURE  # MMMU-layout folder, hub id (MMMU/MMMU), or "fixture"
    split: str = "validation"
    subjects: list[str] = field(default_factory=lambda: [ALL])
    limit: int | None = None  # questions per subject; None = all
    image_policy: str = "first"  # "first" = image_1 only (official, vendor); "all"
    max_output_len: int = 10
    temperature: float = 0.0
    batch_size: int = 0  # 0 = chunks of chunk_size, vLLM batches; 1 = vendor's sequential
    chunk_size: int = 32  # questions per llm.generate call when batch_size is 0
    gallery_size: int = 12  # wrong answers shown in the report

    def check(self) -> None:
        super().check()
        if not self.dataset.strip():
            raise ParameterError(
                "Parameter 'dataset' is empty: give an MMMU folder, the hub id MMMU/MMMU, or "
                "'fixture' for the synthetic test set."
            )
        M.check_split(self.split)
        M.resolve_subjects(self.subject_names())
        if self.limit is not None and self.limit < 1:
            raise ParameterError(
                "Parameter 'limit' (questions per subject) must be at least 1, or None for all."
            )
        if self.image_policy not in M.IMAGE_POLICIES:
            raise ParameterError(
                f"Parameter 'image_policy' must be 'first' (image_1 only: the official and "
                f"vendor protocol) or 'all' (every image the question and options reference), "
                f"got {self.image_policy!r}."
            )
        check_generation(self.max_output_len, self.temperature, "vendor: 10", "0 = greedy, vendor")
        if self.batch_size < 0:
            raise ParameterError(
                "Parameter 'batch_size' must be 0 (let vLLM batch, chunk by chunk), 1 (one "
                "question at a time, the vendor's mode) or a larger fixed batch."
            )
        if self.chunk_size < 1:
            raise ParameterError("Parameter 'chunk_size' must be at least 1.")
        if self.gallery_size < 0:
            raise ParameterError("Parameter 'gallery_size' must be >= 0 (0 = no gallery).")

    def subject_names(self) -> list[str] | None:
        """None for all subjects ([] or ['all']), else the names given."""
        names = [s for s in self.subjects if s]
        return None if not names or names == [ALL] else names

    def preflight(self) -> None:
        """The dataset folder exists and holds the subjects and columns; then the engine's."""
        root = resolve_dataset(self.dataset, self.split, self.subject_names())
        M.check_dataset(root, self.split, self.subject_names())
        super().preflight()

    def check_resume(self, folder: Path) -> None:
        """Before a --resume touches the folder: refuse parameters that change the answers."""
        meta = folder / PREDICTIONS_META_FILE
        if meta.is_file():
            refuse_changed_answers(meta, self)

    @property
    def effective_batch(self) -> int:
        """Questions per llm.generate call."""
        return self.batch_size if self.batch_size > 0 else self.chunk_size


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def fixture_dataset() -> Path:
    """The synthetic MMMU folder (all 30 subjects, 8 questions each, dev and validation),
    built once under the kit's cache."""
    from kit.mmmu_fixture import ensure_fixture
    from kit.smoke import cache_root

    return ensure_fixture(cache_root(), subjects=M.SUBJECTS)


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
    raise M.DatasetError(
        f"Parameter 'dataset': MMMU folder {dataset!r} does not exist. Expected one folder per "
        f"subject holding {split}-00000-of-00001.parquet; to get it, {M.DOWNLOAD_HINT}. Use "
        "'fixture' for the synthetic test set."
    )


def _hub_snapshot(repo_id: str, split: str, subjects: Sequence[str] | None) -> Path:
    names = M.resolve_subjects(subjects)
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id=repo_id,
            repo_type="dataset",
            allow_patterns=[f"{s}/{split}-*.parquet" for s in names],
        )
    except Exception as exc:  # offline, unknown repo, gated, ...
        raise M.DatasetError(
            f"Parameter 'dataset': {repo_id!r} is not a local folder, and fetching it as a hub "
            f"dataset failed ({type(exc).__name__}: {str(exc)[:200]}). Pass a local MMMU folder "
            f"instead; to get one, {M.DOWNLOAD_HINT}."
        ) from exc
    return Path(folder)


# --------------------------------------------------------------------------------------------
# Predictions file
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedPredictions:
    """The lines of a predictions file: the first line of each id, and what was wrong."""

    lines: dict[str, dict[str, Any]]  # id -> record, first occurrence
    duplicates: list[str] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)  # 1-based line numbers
    reasons: dict[int, str] = field(default_factory=dict)  # line number -> why malformed
    line_count: int = 0
    torn_tail: str | None = None  # an unterminated last line, removed from the file

    @property
    def responses(self) -> dict[str, str | None]:
        """id -> response (None: unanswered)."""
        return {qid: record["response"] for qid, record in self.lines.items()}

    def malformed_lines(self) -> list[dict[str, Any]]:
        return [{"line": n, "reason": self.reasons[n]} for n in self.malformed]


def _line_problem(record: Any) -> str | None:
    """Why a decoded line is not a prediction, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    qid = record.get("id")
    if not isinstance(qid, str) or not qid:
        return 'no string "id"'
    if "response" not in record:
        return f'{qid}: no "response"'
    response = record["response"]
    if response is not None and not isinstance(response, str):
        return f'{qid}: "response" is {type(response).__name__}, not a string or null'
    return None


def parse_predictions(text: str) -> LoadedPredictions:
    """One ``{"id", "response", ...}`` object per line. The first line of an id wins; later
    ones are duplicates; lines that are not such objects are malformed, with the reason.
    Lines end at "\n" only: a response may hold U+2028 and other line separators."""
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    out = LoadedPredictions({}, line_count=len(pieces))
    for number, raw in enumerate(pieces, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            problem: str | None = f"not JSON ({getattr(exc, 'msg', exc)})"
        else:
            problem = _line_problem(record)
        if problem is not None:
            out.malformed.append(number)
            out.reasons[number] = problem
            continue
        if record["id"] in out.lines:
            out.duplicates.append(record["id"])
            continue
        out.lines[record["id"]] = record
    return out


def read_predictions(path: Path) -> LoadedPredictions:
    """A predictions file as it is (never modified); OSError if it cannot be read."""
    return parse_predictions(path.read_bytes().decode("utf-8", "replace"))


class PredictionLog:
    """``predictions.jsonl``: one JSON object per answered question, appended and fsynced
    as each chunk returns; never rewritten except to drop a torn last line after a kill."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> LoadedPredictions:
        if not self.path.is_file():
            return LoadedPredictions({})
        data = self.path.read_bytes()
        torn = None
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            torn = data[cut:].decode("utf-8", "replace")
            aside = self.path.with_name(self.path.name + ".torn")
            with aside.open("ab") as fh:
                fh.write(data[cut:] + b"\n")
            with self.path.open("r+b") as fh:
                fh.truncate(cut)
            data = data[:cut]
        out = parse_predictions(data.decode("utf-8", "replace"))
        out.torn_tail = torn
        return out

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        text = "".join(jsonio.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not text:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def answer_fingerprint(params: MMMUParams) -> dict[str, Any]:
    return {k: getattr(params, k) for k in ANSWER_PARAMETERS}


def check_same_parameters(meta_path: Path, params: MMMUParams) -> None:
    """A resumed run must answer with the parameters the earlier answers were made with."""
    if not meta_path.is_file():
        meta_path.write_text(jsonio.dumps(answer_fingerprint(params), indent=2) + "\n")
        return
    refuse_changed_answers(meta_path, params)


def refuse_changed_answers(meta_path: Path, params: MMMUParams) -> None:
    """ParameterError when ``params`` would answer differently from the saved fingerprint."""
    current = answer_fingerprint(params)
    try:
        saved = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(
            f"--resume: {str(meta_path)!r} cannot be read ({exc}), so the parameters the "
            "earlier answers were made with are unknown. Start a new run."
        ) from exc
    changed = {k: (saved.get(k), v) for k, v in current.items() if k in saved and saved[k] != v}
    if changed:
        detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise ParameterError(
            f"This run folder's predictions were made with other parameters ({detail}). "
            "Mixing them would give a meaningless score: resume without changing those "
            "parameters, or start a new run."
        )


# --------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    params: MMMUParams
    dataset_path: Path
    questions: list[M.Question]  # official order, images not loaded
    log: PredictionLog
    previous: dict[str, dict[str, Any]]  # earlier answers of THIS question set, by id
    remaining: list[M.Question]
    ignored_ids: list[str]  # lines whose id is not in this question set
    loaded: LoadedPredictions
    reader: M.ImageReader
    family: ModelFamily = PHI3V

    @property
    def by_id(self) -> dict[str, M.Question]:
        return {q.id: q for q in self.questions}

    def summary_rows(self) -> list[dict[str, Any]]:
        p = self.params
        n_mc = sum(q.is_multiple_choice for q in self.questions)
        rows = {
            "dataset": p.dataset,
            "dataset folder": str(self.dataset_path),
            "split": p.split,
            "subjects": len({q.subject for q in self.questions}),
            "questions": len(self.questions),
            "multiple-choice / open": f"{n_mc} / {len(self.questions) - n_mc}",
            "image policy": p.image_policy,
            "images per prompt (limit_images)": p.limit_images,
            "already answered (predictions.jsonl)": len(self.previous),
            "to answer now": len(self.remaining),
            "questions per llm.generate call": p.effective_batch,
            "predictions file": str(self.log.path),
        }
        if self.ignored_ids:
            rows["lines for other questions (ignored)"] = len(self.ignored_ids)
        if self.loaded.torn_tail is not None:
            rows["torn last line removed (kept in .torn)"] = 1
        if self.loaded.duplicates:
            rows["duplicate lines (first kept)"] = len(self.loaded.duplicates)
        if self.loaded.malformed:
            rows["malformed lines (ignored)"] = len(self.loaded.malformed)
        return [{"name": k, "value": v} for k, v in rows.items()]


def prepare(run: Any) -> Plan:
    """Dataset, questions and the run's predictions file; fixes limit_images from the data."""
    params: MMMUParams = run.params
    root = resolve_dataset(params.dataset, params.split, params.subject_names())
    questions = M.load_split(
        root, params.split, params.subject_names(), params.limit, lazy_images=True
    )
    if not questions:
        raise M.DatasetError(f"No {params.split!r} questions in {str(root)!r}.")
    needed = max(len(M.select_images(q, params.image_policy)) for q in questions)
    if params.limit_images is None:
        params.limit_images = max(1, needed)
    for key, value in ENGINE_DEFAULTS.items():
        params.engine_args.setdefault(key, value)
    log = PredictionLog(run.paths.artifact(PREDICTIONS_FILE))
    loaded = log.load()
    if loaded.lines:
        check_same_parameters(run.paths.artifact(PREDICTIONS_META_FILE), params)
    else:
        run.paths.artifact(PREDICTIONS_META_FILE).write_text(
            jsonio.dumps(answer_fingerprint(params), indent=2) + "\n"
        )
    ids = {q.id for q in questions}
    previous = {i: r for i, r in loaded.lines.items() if i in ids}
    return Plan(
        params=params,
        dataset_path=root,
        questions=questions,
        log=log,
        previous=previous,
        remaining=[q for q in questions if q.id not in previous],
        ignored_ids=[i for i in loaded.lines if i not in ids],
        loaded=loaded,
        reader=M.ImageReader(),
    )


# --------------------------------------------------------------------------------------------
# Answering
# --------------------------------------------------------------------------------------------


class LiveScorer:
    """Parses answers as they arrive with ONE rng consumed in official order.

    Questions are answered in official order and earlier answers are replayed first, so the
    question before any new answer is always known and the draws match `score_predictions`."""

    def __init__(self, questions: Sequence[M.Question], seed: int = M.FALLBACK_SEED):
        self.questions = list(questions)
        self.rng = random.Random(seed)
        self.known: dict[str, str | None] = {}
        self.results: dict[str, M.QuestionResult] = {}
        self._next = 0

    def add(self, qid: str, response: str | None) -> None:
        self.known[qid] = response

    def advance(self) -> list[M.QuestionResult]:
        """Score every question, in order, up to the first unanswered one."""
        done = []
        while self._next < len(self.questions) and self.questions[self._next].id in self.known:
            q = self.questions[self._next]
            result = M.score_question(q, self.known[q.id], self.rng)
            self.results[q.id] = result
            done.append(result)
            self._next += 1
        return done


def question_progress(total: int, already: int, interval_s: float = PROGRESS_INTERVAL_S):
    """Progress lines of an MMMU run: questions done (earlier attempts included), q/s, ETA."""
    return Progress("mmmu", total, "questions", already, interval_s, rate=lambda r: f"{r:.2f} q/s")


@dataclass
class Prepared:
    question: M.Question
    images: list[int]
    prompt: str
    request: GenRequest | None  # None when it failed before the engine
    error: str | None = None


def build_request(
    question: M.Question,
    params: MMMUParams,
    reader: M.ImageReader,
    family: ModelFamily = PHI3V,
) -> Prepared:
    """The chat prompt (``<|image_k|>`` tags for the images sent, in order, then the official
    text) and decoded images; a decode failure becomes an error, not an exception."""
    numbers = M.select_images(question, params.image_policy)
    text = M.build_prompt(question)
    prompt = family.prompt(text, len(numbers))
    if params.limit_images is not None and len(numbers) > params.limit_images:
        return Prepared(
            question,
            numbers,
            prompt,
            None,
            f"needs {len(numbers)} images but limit_images is {params.limit_images}",
        )
    # Reading the parquet file may fail (disk, mount): that stops the run, which can resume.
    # Decoding fails only for a bad image: that question is recorded as an error.
    raw = [reader.image_bytes(question, k) for k in numbers]
    try:
        images = [
            M.decode_image(data, source=f"{question.id} image_{k}")
            for k, data in zip(numbers, raw, strict=True)
        ]
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, ValueError, ...
        return Prepared(
            question, numbers, prompt, None, f"image failed to decode: {type(exc).__name__}: {exc}"
        )
    return Prepared(question, numbers, prompt, GenRequest(text, images, prompt))


@dataclass
class AnswerStats:
    answered: int = 0  # questions sent to the engine and answered in this attempt
    errors: int = 0  # questions recorded as errors in this attempt
    seconds: float = 0.0  # wall time of the answering loop
    output_tokens: int = 0
    prompt_tokens: int = 0
    chunks: int = 0
    replay_mismatches: int = 0  # earlier lines whose parse differs from the replay

    @property
    def questions_per_s(self) -> float | None:
        done = self.answered + self.errors
        return done / self.seconds if self.seconds > 0 and done else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "questions_per_s": self.questions_per_s}


def _run_chunk(
    engine: Backend, prepared: list[Prepared], sampling: GenSampling
) -> dict[str, tuple[Completion | None, str | None]]:
    """id -> (Completion or None, error). One generate call; if the engine refuses one
    request (offline vLLM aborts the whole call), fall back to one call per question to
    isolate it. A server answers each request on its own: a refusal is that question's."""
    ready = [p for p in prepared if p.request is not None]
    out: dict[str, tuple[Completion | None, str | None]] = {
        p.question.id: (None, p.error) for p in prepared if p.request is None
    }
    if not ready:
        return out

    def outcome(completion: Completion) -> tuple[Completion | None, str | None]:
        if completion.error:
            return None, f"refused by the server: {completion.error}"
        return completion, None

    try:
        batch = engine.generate([p.request for p in ready], sampling)
        for p, completion in zip(ready, batch.completions, strict=True):
            out[p.question.id] = outcome(completion)
        return out
    except INPUT_ERRORS:
        if len(ready) == 1:
            raise
    for p in ready:
        try:
            (completion,) = engine.generate([p.request], sampling).completions
            out[p.question.id] = outcome(completion)
        except INPUT_ERRORS as exc:
            out[p.question.id] = (None, f"refused by the engine: {type(exc).__name__}: {exc}")
    return out


def _line(
    prep: Prepared, result: M.QuestionResult, output: Completion | None, error: str | None
) -> dict[str, Any]:
    """One predictions.jsonl record. ``parsed`` is cut to M.PARSED_LIMIT characters (then
    ``parsed_truncated`` is true): the response is the full text, recorded once."""
    response = output.text if output is not None else None
    parsed, cut = M.recorded_parsed(result.parsed)
    line = {
        "id": prep.question.id,
        "subject": prep.question.subject,
        "question_type": prep.question.question_type,
        "prompt": prep.prompt,
        "images": prep.images,
        "response": response,
        "parsed": parsed,
        "gold": result.gold,
        "correct": result.correct,
        "vendor_strict_correct": M.score_question_vendor(prep.question, response).correct,
        "fallback": result.used_fallback,
        "error": error,
        "finish_reason": output.finish_reason if output is not None else None,
        "num_prompt_tokens": output.prompt_tokens if output is not None else None,
        "num_output_tokens": output.output_tokens if output is not None else None,
    }
    if cut:
        line["parsed_truncated"] = True
    return line


def answer(engine: Backend | None, plan: Plan) -> AnswerStats:
    """Answer the remaining questions chunk by chunk, appending each chunk's lines at once."""
    params = plan.params
    stats = AnswerStats()
    scorer = LiveScorer(plan.questions)
    for qid, line in plan.previous.items():
        scorer.add(qid, line.get("response") if line.get("error") is None else None)
    for result in scorer.advance():
        line = plan.previous.get(result.id)
        if line is not None and "parsed" in line and not same_parse(line["parsed"], result.parsed):
            stats.replay_mismatches += 1
    total = len(plan.questions)
    print(
        f"[mmmu] {total} questions: {len(plan.previous)} already in {plan.log.path.name}, "
        f"{len(plan.remaining)} to answer, {params.effective_batch} per generate call "
        "(answered together)",
        flush=True,
    )
    if not plan.remaining:
        return stats
    if engine is None:
        raise RuntimeError("questions remain to be answered but no engine was started")
    sampling = GenSampling(
        max_tokens=params.max_output_len, temperature=params.temperature, seed=params.seed
    )
    progress = question_progress(total, len(plan.previous))
    pending: dict[str, tuple[Prepared, Any, str | None]] = {}
    t0 = time.monotonic()
    for number, chunk in enumerate(M.iter_chunks(plan.remaining, params.effective_batch)):
        pause_point("mmmu.chunk", number)
        prepared = [build_request(q, params, plan.reader, plan.family) for q in chunk]
        outputs = _run_chunk(engine, prepared, sampling)
        for p in prepared:
            output, error = outputs[p.question.id]
            response = output.text if output is not None else None
            scorer.add(p.question.id, response)
            pending[p.question.id] = (p, output, error)
            p.request = None  # drop the decoded images
        lines = []
        for result in scorer.advance():
            if result.id in pending:
                p, output, error = pending.pop(result.id)
                lines.append(_line(p, result, output, error))
                if output is not None:
                    stats.answered += 1
                    stats.output_tokens += output.output_tokens
                    stats.prompt_tokens += output.prompt_tokens or 0
                else:
                    stats.errors += 1
        plan.log.append(lines)
        stats.chunks += 1
        progress.update(len(chunk))
    stats.seconds = time.monotonic() - t0
    plan.reader.close()
    if pending:  # cannot happen when questions are answered in official order
        raise RuntimeError(f"{len(pending)} answers could not be scored in official order")
    return stats


def same_parse(recorded: Any, parsed: Any) -> bool:
    """Whether a parse read back from predictions.jsonl is `parsed` (as `_line` records it,
    or in full as lines written before parses were cut)."""
    return recorded == M.recorded_parsed(parsed)[0] or recorded == M.json_safe(parsed)


# --------------------------------------------------------------------------------------------
# Scoring and the results.json section
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    report: M.ScoreReport  # the official scoring
    vendor: M.ScoreReport  # the vendor-strict scoring of the same responses
    section: dict[str, Any]
    lines: dict[str, dict[str, Any]]  # id -> predictions.jsonl record
    mismatches: list[str]  # ids whose recorded parse differs from the final scoring


def deviations(params: MMMUParams, n_questions: int, errors: int) -> list[str]:
    """Why this run's numbers are not the vendor's run repeated: data, model and every
    setting of `VENDOR_SETTINGS` this run changed. The scoring difference, always there, is
    `SCORING_DEVIATION` (``score`` lists it first)."""
    out = []
    if params.dataset == FIXTURE:
        out.append("dataset is the synthetic fixture, not MMMU")
    if params.model == "smoke":
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


def score(run: Any, plan: Plan, stats: AnswerStats) -> Outcome:
    """Score every question from predictions.jsonl both ways and record ``mmmu`` in
    results.json (shape: kit.mmmu_report)."""
    params = plan.params
    loaded = plan.log.load()
    ids = {q.id for q in plan.questions}
    lines = {i: r for i, r in loaded.lines.items() if i in ids}
    responses = {
        i: (r.get("response") if r.get("error") is None else None) for i, r in lines.items()
    }
    report = M.score_predictions(plan.questions, responses)
    vendor = M.score_predictions_vendor(plan.questions, responses, report)
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
        "subjects": sorted({q.subject for q in plan.questions}, key=M.SUBJECTS.index),
        "limit": params.limit,
        "image_policy": params.image_policy,
        "num_crops": params.num_crops,
        "max_output_len": params.max_output_len,
        "temperature": params.temperature,
        "batch_size": params.batch_size,
        "chunk_size": params.chunk_size,
        "limit_images": params.limit_images,
    }
    dev = deviations(params, len(plan.questions), report.counts.errors)
    section = mmmu_section(
        report,
        vendor,
        parameters,
        {
            # The scoring difference is not counted: each reference is compared with the
            # Overall of its own scoring.
            "comparable_with_references": not dev,
            "deviations": [SCORING_DEVIATION, *dev],
            "error_questions": errors,
            "timing": {
                **stats.to_dict(),
                "previously_answered": len(plan.previous),
            },
            "predictions_file": str(plan.log.path),
            "parse_mismatches": len(mismatches),
        },
    )
    run.record("mmmu", section)
    return Outcome(
        report=report, vendor=vendor, section=section, lines=lines, mismatches=mismatches
    )
