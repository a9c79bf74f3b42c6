"""The offline backend: ``vllm.LLM`` in this process (``backend: offline``), built from a plan.

:func:`start_engine` checks the parameters (kit.engines.params), sets the device's and the
scheduling mode's environment, and starts vLLM with its output in the run's ``engine.log``;
a failed start is raised with the root cause and the end of that log. The started engine's
effective configuration is read back from vLLM, since reports and comparisons need the
values vLLM filled in, not only what the kit asked for. ``stream`` steps the engine under
``vllm.LLM`` where it has the V1 ``add_request`` / ``step`` API, so the demo and the explorer
show the answer as it grows; an interrupted stream aborts its request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import gc
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.engines.logs import log_tail, output_to, root_cause, route_engine_logs
from kit.engines.params import DUMMY_WEIGHTS_NOTE, EngineParams, EnginePlan, plan_engine
from kit.engines.prometheus import CACHE_COUNTERS, cache_counts
from kit.engines.scheduling import SCHEDULING_MODES, scheduling_environment
from kit.engines.timing import marks_from_metrics, timing_from_output
from kit.engines.types import Batch, Completion, GenRequest, GenSampling, Load
from kit.engines.versions import version_note
from kit.engines.vllm_plugin import compat_note
from kit.models.family import ModelFamily
from kit.records.caches import CacheUse
from kit.records.engine import EngineRecord, devices_used

CACHE_COUNTER_NAMES = set(CACHE_COUNTERS.values())


def completion_from_output(output: Any, finished_at_wall: float | None = None) -> Completion:
    """A finished offline ``RequestOutput`` as a Completion."""
    first = output.outputs[0]
    return Completion(
        text=first.text,
        finish_reason=first.finish_reason,
        prompt_tokens=len(output.prompt_token_ids or []),
        output_tokens=len(first.token_ids),
        timing=timing_from_output(output, finished_at_wall),
        marks=marks_from_metrics(output.metrics) if output.metrics is not None else None,
        finished_at_wall=finished_at_wall,
        cached_tokens=getattr(output, "num_cached_tokens", None),
    )


@dataclass
class Engine:
    """A started engine and what it was started with."""

    llm: Any
    params: EngineParams
    model_path: str
    family: ModelFamily
    kwargs: dict
    device: str
    remote_code_changes: list = field(default_factory=list)
    weights: str = "checkpoint"
    config: EngineRecord = field(default_factory=EngineRecord)  # as vLLM configured it

    @property
    def tokenizer(self):
        return self.llm.get_tokenizer()

    def sampling_params(self, sampling: GenSampling):
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=sampling.max_tokens,
            min_tokens=sampling.min_tokens or 0,
            temperature=sampling.temperature,
            seed=sampling.seed,
            ignore_eos=sampling.ignore_eos,
        )

    def generate(
        self, requests: list[GenRequest], sampling: GenSampling, load: Load | None = None
    ) -> Batch:
        """One ``LLM.generate`` call: every request submitted together, vLLM schedules."""
        if load is not None:
            raise ValueError("an offline batch is submitted at once: load needs backend server")
        inputs = [r.vllm_input() for r in requests]
        before = self.cache_counters()
        start = time.perf_counter()
        outputs = self.llm.generate(inputs, self.sampling_params(sampling), use_tqdm=False)
        wall = time.perf_counter() - start
        completions = [completion_from_output(o) for o in outputs]
        return Batch(completions, wall, caches=self.cache_use(completions, before))

    def cache_counters(self) -> dict[str, float]:
        """vLLM's cache counters now (empty where the engine keeps no statistics)."""
        try:
            metrics = self.llm.get_metrics()
        except Exception:  # stats off, or an engine without the V1 metrics API
            return {}
        values: dict[str, float] = {}
        for metric in metrics:
            value = getattr(metric, "value", None)
            if isinstance(value, int | float) and metric.name in CACHE_COUNTER_NAMES:
                values[metric.name] = values.get(metric.name, 0.0) + value
        return values

    def cache_use(self, completions: list[Completion], before: dict[str, float]) -> CacheUse:
        """Prefix hits from each request's ``num_cached_tokens``; multimodal hits from the
        engine's counters where it keeps them."""
        counts = cache_counts(before, self.cache_counters()) if before else {}
        cached = [c.cached_tokens for c in completions]
        known = all(n is not None for n in cached)
        return CacheUse(
            source="vLLM's num_cached_tokens per request and its cache counters",
            prefix_hit_tokens=sum(n or 0 for n in cached) if known else None,
            prefix_query_tokens=sum(c.prompt_tokens or 0 for c in completions) if known else None,
            mm_hits=counts.get("mm_hits"),
            mm_queries=counts.get("mm_queries"),
        )

    def stream(
        self, request: GenRequest, sampling: GenSampling, on_text: Callable[[str], None]
    ) -> Completion:
        """Run one request, calling ``on_text`` with the answer so far after every step.

        Uses the engine under ``vllm.LLM`` when it has the V1 ``add_request`` / ``step``
        API, else one ``LLM.generate`` call (the whole answer at once, ``streamed`` False).
        """
        core: Any = getattr(self.llm, "llm_engine", None)
        try:
            from vllm.sampling_params import RequestOutputKind

            cumulative = RequestOutputKind.CUMULATIVE
        except ImportError:  # pragma: no cover - other vLLM builds
            cumulative = None
        params = self.sampling_params(sampling)
        before = self.cache_counters()
        completion = self._stream(request, params, cumulative, core, on_text)
        return dataclasses.replace(completion, caches=self.cache_use([completion], before))

    def _stream(
        self,
        request: GenRequest,
        params: Any,
        cumulative: Any,
        core: Any,
        on_text: Callable[[str], None],
    ) -> Completion:
        api = ("add_request", "step", "has_unfinished_requests", "abort_request")
        if cumulative is None or not all(hasattr(core, name) for name in api):
            (output,) = self.llm.generate([request.vllm_input()], params, use_tqdm=False)
            on_text(output.outputs[0].text)
            return dataclasses.replace(completion_from_output(output), streamed=False)
        params.output_kind = cumulative
        request_id = f"kit-{uuid.uuid4().hex[:12]}"
        # outputs carry this id; add_request returns the engine's internal one (id + suffix)
        ids = {request_id, core.add_request(request_id, request.vllm_input(), params)}
        final = None
        try:
            while final is None and core.has_unfinished_requests():
                for output in core.step():
                    if output.request_id not in ids:
                        continue
                    on_text(output.outputs[0].text)
                    if output.finished:
                        final = output
        except BaseException:  # an interrupted kernel must not leave the request running
            core.abort_request([request_id])
            raise
        if final is None:
            raise RuntimeError(f"the engine finished without an output for request {request_id}")
        return completion_from_output(final, finished_at_wall=time.time())

    def shutdown(self) -> None:
        """Stop the engine's processes (V1 ``engine_core.shutdown``), then drop it, so the
        memory is free for the next engine in this process."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        stop = getattr(core, "shutdown", None)
        if callable(stop):
            stop()
        self.llm = None
        gc.collect()


def _attr(obj: Any, *path: str) -> Any:
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def _plain(value: Any) -> Any:
    """Enum members (IntEnum included) by name, other objects as JSON-friendly text."""
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def engine_config(llm: Any, plan: EnginePlan, scheduling: str) -> EngineRecord:
    """The configuration vLLM actually runs with, read back from the started engine.

    Reports and comparisons need the effective values (vLLM fills many from the device),
    not only what the kit asked for.
    """
    vllm_config = _attr(llm, "llm_engine", "vllm_config")
    sched = _attr(vllm_config, "scheduler_config")
    cache = _attr(vllm_config, "cache_config")
    parallel = _attr(vllm_config, "parallel_config")
    compilation = _attr(vllm_config, "compilation_config")
    blocks, block_size = _attr(cache, "num_gpu_blocks"), _attr(cache, "block_size")
    in_process = plan.environment.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"
    record = EngineRecord(
        backend="offline",
        scheduling=scheduling,
        scheduling_means=SCHEDULING_MODES[scheduling],
        vllm_version=plan.vllm_version,
        weights=plan.weights,
        max_num_batched_tokens=_attr(sched, "max_num_batched_tokens"),
        max_num_seqs=_attr(sched, "max_num_seqs"),
        chunked_prefill=_attr(sched, "enable_chunked_prefill"),
        async_scheduling=_attr(sched, "async_scheduling"),
        v1_multiprocessing=not in_process,
        engine_core="in-process" if in_process else "separate process",
        dtype=_plain(_attr(vllm_config, "model_config", "dtype")),
        enforce_eager=_attr(vllm_config, "model_config", "enforce_eager"),
        compilation_mode=_plain(_attr(compilation, "mode")),
        cudagraph_mode=_plain(_attr(compilation, "cudagraph_mode")),
        tensor_parallel_size=_attr(parallel, "tensor_parallel_size"),
        pipeline_parallel_size=_attr(parallel, "pipeline_parallel_size"),
        data_parallel_size=_attr(parallel, "data_parallel_size"),
        distributed_executor_backend=_plain(_attr(parallel, "distributed_executor_backend")),
        world_size=_attr(parallel, "world_size"),
        block_size=block_size,
        kv_cache_blocks=blocks,
        kv_cache_tokens=int(blocks) * int(block_size) if blocks and block_size else None,
        prefix_caching=_attr(cache, "enable_prefix_caching"),
        load_format=_plain(_attr(vllm_config, "load_config", "load_format")),
        weights_note=DUMMY_WEIGHTS_NOTE if plan.weights == "dummy" else None,
        processor_note=plan.family.settings_note(),
        compat_note=compat_note(),
        version_note=version_note(plan.vllm_version),
    )
    record.devices = devices_used(record)
    return record


class EngineStartError(RuntimeError):
    """vLLM did not start; the message carries the end of the engine's own log."""


