"""The MMMU notebook's engine side: parameters, batched resumable answering, scoring, report.

The protocol itself (prompts, parsing, scoring, aggregation) is in :mod:`kit.mmmu`; this module
feeds it. How a run proceeds:

1. :func:`prepare` resolves the dataset (a folder, a hub id, or ``fixture``), loads the
   questions in official order WITHOUT their image bytes, and reads the run's
   ``predictions.jsonl``: ids already there are skipped (``--resume``).
2. :func:`answer` sends the remaining questions to vLLM in chunks (``batch_size`` questions,
   or ``chunk_size`` when ``batch_size`` is 0), decoding each chunk's images just before it is
   submitted; every answer is parsed and appended to ``predictions.jsonl`` when its chunk
   returns, so an interrupted run loses at most one chunk.
3. :func:`score` rescores everything with ``kit.mmmu.score_predictions`` (ONE
   ``random.Random(42)`` consumed in official order, as the official code does) and records
   the ``mmmu`` section of ``results.json``.

Parsing at answer time uses the same generator replayed in official order, so the parsed
answer written to each line equals the final verdict; :func:`score` checks that.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit import mmmu as M
from kit.engine import HUB_ID, Engine, EngineParams
from kit.params import ParameterError, check_generation
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
#: The vendor's acc mode (FACTS.md section 5): deviations are listed in the report.
VENDOR_PROTOCOL = {
    "split": "validation",
    "image_policy": "first",
    "max_output_len": 10,
    "temperature": 0.0,
    "num_crops": 4,
}
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
class MMMUParams(EngineParams):
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
    lines: dict[str, dict[str, Any]]  # id -> record, first occurrence
    duplicates: list[str] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)  # 1-based line numbers
    torn_tail: str | None = None  # an unterminated last line, removed from the file


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
        out = LoadedPredictions({}, torn_tail=torn)
        for number, raw in enumerate(data.decode("utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                out.malformed.append(number)
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                out.malformed.append(number)
                continue
            if record["id"] in out.lines:
                out.duplicates.append(record["id"])
                continue
            out.lines[record["id"]] = record
        return out

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
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
    current = answer_fingerprint(params)
    if not meta_path.is_file():
        meta_path.write_text(json.dumps(current, indent=2) + "\n")
        return
    saved = json.loads(meta_path.read_text())
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
            json.dumps(answer_fingerprint(params), indent=2) + "\n"
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


class Progress:
    """Plain progress lines (done/total, rate, ETA) that show in JupyterLab and in papermill's
    --log-output; engine progress bars are off (TQDM_DISABLE=1)."""

    def __init__(self, total: int, already: int, interval_s: float = PROGRESS_INTERVAL_S):
        self.total = total
        self.already = already
        self.done = 0
        self.interval_s = interval_s
        self.t0 = time.monotonic()
        self._last = -math.inf

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        finished = self.already + self.done
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = self.total - finished
        eta = left / rate if rate > 0 else None
        pct = 100.0 * finished / self.total if self.total else 100.0
        return (
            f"[mmmu] {finished}/{self.total} questions ({pct:.1f}%) | {rate:.2f} q/s | "
            f"elapsed {_clock(elapsed)} | ETA {_clock(eta) if eta is not None else '?'}"
        )

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval_s or self.already + self.done >= self.total:
            self._last = now
            print(self.line(), flush=True)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class Prepared:
    question: M.Question
    images: list[int]
    prompt: str
    request: dict[str, Any] | None  # None when it failed before the engine
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
        images = [M.decode_image(data) for data in raw]
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, ValueError, ...
        return Prepared(
            question, numbers, prompt, None, f"image failed to decode: {type(exc).__name__}: {exc}"
        )
    request: dict[str, Any] = {"prompt": prompt}
    if images:
        request["multi_modal_data"] = {"image": images}
    return Prepared(question, numbers, prompt, request)


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


def _generate(engine: Engine, requests: list[dict[str, Any]], sampling: Any) -> list[Any]:
    return engine.llm.generate(requests, sampling, use_tqdm=False)


def _run_chunk(
    engine: Engine, prepared: list[Prepared], sampling: Any
) -> dict[str, tuple[Any, str | None]]:
    """id -> (RequestOutput or None, error). One generate call; if vLLM refuses one request
    (it aborts the whole call), fall back to one call per question to isolate it."""
    ready = [p for p in prepared if p.request is not None]
    out: dict[str, tuple[Any, str | None]] = {
        p.question.id: (None, p.error) for p in prepared if p.request is None
    }
    if not ready:
        return out
    try:
        outputs = _generate(engine, [p.request for p in ready], sampling)
        for p, o in zip(ready, outputs, strict=True):
            out[p.question.id] = (o, None)
        return out
    except INPUT_ERRORS:
        if len(ready) == 1:
            raise
    for p in ready:
        try:
            (o,) = _generate(engine, [p.request], sampling)
            out[p.question.id] = (o, None)
        except INPUT_ERRORS as exc:
            out[p.question.id] = (None, f"refused by the engine: {type(exc).__name__}: {exc}")
    return out


def _line(
    prep: Prepared, result: M.QuestionResult, output: Any, error: str | None
) -> dict[str, Any]:
    completion = output.outputs[0] if output is not None else None
    return {
        "id": prep.question.id,
        "subject": prep.question.subject,
        "question_type": prep.question.question_type,
        "prompt": prep.prompt,
        "images": prep.images,
        "response": completion.text if completion is not None else None,
        "parsed": result.parsed,
        "gold": result.gold,
        "correct": result.correct,
        "fallback": result.used_fallback,
        "error": error,
        "finish_reason": completion.finish_reason if completion is not None else None,
        "num_prompt_tokens": len(output.prompt_token_ids or []) if output is not None else None,
        "num_output_tokens": len(completion.token_ids) if completion is not None else None,
    }


def answer(engine: Engine | None, plan: Plan) -> AnswerStats:
    """Answer the remaining questions chunk by chunk, appending each chunk's lines at once."""
    params = plan.params
    stats = AnswerStats()
    scorer = LiveScorer(plan.questions)
    for qid, line in plan.previous.items():
        scorer.add(qid, line.get("response") if line.get("error") is None else None)
    for result in scorer.advance():
        line = plan.previous.get(result.id)
        if line is not None and "parsed" in line and line["parsed"] != _jsonable(result.parsed):
            stats.replay_mismatches += 1
    total = len(plan.questions)
    print(
        f"[mmmu] {total} questions: {len(plan.previous)} already in {plan.log.path.name}, "
        f"{len(plan.remaining)} to answer, {params.effective_batch} per llm.generate call",
        flush=True,
    )
    if not plan.remaining:
        return stats
    if engine is None:
        raise RuntimeError("questions remain to be answered but no engine was started")
    sampling = engine.sampling_params(
        max_tokens=params.max_output_len, temperature=params.temperature, seed=params.seed
    )
    progress = Progress(total, len(plan.previous))
    pending: dict[str, tuple[Prepared, Any, str | None]] = {}
    t0 = time.monotonic()
    for chunk in M.iter_chunks(plan.remaining, params.effective_batch):
        prepared = [build_request(q, params, plan.reader, plan.family) for q in chunk]
        outputs = _run_chunk(engine, prepared, sampling)
        for p in prepared:
            output, error = outputs[p.question.id]
            response = output.outputs[0].text if output is not None else None
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
                    stats.output_tokens += len(output.outputs[0].token_ids)
                    stats.prompt_tokens += len(output.prompt_token_ids or [])
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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------------------------
# Scoring and the results.json section
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    report: M.ScoreReport
    section: dict[str, Any]
    lines: dict[str, dict[str, Any]]  # id -> predictions.jsonl record
    mismatches: list[str]  # ids whose recorded parse differs from the final scoring


