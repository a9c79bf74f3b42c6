"""The server backend: an OpenAI-compatible vLLM server, started by the kit or any running one.

The kit starts ``vllm serve`` (kit.engines.server_process) with a run's engine arguments,
checked as for the offline engine, on 127.0.0.1 and a free port, and waits for ``/health``;
or it attaches to ``base_url``. Requests are streamed chat completions with images as data
URLs (kit.engines.openai_client), timed by the client chunk by chunk, and the server's own
Prometheus histograms are scraped before and after every batch. A server that refuses
vLLM's ``ignore_eos`` / ``min_tokens`` is used without them, and the record says output
lengths are the model's choice; requests that fail because the server is gone fail the run,
naming the cause.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kit.engines.logs import root_cause
from kit.engines.openai_client import (
    ChatRequest,
    ChatResult,
    http_get,
    run_chat,
    scrape_metrics,
    served_model,
    server_version,
)
from kit.engines.params import DUMMY_WEIGHTS_NOTE, plan_engine
from kit.engines.prometheus import cache_counts, info_labels, parse_counters, server_latencies
from kit.engines.scheduling import SCHEDULING_MODES
from kit.engines.server_process import ServerError, ServerProcess, start_server
from kit.engines.timing import RequestTiming, StreamTiming
from kit.engines.types import Batch, Completion, GenRequest, GenSampling, Load
from kit.engines.vllm_plugin import compat_note
from kit.models.family import ModelFamily
from kit.records.caches import CacheUse
from kit.records.engine import EngineRecord


def timing_from_stream(stream: StreamTiming) -> RequestTiming:
    """What the client measured, in the offline timing's shape; queue and prefill are the
    server's own business (its histograms report them per point)."""
    ttft, e2e = stream.ttft_s, stream.e2e_s
    decode = e2e - ttft if e2e is not None and ttft is not None else None
    return RequestTiming(
        ttft_s=ttft,
        queue_s=None,
        prefill_s=None,
        decode_s=decode,
        tpot_s=stream.tpot_s,
        e2e_s=e2e,
        num_prompt_tokens=stream.prompt_tokens or 0,
        num_output_tokens=stream.output_tokens or 0,
    )


def completion_from_chat(result: ChatResult) -> Completion:
    return Completion(
        text=result.text,
        finish_reason=result.finish_reason,
        prompt_tokens=result.timing.prompt_tokens,
        output_tokens=result.timing.output_tokens or 0,
        timing=timing_from_stream(result.timing),
        stream=result.timing,
        error=result.timing.error,
    )


LENGTH_EXTENSIONS = ("ignore_eos", "min_tokens")


