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

import numpy as np

# ----------------------------------------------------------------------------------------
# Per-request timing
# ----------------------------------------------------------------------------------------


@dataclass
class RequestTiming:
    """Timing of one finished request, seconds; None where the stats cannot give it."""

    ttft_s: float | None
    queue_s: float | None
    prefill_s: float | None
    decode_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    num_prompt_tokens: int
    num_output_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _set(ts: float | None) -> bool:
    """V1 stats default unset timestamps to 0.0; V0 uses None."""
    return ts is not None and ts != 0.0


def _diff(later: float | None, earlier: float | None) -> float | None:
    """later - earlier when both timestamps are set and ordered, else None."""
    if not (_set(later) and _set(earlier)):
        return None
    d = later - earlier
    return d if d >= 0 else None


def _tpot(decode_s: float | None, num_output_tokens: int) -> float | None:
    """Decode time per output token; the first token belongs to prefill, hence n - 1."""
    if decode_s is None or num_output_tokens <= 1:
        return None
    return decode_s / (num_output_tokens - 1)


def timing_from_v1(
    stats: Any,
    num_prompt_tokens: int,
    num_output_tokens: int | None = None,
    finished_at_wall: float | None = None,
) -> RequestTiming:
    """Timing from a V1 ``RequestStateStats``-like object (same formulas as vLLM's own).

    queue = scheduled_ts - queued_ts, prefill = first_token_ts - scheduled_ts,
    decode = last_token_ts - first_token_ts (all engine monotonic clock),
    TPOT = decode / (n - 1), TTFT = first_token_latency (wall, from arrival, so it
    includes image preprocessing and queueing).

    E2E (arrival -> last token) without mixing clocks: the first token happened at
    monotonic first_token_ts and, on the wall clock, first_token_latency after arrival.
    Shifting the monotonic interval [queued_ts, last_token_ts] onto the arrival-based
    axis gives  e2e = (last_token_ts - queued_ts) + (first_token_latency -
    (first_token_ts - queued_ts))  which simplifies to  first_token_latency + decode:
    queued_ts cancels, so the result does not depend on the queue timestamp. Only
    differences within one clock are ever taken. If ``finished_at_wall`` (a wall-clock
    time.time() at which the caller saw this request finish, e.g. when streaming) is
    given, e2e = finished_at_wall - arrival_time instead (wall - wall), which is how
    vLLM's own e2e histogram is defined; for a batched ``llm.generate`` the caller only
    sees the end of the whole batch, so leave it None there.

    ``num_output_tokens`` defaults to ``stats.num_generation_tokens``.
    """
    n_out = stats.num_generation_tokens if num_output_tokens is None else num_output_tokens
    queue = _diff(stats.scheduled_ts, stats.queued_ts)
    prefill = _diff(stats.first_token_ts, stats.scheduled_ts)
    decode = _diff(stats.last_token_ts, stats.first_token_ts)
    has_first = _set(stats.first_token_ts)
    ttft = stats.first_token_latency if has_first else None
    if finished_at_wall is not None and _set(stats.arrival_time):
        e2e = finished_at_wall - stats.arrival_time
    elif ttft is not None and decode is not None:
        e2e = ttft + decode
    else:
        e2e = None
    return RequestTiming(
        ttft_s=ttft,
        queue_s=queue,
        prefill_s=prefill,
        decode_s=decode,
        tpot_s=_tpot(decode, n_out),
        e2e_s=e2e,
        num_prompt_tokens=int(num_prompt_tokens),
        num_output_tokens=int(n_out),
    )


def timing_from_v0(metrics: Any, num_prompt_tokens: int, num_output_tokens: int) -> RequestTiming:
    """Timing from a V0 ``RequestMetrics``-like object (all fields wall clock).

    TTFT = first_token_time - arrival_time; queue = time_in_queue (else
    first_scheduled_time - arrival_time); prefill = first_token_time -
    first_scheduled_time (the vendor's "prefill latency"); decode = last_token_time -
    first_token_time; e2e = last_token_time - arrival_time. V0 only advances
    last_token_time while stats are logged; if it is missing or earlier than the first
    token, finished_time stands in for it.
    """
    first = getattr(metrics, "first_token_time", None)
    last = getattr(metrics, "last_token_time", None)
    if not (_set(last) and _set(first) and last >= first):
        last = getattr(metrics, "finished_time", None)
    arrival = metrics.arrival_time
    sched = getattr(metrics, "first_scheduled_time", None)
    queue = getattr(metrics, "time_in_queue", None)
    if queue is None:
        queue = _diff(sched, arrival)
    decode = _diff(last, first)
    return RequestTiming(
        ttft_s=_diff(first, arrival),
        queue_s=queue,
        prefill_s=_diff(first, sched),
        decode_s=decode,
        tpot_s=_tpot(decode, num_output_tokens),
        e2e_s=_diff(last, arrival),
        num_prompt_tokens=int(num_prompt_tokens),
        num_output_tokens=int(num_output_tokens),
    )


