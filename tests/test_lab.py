"""`make lab`: the command it runs starts JupyterLab on 127.0.0.1 and stops cleanly.

The test runs the target's own command through make (``LAB_CMD``, with the Makefile's
exported environment) but without the ``venv`` prerequisite, so it never reinstalls.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import psutil
import pytest

from .conftest import REPO

TOKEN = "kit-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, token: str | None = TOKEN):
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read() or b"null")


def make(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "-s", "--no-print-directory", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_lab_is_a_phony_target_running_lab_cmd():
    makefile = (REPO / "Makefile").read_text()
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    assert "lab" in phony.split()
    proc = make("--eval", "print-lab-cmd: ; @echo $(LAB_CMD)", "print-lab-cmd")
    command = proc.communicate(timeout=60)[0].strip()
    assert command.startswith(".venv/bin/jupyter lab ")
    assert "--ServerApp.ip=127.0.0.1" in command and "--no-browser" in command
    assert "$(LAB_CMD)" in makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]


def connections(process: psutil.Process) -> list:
    """A process's sockets; none for a short-lived helper that ended meanwhile."""
    try:
        return process.net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return []


def test_lab_command_serves_on_localhost_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {**os.environ, "JUPYTER_TOKEN": TOKEN, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    proc = make("--eval", "lab-test: ; $(LAB_CMD)", "lab-test", f"LAB_PORT={port}", env=env)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = get(port, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert status is not None, f"no answer on 127.0.0.1:{port}; exit {proc.poll()}"
        assert status[0] == 200 and "started" in status[1]
        with pytest.raises(urllib.error.HTTPError) as denied:
            get(port, "/api/status", token=None)
        assert denied.value.code == 403  # a token is required
        _, listing = get(port, "/api/contents/notebooks")
        assert {"demo.ipynb", "explore.ipynb"} <= {item["name"] for item in listing["content"]}
        _, specs = get(port, "/api/kernelspecs")
        assert "python3" in specs["kernelspecs"]
        listening = {
            c.laddr.ip
            for p in psutil.Process(proc.pid).children(recursive=True)
            for c in connections(p)
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
    finally:
        servers = psutil.Process(proc.pid).children() if proc.poll() is None else []
        for server in servers:  # jupyter-lab itself, as Ctrl-C / kill would
            server.send_signal(signal.SIGTERM)
        try:
            output = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
            pytest.fail("JupyterLab did not stop within 60 s of SIGTERM:\n" + output[-3000:])
    assert proc.returncode == 0, output[-3000:]
    assert "received signal 15, stopping" in output
    assert f"http://127.0.0.1:{port}/lab" in output
    for server in servers:
        assert not server.is_running()
    with pytest.raises(urllib.error.URLError):
        get(port, "/api/status")
