"""Per-request timing: from vLLM's request metrics (V1 and V0), and of a streamed server request.

Offline, timings are read from the ``metrics`` object vLLM attaches to each ``RequestOutput``
when the engine is built with ``disable_log_stats=False``:

* V1 (current vLLM): ``vllm.v1.metrics.stats.RequestStateStats``. ``arrival_time`` is
  wall clock (frontend, taken before multimodal preprocessing); ``queued_ts``,
  ``scheduled_ts``, ``first_token_ts``, ``last_token_ts`` are engine-core monotonic
  timestamps; ``first_token_latency`` is a wall-clock difference (frontend iteration
  time minus ``arrival_time``). The two clocks are never subtracted from each other.
* V0 (vLLM <= 0.6, the vendor's 0.6.1.post2): ``vllm.sequence.RequestMetrics``, all wall
  clock.

Over HTTP, :class:`StreamTiming` is what the client saw: when a request was sent and when
each content chunk arrived, on one monotonic clock. Pure logic, no engine; all durations
are seconds (``StreamTiming.to_dict`` gives ms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, TypeGuard


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


def _set(ts: float | None) -> TypeGuard[float]:
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
class StreamTiming:
    """One streamed request as the client saw it: when it was sent, when each content chunk
    arrived (seconds, one monotonic clock), and the server's usage counts."""

    sent: float
    chunks: list[float] = field(default_factory=list)
    done: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None

    @property
    def ttft_s(self) -> float | None:
        return self.chunks[0] - self.sent if self.chunks else None

    @property
    def e2e_s(self) -> float | None:
        return None if self.done is None else self.done - self.sent

    @property
    def itl_s(self) -> list[float]:
        """Gaps between consecutive content chunks (one chunk may hold several tokens)."""
        return [b - a for a, b in zip(self.chunks, self.chunks[1:], strict=False)]

    @property
    def tpot_s(self) -> float | None:
        n = self.output_tokens or 0
        if self.e2e_s is None or self.ttft_s is None or n <= 1:
            return None
        return (self.e2e_s - self.ttft_s) / (n - 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttft_ms": _ms(self.ttft_s),
            "tpot_ms": _ms(self.tpot_s),
            "e2e_ms": _ms(self.e2e_s),
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "chunks": len(self.chunks),
            "error": self.error,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0
