"""Load for a served model: when requests are sent, and what the client measured of them.

A point of a server sweep sends ``num_requests`` requests, at most ``concurrency`` at a
time, arriving as a Poisson process of ``request_rate`` per second (``inf``: all at once).
``burstiness`` shapes the gaps as vLLM's serving benchmark does: gamma-distributed with
shape ``burstiness`` and mean 1 / rate, so 1 is Poisson, below 1 burstier, above 1 more
regular. Metrics follow ``vllm bench serve``: TTFT is the first content chunk after the
request was sent, ITL the gaps between later chunks, TPOT = (E2E - TTFT) / (output - 1),
output throughput = output tokens / the point's wall time. Pure logic: the HTTP side is
kit.engines.openai_client.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from kit.core.stats import Distribution, distribution
from kit.engines.timing import StreamTiming
from kit.records.perf import LoadSummary


def arrival_offsets(
    num_requests: int, request_rate: float, burstiness: float = 1.0, seed: int = 0
) -> list[float]:
    """Seconds after the point's start at which each request is sent."""
    if num_requests < 0:
        raise ValueError("num_requests must be >= 0")
    if burstiness <= 0 or not math.isfinite(burstiness):
        raise ValueError(f"burstiness must be a positive finite number, got {burstiness}")
    if math.isinf(request_rate):
        return [0.0] * num_requests
    if not request_rate > 0:
        raise ValueError(f"request_rate must be > 0 or inf, got {request_rate}")
    rng = np.random.default_rng(seed)
    gaps = rng.gamma(shape=burstiness, scale=1.0 / (request_rate * burstiness), size=num_requests)
    gaps[0] = 0.0  # the first request goes at once
    return [float(x) for x in np.cumsum(gaps)]


def meets_slo(timing: StreamTiming, slo_ttft_ms: float | None, slo_tpot_ms: float | None) -> bool:
    """A completed request within every SLO given (vLLM's goodput definition)."""
    if timing.error is not None or timing.e2e_s is None:
        return False
    if slo_ttft_ms is not None and (timing.ttft_s is None or timing.ttft_s * 1000 > slo_ttft_ms):
        return False
    if slo_tpot_ms is not None and timing.tpot_s is not None and timing.tpot_s * 1000 > slo_tpot_ms:
        return False
    return True


def summarize_load(
    timings: Sequence[StreamTiming],
    wall_s: float,
    slo_ttft_ms: float | None = None,
    slo_tpot_ms: float | None = None,
) -> LoadSummary:
    done = [t for t in timings if t.error is None and t.e2e_s is not None]

    def dist(values: list[float]) -> Distribution:
        return distribution([values], scale=1000.0)

    output_tokens = sum(t.output_tokens or 0 for t in done)
    slo = slo_ttft_ms is not None or slo_tpot_ms is not None
    good = sum(meets_slo(t, slo_ttft_ms, slo_tpot_ms) for t in done) if slo else None
    return LoadSummary(
        requests=len(timings),
        completed=len(done),
        failed=len(timings) - len(done),
        wall_s=wall_s,
        request_throughput=len(done) / wall_s if wall_s > 0 else 0.0,
        output_throughput=output_tokens / wall_s if wall_s > 0 else 0.0,
        ttft_ms=dist([t.ttft_s for t in done if t.ttft_s is not None]),
        tpot_ms=dist([t.tpot_s for t in done if t.tpot_s is not None]),
        itl_ms=dist([gap for t in done for gap in t.itl_s]),
        e2e_ms=dist([t.e2e_s for t in done if t.e2e_s is not None]),
        goodput=None if good is None else (good / wall_s if wall_s > 0 else 0.0),
        slo_met=good,
    )