def timing_from_output(request_output: Any, finished_at_wall: float | None = None) -> RequestTiming:
    """Timing of one ``RequestOutput``; picks V1 or V0 by the metrics' attributes."""
    metrics = getattr(request_output, "metrics", None)
    if metrics is None:
        raise ValueError(
            f"RequestOutput {getattr(request_output, 'request_id', '?')!r} has no metrics: "
            "vLLM only records per-request timings when the engine is built with "
            "disable_log_stats=False (e.g. LLM(..., disable_log_stats=False))."
        )
    prompt_ids = getattr(request_output, "prompt_token_ids", None) or []
    outputs = getattr(request_output, "outputs", None) or []
    n_out = sum(len(o.token_ids) for o in outputs)
    if hasattr(metrics, "first_token_ts") and hasattr(metrics, "scheduled_ts"):
        return timing_from_v1(metrics, len(prompt_ids), n_out, finished_at_wall)
    if hasattr(metrics, "first_scheduled_time") and hasattr(metrics, "first_token_time"):
        return timing_from_v0(metrics, len(prompt_ids), n_out)
    raise TypeError(
        f"unrecognised RequestOutput.metrics type {type(metrics).__name__}: expected vLLM V1 "
        "RequestStateStats (first_token_ts, scheduled_ts, ...) or V0 RequestMetrics "
        "(first_scheduled_time, first_token_time, ...)"
    )


# ----------------------------------------------------------------------------------------
# How a batch was scheduled
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestMarks:
    """The timestamps of one request, seconds. ``arrival`` is wall clock; the others are the
    engine's monotonic clock on V1 and wall clock on V0, so only differences among them are
    meaningful."""

    arrival: float | None
    queued: float | None
    scheduled: float | None
    first_token: float | None
    last_token: float | None


UNKNOWN_MARKS = RequestMarks(None, None, None, None, None)  # a request seen over HTTP


def marks_from_metrics(metrics: Any) -> RequestMarks:
    """Timestamps from V1 ``RequestStateStats`` or V0 ``RequestMetrics`` (unset -> None)."""

    def get(*names: str) -> float | None:
        for name in names:
            value = getattr(metrics, name, None)
            if _set(value):
                return float(value)
        return None

    if hasattr(metrics, "scheduled_ts"):
        return RequestMarks(
            arrival=get("arrival_time"),
            queued=get("queued_ts"),
            scheduled=get("scheduled_ts"),
            first_token=get("first_token_ts"),
            last_token=get("last_token_ts"),
        )
    return RequestMarks(
        arrival=get("arrival_time"),
        queued=get("arrival_time"),
        scheduled=get("first_scheduled_time"),
        first_token=get("first_token_time"),
        last_token=get("last_token_time", "finished_time"),
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


# ----------------------------------------------------------------------------------------
# One timed llm.generate(batch) call
# ----------------------------------------------------------------------------------------


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


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


# ----------------------------------------------------------------------------------------
# Vendor-compatible columns
# ----------------------------------------------------------------------------------------


@dataclass
class VendorColumns:
    """The vendor table's four columns, averaged over iterations (None if not measurable),
    and the per-iteration values behind each mean (for intervals across iterations)."""

    ttft_ms: float | None
    tps: float | None
    prefill_ms: float | None
    decode_ms_per_token: float | None
    per_iteration: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vendor_prefill_ms(run: RunMeasurement) -> float | None:
    """Mean over requests of (first token - first scheduled), ms (requests without it skipped)."""
    m = _mean(_values(run.timings, "prefill_s"))
    return None if m is None else m * 1000.0


def vendor_decode_ms_per_token(run: RunMeasurement) -> float | None:
    """The vendor's "decode latency", ms/token.

    The vendor script divides the *sum* of vLLM's ``time_per_output_token`` Prometheus
    histogram (its last sample, ``_sum``) by (total output tokens - number of requests).
    That histogram receives one observation per request per decode step (the gap since
    that request's previous token), so its sum is the sum over requests of
    (last token - first token), i.e. sum of per-request decode times. Hence

        decode_ms_per_token = 1000 * sum_r decode_r / (sum_r n_out_r - num_requests)

    a token-weighted mean TPOT (about one decode step of the whole batch), not a sum of
    per-request TPOT values.
    """
    denom = run.total_output_tokens - run.num_requests
    if denom <= 0:
        return None
    return 1000.0 * sum(_values(run.timings, "decode_s")) / denom


def probe_ttft_ms(run: RunMeasurement) -> float | None:
    """Mean TTFT over the requests of a max_tokens=1 probe run, ms."""
    m = _mean(_values(run.timings, "ttft_s"))
    return None if m is None else m * 1000.0


def vendor_columns(
    timed_runs: Sequence[RunMeasurement], probe_runs: Sequence[RunMeasurement] = ()
) -> VendorColumns:
    """Vendor-compatible columns, each the mean of its per-iteration values.

    TPS = output tokens / wall time; prefill = ``vendor_prefill_ms``; decode =
    ``vendor_decode_ms_per_token`` (all from the timed max-output-len runs). TTFT is not
    printed by the vendor script; the table's TTFT cannot fit inside its timed run, so it
    came from a separate max_tokens=1 run: here the mean of ``probe_ttft_ms`` over
    ``probe_runs`` (None when no probe was run). The vendor script ran one iteration; with
    several it would have mixed totals across iterations, so we average per iteration.
    """

    def measured(xs: Iterable[float | None]) -> list[float]:
        return [x for x in xs if x is not None]

    per_iteration = {
        "ttft_ms": measured(probe_ttft_ms(r) for r in probe_runs),
        "tps": measured(r.tps for r in timed_runs),
        "prefill_ms": measured(vendor_prefill_ms(r) for r in timed_runs),
        "decode_ms_per_token": measured(vendor_decode_ms_per_token(r) for r in timed_runs),
    }
    return VendorColumns(
        **{name: _mean(values) for name, values in per_iteration.items()},
        per_iteration=per_iteration,
    )


# ----------------------------------------------------------------------------------------
# Standard columns
# ----------------------------------------------------------------------------------------


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


def percentile(values: Sequence[float], q: float) -> float | None:
    """q-th percentile (0-100), numpy linear interpolation; None for no values."""
    if not len(values):
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear"))


def _sample_std(xs: Sequence[float]) -> float | None:
    return float(np.std(xs, ddof=1)) if len(xs) >= 2 else None


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


STANDARD_METRICS: dict[str, str] = {
    # output key (unit in the name) -> RequestTiming attribute (seconds)
    "ttft_ms": "ttft_s",
    "tpot_ms": "tpot_s",
    "e2e_ms": "e2e_s",
    "prefill_ms": "prefill_s",
    "decode_ms": "decode_s",
    "queue_ms": "queue_s",
}


@dataclass
class StandardColumns:
    """Per-request distributions (ms) and per-iteration throughput (output tokens/s)."""

    ttft_ms: MetricSummary
    tpot_ms: MetricSummary
    e2e_ms: MetricSummary
    prefill_ms: MetricSummary
    decode_ms: MetricSummary
    queue_ms: MetricSummary
    tps_per_iteration: list[float]
    tps_mean: float | None
    tps_std: float | None
    iterations: int
    num_requests: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k).to_dict() for k in STANDARD_METRICS}
        out.update(
            tps_per_iteration=list(self.tps_per_iteration),
            tps_mean=self.tps_mean,
            tps_std=self.tps_std,
            iterations=self.iterations,
            num_requests=self.num_requests,
        )
        return out


