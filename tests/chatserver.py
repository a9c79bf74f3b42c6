"""A small OpenAI-compatible server that misbehaves on purpose, on 127.0.0.1, for fault tests.

It answers what the kit asks of a server (``/v1/models``, ``/health``, ``/version``,
``/metrics`` and streamed ``/v1/chat/completions`` with a usage chunk), answering every
question "A" (or ``tokens`` tokens of it), and fails the way real deployments fail, chosen
per test with ``mode``:

- ``ok``: a normal streamed answer; ``first_token_delay_s`` holds its first content chunk
  back (the role chunk goes out at once) and ``token_gap_s`` each later one, so timing
  tests have lower bounds that hold on any machine;
- ``http400`` / ``http500``: an error status before any chunk;
- ``cut``: two content chunks, then the connection closes without a finish reason;
- ``slow``: waits ``delay_s`` before the first byte (a request timeout);
- ``no_length_extensions``: an OpenAI server that is not vLLM: HTTP 400 for a request that
  carries ``ignore_eos`` or ``min_tokens``, a normal answer otherwise;
- ``die_after``: answers that many chat requests, then drops every later connection
  without a byte (chat, health and all): a server that died mid-run. Which requests are
  answered is decided when each arrives, under a lock, so no thread timing decides it.

With ``prefix_caching`` it also exports vLLM's cache counters on ``/metrics`` (and
``vllm:cache_config_info`` saying prefix caching is on), counting a request whose messages
it answered before as a full hit (every prompt token from the prefix cache, every image
from the multimodal cache), as vLLM does for a repeated request; ``always_hit`` counts every
request so (a cache warmed by another client). Without it ``/metrics`` is not found.

Every chat request is recorded (``requests``: its arrival time on the test's monotonic
clock and its JSON body), and every GET (``gets``: arrival time and path), so tests can check
what reached the server and when. ``max_in_flight`` is the most chat requests it was answering
at once; a request stops counting just before its last bytes, so a client that waits for an
answer before sending the next one is never counted twice. ``hold_first`` holds the first
that many chat requests until all of them arrived (a client sending them one at a time never
fills it: the hold then gives up after ``hold_timeout_s`` and says so in ``hold_broken``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"
LENGTH_EXTENSIONS = ("ignore_eos", "min_tokens")


@dataclass
class Behaviour:
    mode: str = "ok"
    delay_s: float = 0.0
    die_after: int | None = None
    first_token_delay_s: float = 0.0
    token_gap_s: float = 0.0
    prompt_tokens: int = 10
    hold_first: int = 0
    hold_timeout_s: float = 60.0
    prefix_caching: bool = False
    always_hit: bool = False
    api_key: str | None = None  # as vllm serve --api-key: every request without it gets 401
    count_prompt: Any = None  # body -> prompt tokens, as vLLM would count (else prompt_tokens)


@dataclass(frozen=True)
class Received:
    """One chat request as the server got it."""

    arrived: float  # time.monotonic() when its body was read
    body: dict[str, Any]


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: int = 0  # chat requests taken on (answered, or being answered)
    dead: bool = False
    requests: list[Received] = field(default_factory=list)
    gets: list[tuple[float, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    hold_broken: bool = False
    arrived: threading.Condition | None = None
    seen: set[str] = field(default_factory=set)  # the messages answered so far
    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("prefix_cache_queries", "prefix_cache_hits", "mm_cache_queries", "mm_cache_hits"), 0
        )
    )


def _chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog (5) refuses connections when a chunk of 32 questions is sent at
    # once; a real server (uvicorn) listens with 2048.
    request_queue_size = 256


class ChatServer:
    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.state = _State()
        self.state.arrived = threading.Condition(self.state.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _drop(self) -> None:
                """Close the connection without a byte, as a dead process's port does."""
                self.close_connection = True

            def do_GET(self):  # noqa: N802
                with server.state.lock:
                    server.state.gets.append((time.monotonic(), self.path))
                if server.state.dead:
                    return self._drop()
                if not self._authorized():
                    return self._json(401, {"error": "Unauthorized"})
                if self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": MODEL}]})
                elif self.path == "/health":
                    self._json(200, {})
                elif self.path == "/version":
                    self._json(200, {"version": "fake-1.0"})
                elif self.path == "/metrics" and server.behaviour.prefix_caching:
                    body = server.metrics().encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorized():
                    return self._json(401, {"error": "Unauthorized"})
                server.chat(self, body)

            def _authorized(self) -> bool:
                key = server.behaviour.api_key
                return key is None or self.headers.get("Authorization") == f"Bearer {key}"

        self.httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def requests(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def gets(self) -> list[tuple[float, str]]:
        with self.state.lock:
            return list(self.state.gets)

    def _admit(self, body: dict[str, Any]) -> bool:
        """Record the request; False when the server is (now) dead and must drop it."""
        b, state = self.behaviour, self.state
        with state.lock:
            state.requests.append(Received(time.monotonic(), body))
            if state.dead:
                return False
            if b.die_after is not None and state.accepted >= b.die_after:
                state.dead = True
                return False
            state.accepted += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            state.arrived.notify_all()
            number = state.accepted
            if number <= b.hold_first:  # wait for the rest of the first ones
                if not state.arrived.wait_for(
                    lambda: state.accepted >= b.hold_first, b.hold_timeout_s
                ):
                    state.hold_broken = True
            return True

    def _count_caches(self, body: dict[str, Any], prompt_tokens: int) -> None:
        """What vLLM's caches would serve of this request (``prefix_caching``)."""
        if not self.behaviour.prefix_caching:
            return
        messages = json.dumps(body.get("messages"), sort_keys=True)
        images = messages.count('"image_url"') // 2  # {"type": "image_url", "image_url": ...}
        with self.state.lock:
            hit = self.behaviour.always_hit or messages in self.state.seen
            self.state.seen.add(messages)
            counters = self.state.counters
            counters["prefix_cache_queries"] += prompt_tokens
            counters["mm_cache_queries"] += images
            if hit:
                counters["prefix_cache_hits"] += prompt_tokens
                counters["mm_cache_hits"] += images

    def metrics(self) -> str:
        """vLLM's cache counters and cache configuration, as its /metrics writes them."""
        with self.state.lock:
            counters = dict(self.state.counters)
        labels = f'engine="0",model_name="{MODEL}"'
        lines = [
            "# TYPE vllm:cache_config_info gauge",
            'vllm:cache_config_info{block_size="16",enable_prefix_caching="True",engine="0"} 1.0',
        ]
        for name, value in counters.items():
            lines += [f"# TYPE vllm:{name} counter", f"vllm:{name}_total{{{labels}}} {value}.0"]
        return "\n".join(lines) + "\n"

    def _finishing(self) -> None:
        """The request's last bytes go out next: it no longer counts as in flight."""
        with self.state.lock:
            self.state.in_flight -= 1

    def chat(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        b = self.behaviour
        if not self._admit(body):
            handler.close_connection = True
            return
        if b.mode == "no_length_extensions" and any(k in body for k in LENGTH_EXTENSIONS):
            named = ", ".join(k for k in LENGTH_EXTENSIONS if k in body)
            message = f"Unrecognized request argument supplied: {named}"
            self._finishing()
            handler._json(400, {"error": {"message": message, "code": 400}})
            return
        if b.mode in ("http400", "http500"):
            status = int(b.mode[4:])
            self._finishing()
            handler._json(status, {"error": {"message": f"fake failure {status}", "code": status}})
            return
        prompt_tokens = b.count_prompt(body) if b.count_prompt else b.prompt_tokens
        self._count_caches(body, prompt_tokens)
        if b.mode == "slow":
            time.sleep(b.delay_s)
        tokens = int(body.get("min_tokens") or 1)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        out = handler.wfile
        out.write(_chunk({"role": "assistant", "content": ""}))
        out.flush()
        time.sleep(b.first_token_delay_s)
        out.write(_chunk({"content": "A"}))
        if b.mode == "cut":
            out.write(_chunk({"content": " and"}))
            self._finishing()
            out.flush()
            handler.close_connection = True
            return
        for _ in range(tokens - 1):
            out.flush()
            time.sleep(b.token_gap_s)
            out.write(_chunk({"content": " A"}))
        out.write(_chunk({}, finish="length" if tokens > 1 else "stop"))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        }
        out.write(_chunk(None, usage=usage))
        self._finishing()
        out.write(b"data: [DONE]\n\n")
        out.flush()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        except OSError:
            pass
