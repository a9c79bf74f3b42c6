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

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.core.stats import MetricSummary, _mean, _sample_std, summarize
from kit.perf.batches import RunMeasurement, ScheduleSummary, _values


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