@dataclass
class ServerBackend:
    """A served model behind the backend interface (kit.engines.types.Backend)."""

    params: Any
    base_url: str
    model: str  # the served model name requests carry
    model_path: str  # the local copy: tokenizer and processor for exact prompt lengths
    family: ModelFamily
    device: str
    config: EngineRecord
    weights: str = "checkpoint"
    remote_code_changes: list = field(default_factory=list)
    process: ServerProcess | None = None  # the server the kit started, if it did
    length_extensions: bool = True  # the server takes vLLM's ignore_eos / min_tokens

    @property
    def api_key(self) -> str | None:
        return self.params.api_key()

    def _chat(self, request: GenRequest, sampling: GenSampling) -> ChatRequest:
        extra: dict[str, Any] = {}
        if self.length_extensions:
            if sampling.ignore_eos:
                extra["ignore_eos"] = True
            if sampling.min_tokens:
                extra["min_tokens"] = sampling.min_tokens
        # per-request processor settings (the explorer's num_crops) need a server started
        # with --trust-request-mm-kwargs; runs use the server's own (the kit starts it with
        # the run's num_crops; a running server's must match, the prompt-length check says)
        if request.mm_processor_kwargs and request.images:
            extra["mm_processor_kwargs"] = request.mm_processor_kwargs
        return ChatRequest(
            messages=request.chat_messages(),
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            seed=sampling.seed,
            extra=extra,
        )

    def _send(
        self,
        requests: list[GenRequest],
        sampling: GenSampling,
        load: Load | None,
        on_text: Callable[[str], None] | None = None,
    ) -> tuple[list[ChatResult], float]:
        chats = [self._chat(r, sampling) for r in requests]
        results, wall = run_chat(
            self.base_url,
            self.api_key,
            self.model,
            chats,
            concurrency=load.concurrency if load else len(chats),
            offsets=load.offsets if load else None,
            timeout_s=self.params.request_timeout_s,
            on_text=on_text,
        )
        refused = [r for r in results if r.timing.error and r.timing.error.startswith("HTTP 400")]
        if refused and any(c.extra.keys() & set(LENGTH_EXTENSIONS) for c in chats):
            if any(name in (r.timing.error or "") for r in refused for name in LENGTH_EXTENSIONS):
                self.length_extensions = False  # not vLLM: lengths are what the model writes
                why = refused[0].timing.error
                self.config.output_length_control = (
                    f"not honoured: the server refused ignore_eos/min_tokens ({why}); output "
                    "lengths are what the model chose"
                )
                return self._send(requests, sampling, load, on_text)
        self._check_alive(results)
        return results, wall

    def _check_alive(self, results: list[ChatResult]) -> None:
        """A failed request from a server that is gone is the run's failure, not the
        question's: say so, naming the cause."""
        errors = [r.timing.error for r in results if r.timing.error]
        if not errors:
            return
        if self.process is not None and self.process.process.poll() is not None:
            cause = root_cause(self.process.log_file)
            raise ServerError(
                f"The vLLM server exited with code {self.process.process.returncode} during the "
                f"run{f' ({cause})' if cause else ''}; requests failed with: {errors[0]}. Its "
                f"output is in {self.process.log_file}."
            )
        try:
            healthy = http_get(f"{self.base_url}/health", self.api_key, timeout_s=5).status == 200
        except (OSError, urllib.error.URLError):
            healthy = False
        if not healthy:
            raise ServerError(
                f"The server at {self.base_url} stopped answering during the run; requests "
                f"failed with: {errors[0]}."
            )

    def generate(
        self, requests: list[GenRequest], sampling: GenSampling, load: Load | None = None
    ) -> Batch:
        before = scrape_metrics(self.base_url, self.api_key)
        results, wall = self._send(requests, sampling, load)
        after = scrape_metrics(self.base_url, self.api_key)
        server = None
        if before is not None and after is not None:
            server = {k: v.to_dict() for k, v in server_latencies(before, after).items()}
        caches = server_cache_use(before, after)
        return Batch(
            [completion_from_chat(r) for r in results], wall, server=server or None, caches=caches
        )

    def stream(
        self, request: GenRequest, sampling: GenSampling, on_text: Callable[[str], None]
    ) -> Completion:
        before = scrape_metrics(self.base_url, self.api_key)
        (result,), _ = self._send([request], sampling, None, on_text)
        if result.timing.error:
            raise ServerError(f"The server did not answer: {result.timing.error}")
        after = scrape_metrics(self.base_url, self.api_key)
        return replace(completion_from_chat(result), caches=server_cache_use(before, after))

    def shutdown(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def server_cache_use(before: str | None, after: str | None) -> CacheUse | None:
    """What the server's caches served between two scrapes of its ``/metrics`` (None: it
    exports none); requests from other clients in that window count too (the counters are
    the server's)."""
    if before is None or after is None:
        return None
    counts = cache_counts(parse_counters(before), parse_counters(after))
    return CacheUse(source="the server's /metrics counters", **counts)


def server_prefix_caching(metrics: str | None) -> bool | None:
    """The server's own setting, from ``vllm:cache_config_info`` (None: not exported)."""
    value = info_labels(metrics or "", "vllm:cache_config_info").get("enable_prefix_caching")
    return None if value is None else value == "True"


def server_config(
    base_url: str,
    model: str,
    api_key: str | None,
    started: ServerProcess | None,
    scheduling: str,
    weights: str,
) -> EngineRecord:
    """What results.json records of the server: never a credential."""
    version = server_version(base_url, api_key)
    metrics = scrape_metrics(base_url, api_key)
    return EngineRecord(
        backend="server",
        scheduling=scheduling,
        scheduling_means=SCHEDULING_MODES[scheduling].rstrip(".")
        + ". Over HTTP, requests reach the scheduler as they arrive: a batch is not "
        "guaranteed to be scheduled in one step.",
        vllm_version=version,
        weights=weights,
        endpoint=base_url,
        served_model=model,
        server_version=version,
        started_by_kit=started is not None,
        output_length_control="vLLM's ignore_eos and min_tokens",
        metrics_endpoint=metrics is not None,
        prefix_caching=server_prefix_caching(metrics),
        command=" ".join(started.command[1:]) if started is not None else None,
        weights_note=DUMMY_WEIGHTS_NOTE if weights == "dummy" else None,
    )


def start_server_backend(params: Any, log_file: Path | None = None) -> ServerBackend:
    """Attach to ``params.base_url``, or start ``vllm serve`` with the run's engine
    parameters (checked as offline), and wait until it answers."""

    plan = plan_engine(params)
    log_file = log_file or Path(os.devnull)
    process = None
    if params.base_url:
        base_url = params.base_url
        device = "remote"
    else:
        environment = {
            k: v for k, v in plan.environment.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"
        }
        process = start_server(plan.kwargs, log_file, environment, params.server_start_timeout_s)
        base_url = process.base_url
        device = plan.defaults.device
    try:
        model = served_model(
            base_url, params.api_key(), params.served_model_name, params.api_key_env
        )
        config = server_config(
            base_url, model, params.api_key(), process, params.scheduling, plan.weights
        )
        config.processor_note = plan.family.settings_note()
        if process is not None:  # a server from this environment loads the kit's plugin
            config.compat_note = compat_note()
    except BaseException:
        if process is not None:
            process.stop(grace_s=5)
        raise
    return ServerBackend(
        params=params,
        base_url=base_url,
        model=model,
        model_path=plan.model_path,
        family=plan.family,
        device=device,
        config=config,
        weights=plan.weights,
        remote_code_changes=plan.remote_code_changes,
        process=process,
    )
