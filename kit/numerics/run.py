"""A numerics run: the prompts' greedy continuations with their top-k logprobs, then a
teacher-forced pass, on the reference's continuation where a reference is given (so one
early difference cannot cascade) and on the run's own otherwise.

The reference is read (another run's numerics.jsonl) or made here (HF transformers in
float32) before the engine starts, since the forced pass needs its continuations. Every
prompt runs at once offline (one ``LLM.generate`` per pass) and one by one on a server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from kit.engines.logprobs import Forced, Greedy, ServerLogprobs, offline_forced, offline_greedy
from kit.engines.types import Backend, GenRequest
from kit.models.registry import family_for_model, resolve_model
from kit.numerics.compare import compare_runs
from kit.numerics.params import TRANSFORMERS, NumericsParams, read_reference, reference_file
from kit.numerics.prompts import NumericsRequest, PromptSet, build_requests, load_prompt_set
from kit.numerics.thresholds import Thresholds
from kit.records.numerics import (
    NUMERICS_FILE,
    NumericsComparison,
    NumericsRunRecord,
    Position,
    PromptNumerics,
    write_numerics_jsonl,
)
from kit.records.results import RESULTS_FILE


@dataclass
class Prepared:
    """The run's prompts, built for its model, and the tokenizer that counted them."""

    prompt_set: PromptSet
    requests: list[NumericsRequest]
    model_path: str
    tokenizer: Any

    def rows(self) -> list[dict[str, Any]]:
        """One row per prompt for the report's inputs table."""
        return [
            {
                "prompt": r.id,
                "kind": r.kind,
                "images": len(r.images),
                "text tokens": len(self.tokenizer.encode(r.question, add_special_tokens=False)),
                "question": r.question if len(r.question) <= 80 else "…" + r.question[-79:],
            }
            for r in self.requests
        ]


def load_tokenizer(model_path: str, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)


def prepare(params: NumericsParams) -> Prepared:
    """The prompt set (only ``params.prompts`` where given) and MMMU questions (with a
    dataset), built for the model: prompts in its format, long contexts in its tokens."""
    prompt_set = load_prompt_set(params.prompt_set).select(params.prompts)
    model_path = resolve_model(params.model)
    family = family_for_model(model_path)
    tokenizer = load_tokenizer(model_path, params.trust_remote_code)
    requests = build_requests(
        prompt_set, family, lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    )
    if params.dataset and params.mmmu_questions:
        from kit.numerics.mmmu_prompts import mmmu_requests

        requests += mmmu_requests(params.dataset, params.mmmu_questions, family)
    return Prepared(prompt_set, requests, model_path, tokenizer)


@dataclass
class Reference:
    """The records a run is checked against, and how the report names them."""

    label: str
    records: list[PromptNumerics]
    seconds: float = 0.0

    @cached_property
    def by_id(self) -> dict[str, PromptNumerics]:
        return {r.id: r for r in self.records}


def load_reference(params: NumericsParams, prepared: Prepared) -> Reference | None:
    """Another run's records, or float32 transformers records made now (before the engine
    starts: both would not fit in memory together on a small machine)."""
    if not params.reference:
        return None
    start = time.perf_counter()
    if params.reference == TRANSFORMERS:
        from kit.numerics.transformers_reference import transformers_reference

        records = transformers_reference(
            prepared.model_path,
            family_for_model(prepared.model_path),
            prepared.requests,
            params.top_k,
            params.max_tokens,
            params.trust_remote_code,
        )
        return Reference("transformers (float32, CPU)", records, time.perf_counter() - start)
    records, _ = read_reference(params.reference)
    return Reference(reference_label(params.reference), records, time.perf_counter() - start)


def reference_label(value: str) -> str:
    """A run folder by its name (what compare and the index call it), a file by its path."""
    path = reference_file(value)
    if path.name == NUMERICS_FILE and (path.parent / RESULTS_FILE).is_file():
        return path.parent.name
    return str(path)


def gen_request(request: NumericsRequest) -> GenRequest:
    return GenRequest(question=request.question, images=request.images, prompt=request.prompt)


def _with_text(positions: Sequence[Position], tokenizer: Any) -> tuple[Position, ...]:
    """Positions whose piece of text the engine did not send (a server) get the tokenizer's."""
    return tuple(p if p.text else replace(p, text=tokenizer.decode([p.token])) for p in positions)