def start_engine(params: EngineParams, log_file: Path | None = None) -> Engine:
    """Check the parameters, then start vLLM (the slow part: ~30 s for the tiny model on CPU).

    With ``log_file``, vLLM's logs and the engine processes' output go there, and a failed
    start is re-raised with the end of that log, where vLLM writes the real cause.
    """
    if log_file is not None:  # before vLLM builds its config: it reconfigures its logging
        route_engine_logs(log_file)
    failure = None
    # Inside the redirect: importing vLLM (also for the engine_args check) prints warnings.
    with output_to(log_file) if log_file is not None else contextlib.nullcontext():
        plan = plan_engine(params)
        for key, value in plan.defaults.environment.items():
            os.environ.setdefault(key, value)
        os.environ.update(scheduling_environment(params.scheduling))  # the mode decides
        from vllm import LLM

        try:
            llm = LLM(**plan.kwargs)
        except Exception as exc:
            if log_file is None:
                raise
            failure = exc
            # An engine core in this process (scheduling: vendor) logs nothing of its failure;
            # its traceback goes to the log, so that the log holds the root cause too.
            traceback.print_exc()
    if failure is not None and log_file is not None:
        cause = root_cause(log_file)
        cause_text = f" Root cause in the engine's log: {cause}." if cause else ""
        raise EngineStartError(
            f"vLLM could not start the engine ({type(failure).__name__}: {failure}).{cause_text}"
            f" The engine's own output is in {log_file}; it ends with:\n{log_tail(log_file)}"
        ) from failure
    return Engine(
        llm=llm,
        params=params,
        model_path=plan.model_path,
        family=plan.family,
        kwargs=plan.kwargs,
        device=plan.defaults.device,
        remote_code_changes=plan.remote_code_changes,
        weights=plan.weights,
        config=engine_config(llm, plan, params.scheduling),
    )
