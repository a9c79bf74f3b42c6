"""One timed batch: its requests' timings, its wall time, and how vLLM scheduled it.

vLLM takes one timestamp per scheduler step and gives it to every request it first
schedules in that step (V1 ``scheduled_ts``, V0 ``first_scheduled_time``), and one per step
output to every first token (``first_token_ts`` / ``first_token_time``). Equal values
therefore mean the same step; a batch is *staggered* when its requests were first scheduled
in more than one step. Pure logic over kit.engines.timing; seconds inside, ms in records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.engines.timing import (
    UNKNOWN_MARKS,
    RequestMarks,
    RequestTiming,
)
from kit.records.perf import BatchSchedule, RequestSpan, ScheduleRecord


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


def summarize_schedules(
    timed: Sequence[BatchSchedule], probe: BatchSchedule | None = None
) -> ScheduleRecord:
    """The timed batches' schedules (and the probe's), before the token-budget verdict
    (kit.perf.point_records adds it)."""

    def biggest(values: Iterable[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return max(present) if present else None

    staggered_iterations = sum(s.staggered is True for s in timed)
    unknown = sum(s.staggered is None for s in timed)
    probe_staggered = None if probe is None else probe.staggered
    if staggered_iterations or probe_staggered:
        staggered: bool | None = True
    else:
        staggered = None if unknown else False
    return ScheduleRecord(
        batches=tuple(timed),
        staggered_iterations=staggered_iterations,
        unknown_iterations=unknown,
        probe_staggered=probe_staggered,
        arrival_spread_ms_max=biggest(s.arrival_spread_ms for s in timed),
        scheduling_spread_ms_max=biggest(s.scheduling_spread_ms for s in timed),
        scheduling_steps_max=max((s.scheduling_steps for s in timed), default=0),
        staggered=staggered,
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
    def from_batch(cls, batch: Any) -> RunMeasurement:
        """A ``kit.engines.types.Batch`` (either backend); a server reports no engine timestamps."""
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


def timing_values(timings: Iterable[RequestTiming], name: str) -> list[float]:
    return [v for t in timings if (v := getattr(t, name)) is not None]


def request_timeline(marks: list[RequestMarks]) -> list[RequestSpan]:
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
        RequestSpan(
            arrival=since(m.arrival, first_arrival),
            queued=since(m.queued, origin),
            scheduled=since(m.scheduled, origin),
            first_token=since(m.first_token, origin),
            last_token=since(m.last_token, origin),
        )
        for m in marks
    ]
