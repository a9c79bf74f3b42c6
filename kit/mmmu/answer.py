"""The MMMU notebook's engine side: the questions to answer, and batched, resumable answering.

1. :func:`prepare` resolves the dataset (a folder, a hub id, or ``fixture``), loads the
   questions in official order WITHOUT their image bytes, and reads the run's
   ``predictions.jsonl``: ids already there are skipped (``--resume``), and a resumed run
   must keep the parameters that decide the answers.
2. :func:`answer` sends the remaining questions to the engine in chunks (``batch_size``
   questions, or ``chunk_size`` when ``batch_size`` is 0), decoding each chunk's images just
   before it is submitted; every answer is parsed and appended to ``predictions.jsonl`` when
   its chunk returns, so an interrupted run loses at most one chunk.

Parsing at answer time replays earlier answers first and uses ONE ``random.Random(42)`` in
official order, so the parse written to each line equals the final verdict (kit.mmmu.outcome
checks that). A request the engine refuses (too many tokens or images, an odd image) or an
image that fails to decode is recorded as that question's error; anything else stops the run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from kit.core.pauses import pause_point
from kit.core.progress import Progress
from kit.engines.types import Backend, Completion, GenRequest, GenSampling
from kit.mmmu.dataset import DatasetError, ImageReader, decode_image, load_split, resolve_dataset
from kit.mmmu.params import ENGINE_DEFAULTS, MMMUParams
from kit.mmmu.predictions import (
    PREDICTIONS_FILE,
    PREDICTIONS_META_FILE,
    LoadedPredictions,
    PredictionLog,
    check_same_parameters,
    write_fingerprint,
)
from kit.mmmu.questions import FALLBACK_SEED, Question, official_prompt, select_images
from kit.mmmu.scoring import (
    QuestionResult,
    json_safe,
    recorded_parsed,
    score_question,
    score_question_vendor,
)
from kit.models.family import ModelFamily
from kit.models.registry import family_for_model, resolve_model

T = TypeVar("T")


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


PROGRESS_INTERVAL_S = 5.0


#: Exceptions a single bad request raises (too many tokens or images, odd image sizes); the
#: question is recorded as an error. Anything else (engine died, ...) stops the run.
INPUT_ERRORS = (ValueError, TypeError, ZeroDivisionError, IndexError, OverflowError)


@dataclass
class QuestionPlan:
    params: MMMUParams
    dataset_path: Path
    questions: list[Question]  # official order, images not loaded
    log: PredictionLog
    previous: dict[str, dict[str, Any]]  # earlier answers of THIS question set, by id
    remaining: list[Question]
    ignored_ids: list[str]  # lines whose id is not in this question set
    loaded: LoadedPredictions
    reader: ImageReader
    family: ModelFamily  # the model's prompt format

    @property
    def by_id(self) -> dict[str, Question]:
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


def prepare(run: Any) -> QuestionPlan:
    """Dataset, questions and the run's predictions file; fixes limit_images from the data."""
    params: MMMUParams = run.params
    root = resolve_dataset(params.dataset, params.split, params.subject_names())
    questions = load_split(
        root, params.split, params.subject_names(), params.limit, lazy_images=True
    )
    if not questions:
        raise DatasetError(f"No {params.split!r} questions in {str(root)!r}.")
    needed = max(len(select_images(q, params.image_policy)) for q in questions)
    if params.limit_images is None:
        params.limit_images = max(1, needed)
    for key, value in ENGINE_DEFAULTS.items():
        params.engine_args.setdefault(key, value)
    log = PredictionLog(run.paths.artifact(PREDICTIONS_FILE))
    loaded = log.load()
    meta = run.paths.artifact(PREDICTIONS_META_FILE)
    if loaded.lines:
        check_same_parameters(meta, params.answer_fingerprint())
    else:
        write_fingerprint(meta, params.answer_fingerprint())
    ids = {q.id for q in questions}
    previous = {i: r for i, r in loaded.lines.items() if i in ids}
    return QuestionPlan(
        params=params,
        dataset_path=root,
        questions=questions,
        log=log,
        previous=previous,
        remaining=[q for q in questions if q.id not in previous],
        ignored_ids=[i for i in loaded.lines if i not in ids],
        loaded=loaded,
        reader=ImageReader(),
        family=family_for_model(resolve_model(params.model)),
    )


