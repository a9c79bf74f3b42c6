"""Shared fixtures. Engine tests are marked ``slow``; the tiny model is built once and cached.

Runs that several test modules read (the demo, the perf sweep, a vllm-scheduling perf run)
are made once per session into one outputs folder: each costs an engine start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_model() -> Path:
    from kit.smoke import ensure_smoke_model

    return ensure_smoke_model()


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    """Run folders go to a temporary outputs/ instead of the repo's."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("KIT_OUTPUTS_DIR", str(folder))
    return folder


def run_kit(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: int = 900):
    """``python -m kit ...`` in a subprocess, as a user types it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kit", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


TRICKY_PROMPT = 'Is <b>this</b> a robot & "what" is it?'


@pytest.fixture(scope="session")
def shared_outputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-outputs")


def run_into(outputs: Path, notebook: str, *args: str) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m kit run NOTEBOOK ...`` into ``outputs``; the run folder it printed."""
    proc = run_kit("run", notebook, *args, env={"KIT_OUTPUTS_DIR": str(outputs)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = re.search(r"^run folder: (.+)$", proc.stdout, re.MULTILINE).group(1)
    return Path(folder), proc


@pytest.fixture(scope="session")
def demo_run(shared_outputs, smoke_model):
    """The demo as users start it, with a prompt that needs escaping."""
    return run_into(
        shared_outputs, "demo", "-f", "params/smoke-demo.yaml", "-p", "prompt", TRICKY_PROMPT
    )


@pytest.fixture(scope="session")
def perf_sweep_run(shared_outputs, smoke_model):
    """A 2 x 2 sweep under the default vendor scheduling, labelled 'first'."""
    return run_into(
        shared_outputs,
        "perf",
        *("-f", "params/smoke-perf-sweep.yaml", "-p", "max_output_len", "8"),
        *("-p", "batch_size", "1,2", "-p", "input_len", "800,1024", "-p", "label", "first"),
    )


@pytest.fixture(scope="session")
def perf_vllm_run(shared_outputs, smoke_model):
    """One point of the sweep's scenarios under scheduling: vllm, labelled 'second'."""
    return run_into(
        shared_outputs,
        "perf",
        *("-f", "params/smoke-perf.yaml", "-p", "scheduling", "vllm", "-p", "label", "second"),
        *("-p", "input_len", "800", "-p", "max_output_len", "8", "-p", "iterations", "1"),
        *("-p", "warmup", "0", "-p", "ttft_probe", "false"),
    )
