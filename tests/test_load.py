"""Load schedules, client-side stream metrics and vLLM's Prometheus histograms: pure logic."""

import math

import numpy as np
import pytest

from kit.engines.prometheus import parse_histograms, server_latencies
from kit.engines.timing import StreamTiming
from kit.perf.arrivals import arrival_offsets, meets_slo, summarize_load

approx = pytest.approx


def test_all_at_once_and_poisson_arrivals():
    assert arrival_offsets(4, math.inf) == [0.0, 0.0, 0.0, 0.0]
    offsets = arrival_offsets(2000, 10.0, seed=3)
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    gaps = np.diff(offsets)
    assert gaps.mean() == approx(0.1, rel=0.1)  # mean gap 1 / rate
    assert gaps.std() / gaps.mean() == approx(1.0, rel=0.1)  # exponential: CV 1
    assert arrival_offsets(5, 10.0, seed=3) == arrival_offsets(5, 10.0, seed=3)  # seeded


def test_burstiness_shapes_the_gaps():
    regular = np.diff(arrival_offsets(2000, 10.0, burstiness=100.0, seed=1))
    bursty = np.diff(arrival_offsets(2000, 10.0, burstiness=0.25, seed=1))
    # gamma(shape k): CV = 1 / sqrt(k), mean unchanged
    assert regular.std() / regular.mean() == approx(0.1, rel=0.15)
    assert bursty.std() / bursty.mean() == approx(2.0, rel=0.15)
    assert regular.mean() == approx(0.1, rel=0.05) and bursty.mean() == approx(0.1, rel=0.2)
    with pytest.raises(ValueError, match="burstiness"):
        arrival_offsets(3, 1.0, burstiness=0)
    with pytest.raises(ValueError, match="request_rate"):
        arrival_offsets(3, 0.0)


def test_stream_timing_follows_vllm_bench_serve():
    # sent at 10.0; first chunk 10.2; then 10.25, 10.35; done 10.35; 5 tokens
    t = StreamTiming(sent=10.0, chunks=[10.2, 10.25, 10.35], done=10.35, output_tokens=5)
    assert t.ttft_s == approx(0.2)
    assert t.itl_s == approx([0.05, 0.10])
    assert t.e2e_s == approx(0.35)
    assert t.tpot_s == approx((0.35 - 0.2) / 4)  # (E2E - TTFT) / (output - 1)
    assert StreamTiming(sent=1.0).ttft_s is None


def test_summary_throughput_and_goodput():
    fast = StreamTiming(sent=0.0, chunks=[0.1, 0.2], done=0.2, output_tokens=3)
    slow = StreamTiming(sent=0.0, chunks=[0.9, 1.0], done=1.0, output_tokens=3)
    failed = StreamTiming(sent=0.0, error="HTTP 500")
    s = summarize_load([fast, slow, failed], wall_s=2.0, slo_ttft_ms=500)
    assert (s.requests, s.completed, s.failed) == (3, 2, 1)
    assert s.output_throughput == approx(3.0)  # 6 tokens / 2 s
    assert s.request_throughput == approx(1.0)
    assert s.slo_met == 1 and s.goodput == approx(0.5)
    assert s.ttft_ms.mean == approx(500.0) and s.ttft_ms.count == 2
    assert summarize_load([fast], wall_s=1.0).goodput is None  # no SLO given
    assert meets_slo(fast, None, 60.0) and not meets_slo(fast, None, 40.0)  # TPOT 50 ms


METRICS_BEFORE = """# HELP vllm:time_to_first_token_seconds Histogram of time to first token.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 1.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 0.5
vllm:time_to_first_token_seconds_count{model_name="m"} 2.0
vllm:request_prefill_time_seconds_sum{model_name="m"} 0.3
vllm:request_prefill_time_seconds_count{model_name="m"} 2.0
vllm:num_requests_running{model_name="m"} 0.0
"""
TTFT = "vllm:time_to_first_token_seconds"
METRICS_AFTER = METRICS_BEFORE.replace(
    f'{TTFT}_sum{{model_name="m"}} 0.5', f'{TTFT}_sum{{model_name="m"}} 2.5'
).replace(f'{TTFT}_count{{model_name="m"}} 2.0', f'{TTFT}_count{{model_name="m"}} 6.0')


def test_prometheus_histogram_deltas():
    totals = parse_histograms(METRICS_BEFORE)
    assert totals["vllm:time_to_first_token_seconds"].count == 2.0
    assert "vllm:num_requests_running" not in totals  # a gauge, not a histogram
    means = server_latencies(METRICS_BEFORE, METRICS_AFTER)
    assert means["ttft_ms"].count == 4 and means["ttft_ms"].mean_ms == approx(500.0)  # 2 s / 4
    assert means["prefill_ms"].count == 0 and means["prefill_ms"].mean_ms is None
    assert "decode_ms" not in means  # not exported by this server
    # several engines or models: label sets are summed
    doubled = METRICS_AFTER + METRICS_AFTER.replace('model_name="m"', 'model_name="n"')
    assert parse_histograms(doubled)["vllm:time_to_first_token_seconds"].count == 12.0
