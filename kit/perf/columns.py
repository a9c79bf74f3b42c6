"""The two column sets of a perf point, from its timed batches (kit.perf.batches).

* the vendor's (:func:`vendor_columns`): exactly what Enflame's
  ``benchmarks/benchmark_vision_language.py --perf`` printed, so the vendor table can be
  compared like for like;
* a standard set (:func:`standard_columns`): mean / median / p90 / p99 over requests plus
  the spread across iterations, the way ``vllm bench latency`` reports.

Per-request timings are seconds (kit.engines.timing); the column sets are in ms and are
the records kit.records.perf writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kit.core.stats import distribution, mean, sample_std
from kit.perf.batches import RunMeasurement, timing_values
from kit.records.perf import STANDARD_METRICS, StandardColumns, VendorColumns


def vendor_prefill_ms(run: RunMeasurement) -> float | None:
    """Mean over requests of (first token - first scheduled), ms (requests without it skipped)."""
    m = mean(timing_values(run.timings, "prefill_s"))
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
    return 1000.0 * sum(timing_values(run.timings, "decode_s")) / denom


def probe_ttft_ms(run: RunMeasurement) -> float | None:
    """Mean TTFT over the requests of a max_tokens=1 probe run, ms."""
    m = mean(timing_values(run.timings, "ttft_s"))
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
        **{name: mean(values) for name, values in per_iteration.items()},
        per_iteration={name: tuple(values) for name, values in per_iteration.items()},
    )


def standard_columns(timed_runs: Sequence[RunMeasurement]) -> StandardColumns:
    """Standard column set over all requests of all timed iterations."""
    metrics = {
        key: distribution([timing_values(r.timings, attr) for r in timed_runs], scale=1000.0)
        for key, attr in STANDARD_METRICS.items()
    }
    tps = [r.tps for r in timed_runs]
    return StandardColumns(
        metrics=metrics,
        tps_per_iteration=tuple(tps),
        tps_mean=mean(tps),
        tps_std=sample_std(tps),
        iterations=len(timed_runs),
        num_requests=sum(r.num_requests for r in timed_runs),
    )
