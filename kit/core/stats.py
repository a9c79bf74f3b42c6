"""Summaries of measured values: a mean, percentiles over all values, and the spread of
per-iteration means, the way ``vllm bench latency`` reports a metric.

Percentiles use numpy's linear interpolation; ``iter_std`` is the sample standard deviation
(ddof=1) of the per-iteration means, None with fewer than two iterations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """q-th percentile (0-100), numpy linear interpolation; None for no values."""
    if not len(values):
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear"))


def sample_std(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


@dataclass(frozen=True)
class Distribution:
    """One metric over all values, and the spread of its per-iteration means. Written as is
    into results.json (perf points, server load points) and read back with :meth:`of`."""

    count: int | None = None
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    p99: float | None = None
    iter_min: float | None = None
    iter_max: float | None = None
    iter_std: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> Distribution:
        """From a results.json mapping; what it lacks (an older file) reads as None."""
        if not isinstance(section, Mapping):
            return cls()
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


def distribution(per_iteration: Sequence[Sequence[float]], scale: float = 1.0) -> Distribution:
    """The distribution of values grouped by iteration, each multiplied by ``scale``."""
    groups = [[v * scale for v in group] for group in per_iteration]
    flat = [v for group in groups for v in group]
    means = [m for group in groups if (m := mean(group)) is not None]
    return Distribution(
        count=len(flat),
        mean=mean(flat),
        median=percentile(flat, 50),
        p90=percentile(flat, 90),
        p99=percentile(flat, 99),
        iter_min=min(means) if means else None,
        iter_max=max(means) if means else None,
        iter_std=sample_std(means),
    )