def run_greedy(
    engine: Backend, requests: Sequence[GenRequest], top_k: int, max_tokens: int
) -> list[Greedy]:
    if engine.config.backend == "offline":
        return offline_greedy(engine.llm, requests, top_k, max_tokens)  # type: ignore[attr-defined]
    server = server_logprobs(engine)
    return [server.greedy(r, top_k, max_tokens) for r in requests]


def run_forced(
    engine: Backend,
    requests: Sequence[GenRequest],
    continuations: Sequence[Sequence[int]],
    expected: Sequence[Sequence[int] | None],
    top_k: int,
    tokenizer: Any,
) -> list[Forced]:
    if engine.config.backend == "offline":
        return offline_forced(engine.llm, requests, continuations, expected, top_k)  # type: ignore[attr-defined]
    server = server_logprobs(engine)
    return [
        server.forced(r, c, tokenizer.decode(list(c), skip_special_tokens=False), e, top_k)
        for r, c, e in zip(requests, continuations, expected, strict=True)
    ]


def server_logprobs(engine: Any) -> ServerLogprobs:
    return ServerLogprobs(
        engine.base_url, engine.model, engine.api_key, engine.params.request_timeout_s
    )


@dataclass
class NumericsResult:
    records: list[PromptNumerics]
    summary: NumericsRunRecord
    comparison: NumericsComparison | None = None


def record(
    engine: Backend,
    params: NumericsParams,
    prepared: Prepared,
    reference: Reference | None = None,
    thresholds: Thresholds | None = None,
) -> NumericsResult:
    """Greedy, then forced on the reference's continuation (a prompt the reference lacks:
    on its own), then the comparison with the reference."""
    requests = [gen_request(r) for r in prepared.requests]
    start = time.perf_counter()
    greedy = run_greedy(engine, requests, params.top_k, params.max_tokens)
    greedy_s = time.perf_counter() - start
    refs = reference.by_id if reference is not None else {}
    continuations = [
        [p.token for p in refs[r.id].generated] if r.id in refs else [p.token for p in g.positions]
        for r, g in zip(prepared.requests, greedy, strict=True)
    ]
    start = time.perf_counter()
    forced = run_forced(
        engine,
        requests,
        continuations,
        [g.prompt_ids for g in greedy],
        params.top_k,
        prepared.tokenizer,
    )
    forced_s = time.perf_counter() - start
    records, problems = [], {}
    for request, g, f in zip(prepared.requests, greedy, forced, strict=True):
        if f.problem:
            problems[request.id] = f.problem
        records.append(
            PromptNumerics(
                id=request.id,
                kind=request.kind,
                num_images=len(request.images),
                prompt_tokens=len(g.prompt_ids or []),
                generated=_with_text(g.positions, prepared.tokenizer),
                forced=None if f.positions is None else _with_text(f.positions, prepared.tokenizer),
                forced_on=None
                if f.positions is None
                else (reference.label if request.id in refs and reference else "self"),
                generated_text=g.text,
            )
        )
    seconds = {"greedy": round(greedy_s, 3), "forced": round(forced_s, 3)}
    if reference is not None:
        seconds["reference"] = round(reference.seconds, 3)
    summary = NumericsRunRecord(
        prompt_set=prepared.prompt_set.source,
        prompt_set_version=prepared.prompt_set.version,
        prompt_set_digest=prepared.prompt_set.digest,
        prompts=len(records),
        top_k=params.top_k,
        max_tokens=params.max_tokens,
        backend=engine.config.backend,
        dtype=engine.config.dtype,
        forced_on="self" if reference is None else reference.label,
        reference=None if reference is None else reference.label,
        forced_problems=problems,
        seconds=seconds,
        generated_tokens=sum(len(r.generated) for r in records),
    )
    comparison = None
    if reference is not None:
        comparison = compare_runs(records, reference.records, thresholds, reference.label)
    return NumericsResult(records, summary, comparison)


REFERENCE_FILE = "reference.jsonl"  # a reference made in the run (transformers), kept beside


def save(run: Any, result: NumericsResult, reference: Reference | None) -> None:
    """numerics.jsonl (and a reference made here, so the comparison can be made again),
    then the results.json sections."""
    write_numerics_jsonl(run.paths.artifact(NUMERICS_FILE), result.records)
    if reference is not None and run.params.reference == TRANSFORMERS:
        write_numerics_jsonl(run.paths.artifact(REFERENCE_FILE), reference.records)
    run.record("numerics_run", result.summary)
    if result.comparison is not None:
        run.record("numerics", result.comparison)
