"""Performance metrics for VLM inference runs: pure logic, no engine.

Per-request timings are read from the ``metrics`` object vLLM attaches to each
``RequestOutput`` when the engine is built with ``disable_log_stats=False``:

* V1 (current vLLM): ``vllm.v1.metrics.stats.RequestStateStats``. ``arrival_time`` is
  wall clock (frontend, taken before multimodal preprocessing); ``queued_ts``,
  ``scheduled_ts``, ``first_token_ts``, ``last_token_ts`` are engine-core monotonic
  timestamps; ``first_token_latency`` is a wall-clock difference (frontend iteration
  time minus ``arrival_time``). The two clocks are never subtracted from each other.
* V0 (vLLM <= 0.6, the vendor's 0.6.1.post2): ``vllm.sequence.RequestMetrics``, all wall
  clock.

Two column sets are built from them:

* the vendor's (``vendor_columns``): exactly what Enflame's
  ``benchmarks/benchmark_vision_language.py --perf`` printed, so the vendor table can be
  compared like for like;
* a standard set (``standard_columns``): mean / median / p90 / p99 over requests plus
  spread across iterations, the way ``vllm bench latency`` reports.

All durations inside this module are seconds; the column sets convert to ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """q-th percentile (0-100), numpy linear interpolation; None for no values."""
    if not len(values):
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear"))


def _sample_std(xs: Sequence[float]) -> float | None:
    return float(np.std(xs, ddof=1)) if len(xs) >= 2 else None


@dataclass
class MetricSummary:
    """Distribution of one metric, ms: over all requests, and spread of per-iteration means.

    Percentiles use numpy's linear interpolation. ``iter_std`` is the sample standard
    deviation (ddof=1) of the per-iteration means, None with fewer than 2 iterations.
    """

    count: int
    mean: float | None
    median: float | None
    p90: float | None
    p99: float | None
    iter_min: float | None
    iter_max: float | None
    iter_std: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def summarize(per_iteration: Sequence[Sequence[float]], scale: float = 1.0) -> MetricSummary:
    """Summary of values grouped by iteration, each multiplied by ``scale``."""
    groups = [[v * scale for v in g] for g in per_iteration]
    flat = [v for g in groups for v in g]
    means = [m for g in groups if (m := _mean(g)) is not None]
    return MetricSummary(
        count=len(flat),
        mean=_mean(flat),
        median=percentile(flat, 50),
        p90=percentile(flat, 90),
        p99=percentile(flat, 99),
        iter_min=min(means) if means else None,
        iter_max=max(means) if means else None,
        iter_std=_sample_std(means),
    )
