"""A small OpenAI-compatible server that misbehaves on purpose, on 127.0.0.1, for fault tests.

It answers what the kit asks of a server (``/v1/models``, ``/health``, ``/version`` and
streamed ``/v1/chat/completions`` with a usage chunk), answering every question "A", and
fails the way real deployments fail, chosen per test with ``mode``:

- ``ok``: a normal streamed answer;
- ``http400`` / ``http500``: an error status before any chunk;
- ``cut``: two content chunks, then the connection closes without a finish reason;
- ``slow``: waits ``delay_s`` before the first byte (a request timeout);
- ``die_after``: answers that many requests normally, then stops listening altogether (a
  server that died mid-run).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-model"


@dataclass
class Behaviour:
    mode: str = "ok"
    delay_s: float = 0.0
    die_after: int | None = None
    answered: int = 0


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


class ChatServer:
    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
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

            def do_GET(self):  # noqa: N802
                if self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": MODEL}]})
                elif self.path == "/health":
                    self._json(200, {})
                elif self.path == "/version":
                    self._json(200, {"version": "fake-1.0"})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.chat(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def chat(self, handler: BaseHTTPRequestHandler) -> None:
        b = self.behaviour
        if b.mode in ("http400", "http500"):
            status = int(b.mode[4:])
            handler._json(status, {"error": {"message": f"fake failure {status}", "code": status}})
            return
        if b.mode == "slow":
            time.sleep(b.delay_s)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        out = handler.wfile
        out.write(_chunk({"role": "assistant", "content": ""}))
        out.write(_chunk({"content": "A"}))
        if b.mode == "cut":
            out.write(_chunk({"content": " and"}))
            out.flush()
            handler.close_connection = True
            return
        out.write(_chunk({}, finish="stop"))
        out.write(
            _chunk(None, usage={"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11})
        )
        out.write(b"data: [DONE]\n\n")
        out.flush()
        b.answered += 1
        if b.die_after is not None and b.answered >= b.die_after:
            threading.Thread(target=self.stop, daemon=True).start()

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
