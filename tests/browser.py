"""Headless Chromium for report checks: screenshots, the rendered DOM, and outbound requests.

Chromium is started with its background networking off and every request forced through a
recording proxy on 127.0.0.1 that refuses to forward anything, so "no request left the
machine" is an observation (the proxy's log is empty), not an assumption.
"""

from __future__ import annotations

import html
import http.server
import json
import re
import shutil
import socketserver
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter,"
    "AutofillServerCommunication,InterestFeedContentSuggestions,SafeBrowsing,"
    "PrivacySandboxSettings4,SignInProfileCreation",
]


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt when missing (CI and dev machines run as root)."""
    found = shutil.which("chromium")
    if found:
        return found
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(
                f"could not install chromium ({' '.join(command)}): {proc.stderr[-500:]}"
            )
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError("apt-get installed chromium but it is not on PATH")
    return found


class _RecordingProxy(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def _refuse(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        self.send_error(403, "this proxy forwards nothing")

    do_GET = do_POST = do_HEAD = do_CONNECT = do_OPTIONS = _refuse

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@contextmanager
def recording_proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RecordingProxy)
    server.daemon_threads = True
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _chromium(chromium: str, proxy_port: int, *args: str, timeout: int = 120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            "--proxy-bypass-list=<-loopback>",
            *args,
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-800:]}")
    return proc.stdout


def _host(request_line: str) -> str:
    target = request_line.split(" ", 1)[1]
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].split(":", 1)[0]


#: Hosts of Chromium's own services (sign-in, updates, safe browsing, ...): it may contact
#: them at any start, the flags above notwithstanding, whether or not it did so on the
#: about:blank probe below (a fresh clone's suite once saw accounts.google.com only on the
#: page's start). No report asks for these; a report that leaks asks for a CDN or fonts.
CHROMIUM_SERVICE_HOSTS = frozenset(
    {
        "accounts.google.com",
        "clients1.google.com",
        "clients2.google.com",
        "clientservices.googleapis.com",
        "update.googleapis.com",
        "safebrowsingohttpgateway.googleapis.com",
        "optimizationguide-pa.googleapis.com",
        "content-autofill.googleapis.com",
        "redirector.gvt1.com",
        "edgedl.me.gvt1.com",
    }
)


def browser_own_hosts(chromium: str) -> set[str]:
    """Hosts Chromium contacts by itself (sign-in, connectivity): its services' hosts, and
    whatever it contacted with an empty page."""
    with recording_proxy() as proxy:
        _chromium(
            chromium,
            proxy.server_address[1],
            "--virtual-time-budget=5000",
            "--dump-dom",
            "about:blank",
        )
        return {_host(r) for r in proxy.requests} | CHROMIUM_SERVICE_HOSTS


def load_page(
    chromium: str, page: Path, screenshot: Path, ignore_hosts: set[str] = frozenset()
) -> tuple[str, list[str]]:
    """Screenshot and rendered DOM of ``page``, plus the requests it made that tried to
    leave the machine (the browser's own background hosts, seen on about:blank, excluded)."""
    with recording_proxy() as proxy:
        port = proxy.server_address[1]
        url = page.resolve().as_uri()
        _chromium(chromium, port, "--window-size=1280,2400", f"--screenshot={screenshot}", url)
        dom = _chromium(chromium, port, "--virtual-time-budget=5000", "--dump-dom", url)
        return dom, [r for r in proxy.requests if _host(r) not in ignore_hosts]


_EVALUATE = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "kit-evaluated";
  try { out.textContent = JSON.stringify((%s)()); }
  catch (error) { out.textContent = JSON.stringify({error: String(error)}); }
  document.body.appendChild(out);
});
</script>"""


def evaluate(chromium: str, page: Path, function_js: str, window: str = "1280,2400") -> Any:
    """What the JavaScript function ``function_js`` returns (as JSON) when run in ``page``
    after it loaded and laid out, at ``window`` size: a copy of the page with the call
    appended runs in Chromium, which writes the result into the DOM it dumps."""
    text = page.read_text(encoding="utf-8")
    script = _EVALUATE % function_js
    head, found, tail = text.rpartition("</body>")
    text = f"{head}{script}</body>{tail}" if found else text + script
    with tempfile.TemporaryDirectory() as folder, recording_proxy() as proxy:
        copy = Path(folder) / page.name
        copy.write_text(text, encoding="utf-8")
        dom = _chromium(
            chromium,
            proxy.server_address[1],
            f"--window-size={window}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            copy.as_uri(),
        )
    match = re.search(r'<pre id="kit-evaluated">(.*?)</pre>', dom, re.S)
    if match is None:
        raise RuntimeError(f"the script did not run in {page.name}")
    result = json.loads(html.unescape(match.group(1)))
    if isinstance(result, dict) and set(result) == {"error"}:
        raise RuntimeError(f"the script failed in {page.name}: {result['error']}")
    return result
