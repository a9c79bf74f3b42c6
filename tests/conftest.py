"""Shared fixtures. Engine tests are marked ``slow``; the tiny model is built once and cached."""

from __future__ import annotations

import os
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