def standard_columns(timed_runs: Sequence[RunMeasurement]) -> StandardColumns:
    """Standard column set over all requests of all timed iterations."""
    summaries = {
        key: summarize([_values(r.timings, attr) for r in timed_runs], scale=1000.0)
        for key, attr in STANDARD_METRICS.items()
    }
    tps = [r.tps for r in timed_runs]
    return StandardColumns(
        **summaries,
        tps_per_iteration=tps,
        tps_mean=_mean(tps),
        tps_std=_sample_std(tps),
        iterations=len(timed_runs),
        num_requests=sum(r.num_requests for r in timed_runs),
    )


# ----------------------------------------------------------------------------------------
# One point of a sweep
# ----------------------------------------------------------------------------------------


@dataclass
class PerfPoint:
    """One measured scenario: its parameters and both column sets, JSON-able via to_dict."""

    input_len: int
    max_output_len: int
    batch_size: int
    input_vision_shape: list[tuple[int, int]] | None = None
    num_crops: int | None = None
    iterations: int = 1
    warmup_iterations: int = 1
    max_model_len: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    vendor: VendorColumns | None = None
    standard: StandardColumns | None = None
    schedule: ScheduleSummary | None = None

    def params(self) -> dict[str, Any]:
        """Scenario parameters; also the keys ``references.match_references`` reads."""
        shape = None
        if self.input_vision_shape is not None:
            shape = [[int(h), int(w)] for h, w in self.input_vision_shape]
        return {
            "input_len": self.input_len,
            "max_output_len": self.max_output_len,
            "batch_size": self.batch_size,
            "input_vision_shape": shape,
            "num_crops": self.num_crops,
            "iterations": self.iterations,
            "warmup_iterations": self.warmup_iterations,
            "max_model_len": self.max_model_len,
            **self.extra,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params(),
            "vendor": None if self.vendor is None else self.vendor.to_dict(),
            "standard": None if self.standard is None else self.standard.to_dict(),
            "schedule": None if self.schedule is None else self.schedule.to_dict(),
        }
