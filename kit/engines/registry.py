"""Backends by name: ``offline`` (``vllm.LLM`` in this process, kit.engines.offline) and
``server`` (an OpenAI-compatible server the kit starts or any running one,
kit.engines.served). Both answer the requests of kit.engines.types the same way, so demo,
perf, MMMU and the explorer never branch on where the model runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.engines.offline import start_engine
from kit.engines.served import start_server_backend
from kit.engines.types import BACKENDS, Backend

STARTERS: dict[str, Callable[..., Backend]] = {
    "offline": start_engine,
    "server": start_server_backend,
}
assert tuple(STARTERS) == BACKENDS


def start_backend(params: Any, log_file: Path | None = None) -> Backend:
    """The backend ``params.backend`` names, started with the run's engine parameters (its
    output goes to ``log_file``)."""
    return STARTERS[params.backend](params, log_file)