class LiveScorer:
    """Parses answers as they arrive with ONE rng consumed in official order.

    Questions are answered in official order and earlier answers are replayed first, so the
    question before any new answer is always known and the draws match `score_predictions`."""

    def __init__(self, questions: Sequence[Question], seed: int = FALLBACK_SEED):
        self.questions = list(questions)
        self.rng = random.Random(seed)
        self.known: dict[str, str | None] = {}
        self.results: dict[str, QuestionResult] = {}
        self._next = 0

    def add(self, qid: str, response: str | None) -> None:
        self.known[qid] = response

    def advance(self) -> list[QuestionResult]:
        """Score every question, in order, up to the first unanswered one."""
        done = []
        while self._next < len(self.questions) and self.questions[self._next].id in self.known:
            q = self.questions[self._next]
            result = score_question(q, self.known[q.id], self.rng)
            self.results[q.id] = result
            done.append(result)
            self._next += 1
        return done


def question_progress(total: int, already: int, interval_s: float = PROGRESS_INTERVAL_S):
    """Progress lines of an MMMU run: questions done (earlier attempts included), q/s, ETA."""
    return Progress("mmmu", total, "questions", already, interval_s, rate=lambda r: f"{r:.2f} q/s")


@dataclass
class Prepared:
    question: Question
    images: list[int]
    prompt: str
    request: GenRequest | None  # None when it failed before the engine
    error: str | None = None


def build_request(
    question: Question,
    params: MMMUParams,
    reader: ImageReader,
    family: ModelFamily,
) -> Prepared:
    """The chat prompt (``<|image_k|>`` tags for the images sent, in order, then the official
    text) and decoded images; a decode failure becomes an error, not an exception."""
    numbers = select_images(question, params.image_policy)
    text = official_prompt(question)
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
            decode_image(data, source=f"{question.id} image_{k}")
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
    ready = [(p.question.id, p.request) for p in prepared if p.request is not None]
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
        batch = engine.generate([request for _, request in ready], sampling)
        for (qid, _), completion in zip(ready, batch.completions, strict=True):
            out[qid] = outcome(completion)
        return out
    except INPUT_ERRORS:
        if len(ready) == 1:
            raise
    for qid, request in ready:
        try:
            (completion,) = engine.generate([request], sampling).completions
            out[qid] = outcome(completion)
        except INPUT_ERRORS as exc:
            out[qid] = (None, f"refused by the engine: {type(exc).__name__}: {exc}")
    return out


def _line(
    prep: Prepared, result: QuestionResult, output: Completion | None, error: str | None
) -> dict[str, Any]:
    """One predictions.jsonl record. ``parsed`` is cut to PARSED_LIMIT characters (then
    ``parsed_truncated`` is true): the response is the full text, recorded once."""
    response = output.text if output is not None else None
    parsed, cut = recorded_parsed(result.parsed)
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
        "vendor_strict_correct": score_question_vendor(prep.question, response).correct,
        "fallback": result.used_fallback,
        "error": error,
        "finish_reason": output.finish_reason if output is not None else None,
        "num_prompt_tokens": output.prompt_tokens if output is not None else None,
        "num_output_tokens": output.output_tokens if output is not None else None,
    }
    if cut:
        line["parsed_truncated"] = True
    return line


def answer(engine: Backend | None, plan: QuestionPlan) -> AnswerStats:
    """Answer the remaining questions chunk by chunk, appending each chunk's lines at once."""
    params = plan.params
    stats = AnswerStats()
    scorer = LiveScorer(plan.questions)
    for qid, line in plan.previous.items():
        scorer.add(qid, line.get("response") if line.get("error") is None else None)
    for result in scorer.advance():
        earlier = plan.previous.get(result.id)
        if earlier and "parsed" in earlier and not same_parse(earlier["parsed"], result.parsed):
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
    for number, chunk in enumerate(iter_chunks(plan.remaining, params.effective_batch)):
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
    return recorded == recorded_parsed(parsed)[0] or recorded == json_safe(parsed)
