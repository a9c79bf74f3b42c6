"""The HTTP side of a served model: health, models, version and metrics, and streamed chat.

Requests are sent with the ``openai`` client, each at its offset with at most
``concurrency`` in flight, and timed chunk by chunk (kit.engines.timing.StreamTiming). The
event loop runs in its own thread, so this works inside a Jupyter kernel, whose loop is
already running, as in a script. A failed request is recorded with its error rather than
raised, so one bad answer does not lose a batch; an unreachable server or an unknown model
name is a ParameterError, which the engine parameters' preflight raises before a run folder
is made.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.core.params import ParameterError
from kit.engines.timing import StreamTiming


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


def check_reachable(
    base_url: str, api_key: str | None, timeout_s: float = 10, key_env: str = ""
) -> list[str]:
    """The models a server serves (``/v1/models``), or a ParameterError saying why not.
    ``key_env``: the variable the key came from (api_key_env), named if the key is refused."""
    try:
        models = http_get(f"{base_url}/v1/models", api_key, timeout_s).json()
    except urllib.error.HTTPError as exc:
        raise ParameterError(
            f"Parameter 'base_url': {base_url}/v1/models answered HTTP {exc.code}."
            + key_hint(exc.code, key_env)
        ) from None
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ParameterError(
            f"Parameter 'base_url': no OpenAI-compatible server answers at {base_url} "
            f"({reason}). Start it first (vllm serve MODEL), check the address and port, or "
            "leave base_url empty to let the kit start one."
        ) from None
    return [m.get("id") for m in models.get("data", []) if m.get("id")]


def key_hint(status: int, key_env: str) -> str:
    """What to do about a server that refused the request for want of the right key."""
    if status not in (401, 403):
        return ""
    if key_env:
        return (
            f" It refused the key in ${key_env}: check that it is the key the server was "
            "started with (vllm serve --api-key)."
        )
    return (
        " It wants an API key: export it in a variable and name that variable with "
        "-p api_key_env VARIABLE."
    )


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


def served_model(base_url: str, api_key: str | None, wanted: str, key_env: str = "") -> str:
    """The model name to send: ``wanted`` when the server serves it, else the only one it
    serves; a ParameterError otherwise (checked before a run folder is made)."""
    models = check_reachable(base_url, api_key, key_env=key_env)
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
