"""Summaries of measured values: a mean, percentiles over all values, and the spread of
per-iteration means, per request as ``vllm bench serve`` reports a metric.

Percentiles use numpy's linear interpolation; ``iter_std`` is the sample standard deviation
(ddof=1) of the per-iteration means, None with fewer than two iterations. A tail percentile
is given only over enough values for its tail to hold one (:data:`TAIL_MIN_COUNT`): the
"p99" of a vendor row's 3 requests would be an interpolated maximum.
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


#: The fewest values each tail percentile is computed from: q-th needs 100 / (100 - q), so
#: that at least one value lies beyond it. Below, the percentile is None ("n too small").
TAIL_MIN_COUNT = {90: 10, 99: 100}


def tail_percentile(values: Sequence[float], q: int) -> float | None:
    """The q-th percentile where enough values were measured for it to mean one, else None."""
    return percentile(values, q) if len(values) >= TAIL_MIN_COUNT[q] else None


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
        p90=tail_percentile(flat, 90),
        p99=tail_percentile(flat, 99),
        iter_min=min(means) if means else None,
        iter_max=max(means) if means else None,
        iter_std=sample_std(means),
    )
