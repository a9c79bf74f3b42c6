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

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.engines.timing import (
    UNKNOWN_MARKS,
    RequestMarks,
    RequestTiming,
    marks_from_metrics,
    timing_from_output,
)


@dataclass
class BatchSchedule:
    """Whether a batch was prefilled together, read from its requests' timestamps.

    vLLM takes one timestamp per scheduler step and gives it to every request it first
    schedules in that step (V1 ``scheduled_ts``, V0 ``first_scheduled_time``), and one per
    step output to every first token (``first_token_ts`` / ``first_token_time``). Equal
    values therefore mean the same step; a batch is *staggered* when its requests were
    first scheduled in more than one step. Spreads are last minus first, ms.
    """

    requests: int
    arrival_spread_ms: float | None
    scheduling_spread_ms: float | None
    scheduling_steps: int  # distinct first-scheduled steps
    first_token_steps: int  # distinct steps that produced the first tokens
    staggered: bool | None  # None: the engine did not report every request's timestamps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spread_ms(values: Sequence[float]) -> float | None:
    return (max(values) - min(values)) * 1000.0 if len(values) >= 2 else 0.0 if values else None


def batch_schedule(marks: Sequence[RequestMarks]) -> BatchSchedule:
    arrivals = [m.arrival for m in marks if m.arrival is not None]
    scheduled = [m.scheduled for m in marks if m.scheduled is not None]
    first = [m.first_token for m in marks if m.first_token is not None]
    steps = len(set(scheduled))
    return BatchSchedule(
        requests=len(marks),
        arrival_spread_ms=_spread_ms(arrivals),
        scheduling_spread_ms=_spread_ms(scheduled),
        scheduling_steps=steps,
        first_token_steps=len(set(first)),
        staggered=None if len(scheduled) < len(marks) else steps > 1,
    )


@dataclass
class ScheduleSummary:
    """The batch schedules of a point's timed iterations (and its TTFT probe)."""

    iterations: int
    staggered_iterations: int
    unknown_iterations: int  # the engine did not report every request's timestamps
    probe_staggered: bool | None
    arrival_spread_ms_max: float | None
    scheduling_spread_ms_max: float | None
    scheduling_steps_max: int

    @property
    def staggered(self) -> bool | None:
        """True when any batch was staggered, False when none was, None when unknown."""
        if self.staggered_iterations or self.probe_staggered:
            return True
        return None if self.unknown_iterations else False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "staggered": self.staggered}


def summarize_schedules(
    timed: Sequence[BatchSchedule], probe: BatchSchedule | None = None
) -> ScheduleSummary:
    def biggest(values: Iterable[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return max(present) if present else None

    return ScheduleSummary(
        iterations=len(timed),
        staggered_iterations=sum(s.staggered is True for s in timed),
        unknown_iterations=sum(s.staggered is None for s in timed),
        probe_staggered=None if probe is None else probe.staggered,
        arrival_spread_ms_max=biggest(s.arrival_spread_ms for s in timed),
        scheduling_spread_ms_max=biggest(s.scheduling_spread_ms for s in timed),
        scheduling_steps_max=max((s.scheduling_steps for s in timed), default=0),
    )


def budget_steps(batch_size: int, input_len: int, max_num_batched_tokens: int | None) -> int:
    """Steps a scheduler without chunked prefill needs to first-schedule a batch of equal
    prompts when every request is waiting at its first step: as many whole prompts per step
    as the token budget holds (vLLM 0.6 with max_num_batched_tokens 32768 took 4 x 8192 in
    one step, but 31744 x 4 one request per step)."""
    if not max_num_batched_tokens:
        return 1
    per_step = max(1, max_num_batched_tokens // input_len)
    return math.ceil(batch_size / per_step)


@dataclass
class RunMeasurement:
    """One timed ``llm.generate(batch)``: per-request timings, the call's wall time and the
    requests' timestamps (how the batch was scheduled)."""

    timings: list[RequestTiming]
    wall_s: float
    marks: list[RequestMarks] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.wall_s > 0:
            raise ValueError(f"wall_s must be > 0 seconds, got {self.wall_s!r}")

    @classmethod
    def from_outputs(cls, outputs: Iterable[Any], wall_s: float) -> RunMeasurement:
        outputs = list(outputs)
        return cls(
            [timing_from_output(o) for o in outputs],
            wall_s,
            [marks_from_metrics(o.metrics) for o in outputs],
        )

    @classmethod
    def from_batch(cls, batch: Any) -> RunMeasurement:
        """A ``kit.backend.Batch`` (either backend); a server reports no engine timestamps."""
        return cls(
            [c.timing for c in batch.completions],
            batch.wall_s,
            [c.marks or UNKNOWN_MARKS for c in batch.completions],
        )

    @property
    def schedule(self) -> BatchSchedule:
        return batch_schedule(self.marks)

    @property
    def num_requests(self) -> int:
        return len(self.timings)

    @property
    def total_output_tokens(self) -> int:
        return sum(t.num_output_tokens for t in self.timings)

    @property
    def tps(self) -> float:
        """Output tokens per second of wall time (vendor and `vllm bench` definition)."""
        return self.total_output_tokens / self.wall_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "tps": self.tps,
            "timings": [t.to_dict() for t in self.timings],
        }


def _values(timings: Iterable[RequestTiming], name: str) -> list[float]:
    return [v for t in timings if (v := getattr(t, name)) is not None]


def request_timeline(marks: list[RequestMarks]) -> list[dict[str, float | None]]:
    """Per request, seconds: queue / prefill / decode spans from the first request's queueing
    (engine clock), and arrival from the first arrival (wall clock; never mixed with the other)."""
    queued = [m.queued for m in marks if m.queued is not None]
    arrivals = [m.arrival for m in marks if m.arrival is not None]
    if not queued:
        return []
    origin, first_arrival = min(queued), min(arrivals) if arrivals else None

    def since(value: float | None, start: float | None) -> float | None:
        return None if value is None or start is None else value - start

    return [
        {
            "arrival": since(m.arrival, first_arrival),
            "queued": since(m.queued, origin),
            "scheduled": since(m.scheduled, origin),
            "first_token": since(m.first_token, origin),
            "last_token": since(m.last_token, origin),
        }
        for m in marks
    ]