def deviations(params: MMMUParams, n_questions: int, errors: int) -> list[str]:
    """Why this number is not comparable with the vendor's and the model card's."""
    out = []
    if params.dataset == FIXTURE:
        out.append("dataset is the synthetic fixture, not MMMU")
    if params.model == "smoke":
        out.append("model is the tiny random-weight test model: its accuracy is noise")
    for key, expected in VENDOR_PROTOCOL.items():
        value = getattr(params, key)
        if value != expected:
            out.append(f"{key} is {value!r} (vendor: {expected!r})")
    if params.split == "validation" and n_questions != FULL_VALIDATION:
        out.append(f"{n_questions} questions, not the full {FULL_VALIDATION} of validation")
    if errors:
        out.append(f"{errors} question(s) could not be answered (counted wrong)")
    return out


def reference_rows(overall: float | None) -> list[dict[str, Any]]:
    from kit.references import load_references

    rows = []
    for ref in load_references().mmmu:
        rows.append(
            {
                "source": ref.device,
                "accuracy": ref.accuracy,
                "this run - reference (points)": (
                    None if overall is None else f"{100 * (overall - ref.accuracy):+.1f}"
                ),
                "note": ref.label or ref.source or "",
            }
        )
    return rows


def mmmu_section(
    report: M.ScoreReport, parameters: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``mmmu`` JSON shared by the notebook's results.json and the scorer CLI."""
    summary = report.to_dict()
    return {
        "overall": summary["overall"],
        "groups": summary["groups"],
        "subjects": summary["subjects"],
        "by_question_type": summary["by_question_type"],
        "by_difficulty": summary["by_difficulty"],
        "counts": summary["counts"],
        "fallbacks": report.counts.fallbacks,
        "errors": report.counts.errors,
        "letters": summary["letters"],
        "seed": summary["seed"],
        "parameters": parameters,
        "references": reference_rows(report.overall.acc if report.overall.n else None),
        **(extra or {}),
    }


def score(run: Any, plan: Plan, stats: AnswerStats) -> Outcome:
    """Score every question from predictions.jsonl and record ``mmmu`` in results.json."""
    params = plan.params
    loaded = plan.log.load()
    ids = {q.id for q in plan.questions}
    lines = {i: r for i, r in loaded.lines.items() if i in ids}
    responses = {
        i: (r.get("response") if r.get("error") is None else None) for i, r in lines.items()
    }
    report = M.score_predictions(plan.questions, responses)
    mismatches = [
        r.id
        for r in report.records
        if "parsed" in lines.get(r.id, {})
        and (
            lines[r.id]["parsed"] != _jsonable(r.parsed)
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
        parameters,
        {
            "comparable_with_references": not dev,
            "deviations": dev,
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
    return Outcome(report=report, section=section, lines=lines, mismatches=mismatches)


# --------------------------------------------------------------------------------------------
# Report pieces (everything from the model or the dataset is escaped)
# --------------------------------------------------------------------------------------------


def _pct(acc: float | None) -> str:
    return "–" if acc is None else f"{acc:.3f}"


def overall_rows(outcome: Outcome) -> list[dict[str, Any]]:
    o = outcome.report.overall
    rows = [
        {
            "source": "this run",
            "accuracy": o.acc if o.n else None,
            "this run - reference (points)": None,
            "note": f"{o.correct}/{o.n} correct",
        }
    ]
    return rows + outcome.section["references"]


def group_rows(report: M.ScoreReport) -> list[dict[str, Any]]:
    return [
        {"group": g, "accuracy": a.acc, "correct": a.correct, "n": a.n}
        for g, a in report.groups.items()
    ]


def subject_rows(report: M.ScoreReport) -> list[dict[str, Any]]:
    return [
        {
            "subject": s,
            "group": M.SUBJECT_GROUP.get(s, ""),
            "accuracy": a.acc,
            "correct": a.correct,
            "n": a.n,
        }
        for s, a in report.subjects.items()
    ]


def breakdown_rows(acc_by: dict[str, M.Accuracy], name: str) -> list[dict[str, Any]]:
    return [{name: k, "accuracy": a.acc, "correct": a.correct, "n": a.n} for k, a in acc_by.items()]


def letter_rows(report: M.ScoreReport) -> list[dict[str, Any]]:
    from_fallback: dict[str, int] = {}
    for r in report.records:
        if r.used_fallback and isinstance(r.parsed, str):
            from_fallback[r.parsed] = from_fallback.get(r.parsed, 0) + 1
    letters_seen = sorted(set(report.predicted_letters) | set(report.gold_letters))
    return [
        {
            "letter": x,
            "predicted": report.predicted_letters.get(x, 0),
            "of which random fallback": from_fallback.get(x, 0),
            "gold": report.gold_letters.get(x, 0),
        }
        for x in letters_seen
    ]


def count_rows(outcome: Outcome) -> list[dict[str, Any]]:
    c = outcome.report.counts
    t = outcome.section["timing"]
    rows = {
        "questions": c.questions,
        "answered": c.answered,
        "errors (counted wrong)": c.errors,
        "multiple-choice answers from the random fallback (seed 42)": c.fallbacks,
        "answered in this attempt": t["answered"] + t["errors"],
        "answered in earlier attempts": t["previously_answered"],
        "answering wall time (s)": round(t["seconds"], 2),
        "questions/s (this attempt)": t["questions_per_s"],
        "output tokens (this attempt)": t["output_tokens"],
    }
    return [{"name": k, "value": v} for k, v in rows.items()]


def png_bytes(figure: Any) -> bytes:
    """A pyplot-free Figure as PNG (it needs a canvas attached first)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from kit.report import figure_png

    FigureCanvasAgg(figure)
    return figure_png(figure)


def subject_chart(report: M.ScoreReport, references: Sequence[float] = ()) -> bytes:
    """Horizontal bars per subject (official order), coloured by group, with Overall."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    subjects = list(report.subjects)
    groups = list(M.GROUPS)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    fig = Figure(figsize=(8, 0.28 * max(len(subjects), 4) + 1.2))
    ax = fig.subplots()
    ys = list(range(len(subjects)))[::-1]
    accs = [report.subjects[s].acc for s in subjects]
    cols = [colours[groups.index(M.SUBJECT_GROUP[s]) % 6] for s in subjects]
    ax.barh(ys, accs, color=cols)
    ax.set_yticks(ys, [f"{s} (n={report.subjects[s].n})" for s in subjects], fontsize=8)
    ax.axvline(report.overall.acc, color="black", linestyle="--", linewidth=1)
    ax.text(report.overall.acc, len(subjects) - 0.4, f" Overall {report.overall.acc:.3f}")
    for ref in references:
        ax.axvline(ref, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title("MMMU accuracy by subject (colour = group; dotted = references)")
    handles = [
        Patch(color=colours[i], label=g)
        for i, g in enumerate(groups)
        if any(M.SUBJECT_GROUP[s] == g for s in subjects)
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png_bytes(fig)


def letter_chart(report: M.ScoreReport) -> bytes:
    from matplotlib.figure import Figure

    rows = letter_rows(report)
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["predicted"] for r in rows], 0.4, label="predicted")
    ax.bar([x + 0.2 for x in xs], [r["gold"] for r in rows], 0.4, label="gold")
    ax.set_xticks(list(xs), [r["letter"] for r in rows])
    ax.set_ylabel("multiple-choice questions")
    ax.set_title("Predicted vs gold letters")
    ax.legend()
    return png_bytes(fig)


def image_data_uri(image: Any, max_side: int = 200) -> str:
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


GALLERY_STYLE = (
    "<style>.mmmu-card{display:flex;gap:12px;border:1px solid #ddd;padding:8px;margin:6px 0}"
    ".mmmu-card img{max-width:200px;max-height:200px;flex:none}"
    ".mmmu-card pre{white-space:pre-wrap;margin:2px 0;font-size:0.9em}"
    ".mmmu-card .bad{color:#b22}.mmmu-card .ok{color:#272}</style>"
)


def gallery_html(plan: Plan, outcome: Outcome, limit: int) -> str:
    """Up to `limit` wrong answers (not errors): thumbnail, question, options, response, gold."""
    from kit.report import escape

    wrong = [r for r in outcome.report.records if not r.correct and not r.error][:limit]
    if not wrong:
        return "<p>No wrong answers to show.</p>"
    by_id = plan.by_id
    reader = M.ImageReader()
    cards = []
    for r in wrong:
        q = by_id[r.id]
        line = outcome.lines.get(r.id, {})
        try:
            numbers = M.select_images(q, plan.params.image_policy) or q.image_refs[:1]
            img = M.decode_image(reader.image_bytes(q, numbers[0])) if numbers else None
            thumb = f'<img src="{image_data_uri(img)}" alt="image">' if img else ""
        except Exception:
            thumb = "<p>(image not decodable)</p>"
        options = "".join(
            f"({escape(k)}) {escape(v)}\n" for k, v in M.index_to_answer(q.options).items()
        )
        parsed = r.parsed if isinstance(r.parsed, str) else json.dumps(r.parsed)
        fallback = " (random fallback)" if r.used_fallback else ""
        cards.append(
            '<div class="mmmu-card">'
            f"{thumb}<div><b>{escape(q.id)}</b> &middot; {escape(q.question_type)} &middot; "
            f"{escape(q.topic_difficulty)}"
            f"<pre>{escape(q.question)}</pre>"
            + (f"<pre>{options}</pre>" if options else "")
            + f'<div>response: <code class="bad">{escape(repr(line.get("response")))}</code></div>'
            f"<div>parsed: <code>{escape(parsed)}</code>{escape(fallback)}</div>"
            f'<div>gold: <code class="ok">{escape(r.gold)}</code></div>'
            "</div></div>"
        )
    reader.close()
    return GALLERY_STYLE + "".join(cards)


def example_html(plan: Plan) -> str:
    """The first question as the model sees it: the full chat prompt and its image(s)."""
    from kit.report import escape, text_block

    q = plan.questions[0]
    numbers = M.select_images(q, plan.params.image_policy)
    thumbs = []
    for k in numbers:
        try:
            img = M.decode_image(plan.reader.image_bytes(q, k))
            thumbs.append(f'<img src="{image_data_uri(img)}" alt="image_{k}">')
        except Exception as exc:
            thumbs.append(f"<p>image_{k} does not decode: {escape(exc)}</p>")
    prompt = plan.family.prompt(M.build_prompt(q), len(numbers))
    return (
        f"<p>Example: <b>{escape(q.id)}</b>, images sent: {escape(numbers)}</p>"
        + "".join(thumbs)
        + text_block(prompt)
    )


def error_rows(outcome: Outcome) -> list[dict[str, Any]]:
    return outcome.section["error_questions"]
