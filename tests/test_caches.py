"""What vLLM's caches served while the kit timed requests: read from a server's counters (or
each request's ``num_cached_tokens`` offline), recorded on the number it qualifies, and
failing a vendor comparison. Pure: Prometheus text and records built by hand; the runs that
produce them are in test_server_faults (a caching fake server) and test_server_e2e (vLLM)."""

from __future__ import annotations

from kit.compare.table import CACHED, compare
from kit.engines.prometheus import cache_counts, info_labels, parse_counters
from kit.engines.served import server_cache_use, server_prefix_caching
from kit.perf.point_records import comparison_warnings
from kit.perf.tables import cache_cell, comparison_warning_lines, vendor_table
from kit.records.caches import CacheUse, cache_use
from kit.records.demo import DemoRecord
from kit.records.perf import PerfPointRecord
from kit.records.references import load_references
from kit.records.results import RunRecord
from kit.reproduce.verdicts import NOT_REPRODUCED, perf_measurement, perf_verdict


def exposition(prefix_hits: int, prefix_queries: int, mm_hits: int, mm_queries: int) -> str:
    """A /metrics text as vLLM 0.32 writes it, two engines, with a histogram around."""
    lines = [
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
        "# TYPE vllm:cache_config_info gauge",
        'vllm:cache_config_info{block_size="16",enable_prefix_caching="True",engine="0"} 1.0',
        'vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 2.0',
        'vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 4.0',
    ]
    for engine in ("0", "1"):
        labels = f'engine="{engine}",model_name="m"'
        lines += [
            f"vllm:prefix_cache_hits_total{{{labels}}} {prefix_hits / 2}",
            f"vllm:prefix_cache_queries_total{{{labels}}} {prefix_queries / 2}",
            f"vllm:mm_cache_hits_total{{{labels}}} {mm_hits / 2}",
            f"vllm:mm_cache_queries_total{{{labels}}} {mm_queries / 2}",
            f"vllm:prefix_cache_hits_created{{{labels}}} 1.7e9",  # not a count
        ]
    return "\n".join(lines) + "\n"


def test_counters_are_summed_over_engines_and_read_as_deltas():
    before, after = exposition(100, 1000, 1, 4), exposition(612, 2024, 3, 6)
    counters = parse_counters(after)
    assert counters["vllm:prefix_cache_hits"] == 612.0
    assert "vllm:time_to_first_token_seconds" not in counters  # a histogram, not a counter
    assert cache_counts(parse_counters(before), counters) == {
        "prefix_hit_tokens": 512,
        "prefix_query_tokens": 1024,
        "mm_hits": 2,
        "mm_queries": 2,
    }
    use = server_cache_use(before, after)
    assert use.hit is True and use.source == "the server's /metrics counters"


def test_a_server_without_cache_counters_reports_nothing_rather_than_no_hits():
    plain = 'vllm:time_to_first_token_seconds_count{engine="0"} 4.0\n'
    use = server_cache_use(plain, plain)
    assert use.prefix_hit_tokens is None and use.mm_hits is None and use.hit is None
    assert "not reported" in use.describe()
    assert server_prefix_caching(plain) is None and server_prefix_caching(None) is None


def test_the_server_s_own_cache_setting_comes_from_cache_config_info():
    text = exposition(0, 0, 0, 0)
    assert info_labels(text, "vllm:cache_config_info")["block_size"] == "16"
    assert server_prefix_caching(text) is True
    assert server_prefix_caching(text.replace('"True"', '"False"')) is False


def test_cache_use_adds_up_over_batches_and_names_what_was_served():
    clean = CacheUse("src", prefix_hit_tokens=0, prefix_query_tokens=800, mm_hits=0, mm_queries=1)
    warm = CacheUse("src", prefix_hit_tokens=768, prefix_query_tokens=800, mm_hits=1, mm_queries=1)
    assert clean.hit is False and clean.describe().startswith("no cache hits (")
    total = cache_use([clean, None, warm])
    assert total == CacheUse("src", 768, 1600, 1, 2) and total.hit is True
    assert total.describe() == (
        "CACHED: prefix cache 768 of 1600 prompt tokens, multimodal cache 1 of 2 images served "
        "from cache (src): not a cold measurement"
    )
    assert cache_use([None, None]) is None
    offline = CacheUse("src", prefix_hit_tokens=0, prefix_query_tokens=10)  # no mm counters
    assert offline.hit is False and "multimodal" not in offline.describe()
    assert CacheUse.of(total.to_dict()) == total and CacheUse.of(None) is None


def point(caches: CacheUse | None) -> PerfPointRecord:
    return PerfPointRecord.of(
        {
            "params": {
                "input_len": 8192,
                "max_output_len": 1024,
                "batch_size": 1,
                "input_vision_shape": [[1024, 1024]],
            },
            "vendor": {"ttft_ms": 300.0, "per_iteration": {"ttft_ms": [290.0, 310.0]}},
            "workload_salt": "00ff",
            "caches": None if caches is None else caches.to_dict(),
        }
    )


HIT = CacheUse("the server's /metrics counters", 8000, 8192, 1, 1)
CLEAN = CacheUse("the server's /metrics counters", 0, 8192, 0, 1)


def test_a_cached_point_warns_in_the_comparison_and_the_vendor_table():
    assert comparison_warnings(point(CLEAN), "vendor") == []
    (warning,) = comparison_warnings(point(HIT), "vendor")
    assert warning.startswith("CACHED: prefix cache 8000 of 8192") and "not the vendor's" in warning
    assert cache_cell(point(HIT)).startswith("CACHED") and cache_cell(point(CLEAN)) == "no hits"
    assert cache_cell(point(None)) == "not recorded"  # a run of an older kit
    (row,) = vendor_table([point(HIT)], "CPU")
    assert row["caches"].startswith("CACHED")
    (line,) = comparison_warning_lines([point(HIT)])  # no vendor row: still named
    assert line.startswith("WARNING in 8192 / out 1024 / bs 1: CACHED")
    assert comparison_warning_lines([point(CLEAN)]) == []


def perf_run(caches: CacheUse | None) -> RunRecord:
    return RunRecord.of(
        {
            "schema_version": 2,
            "notebook": "perf",
            "status": "ok",
            "parameters": {"model": "/models/phi"},
            "engine": {"weights": "checkpoint", "scheduling": "vendor"},
            "environment": {},
            "perf": {"device": "NVIDIA L40S", "points": [point(caches).to_dict()]},
        }
    )


def test_a_cached_point_fails_its_vendor_comparison_and_is_flagged_in_compare():
    row = next(r for r in load_references().perf if r.device == "L40s" and r.input_len == 8192)
    run = perf_run(HIT)
    (measured,) = run.perf_points()
    verdict = perf_verdict(row, perf_measurement(run, measured), 0.1)
    assert verdict.verdict == NOT_REPRODUCED and "not a cold run's" in verdict.why
    assert "CACHED: prefix cache 8000 of 8192" in verdict.why
    clean = perf_run(CLEAN)
    (measured,) = clean.perf_points()
    cold = perf_verdict(row, perf_measurement(clean, measured), 0.1)
    assert cold.why.startswith("outside ±10%: TTFT") and "cache" not in cold.why
    rows = compare([perf_run(HIT), perf_run(CLEAN)]).rows
    flagged = [r["flags"] for r in rows if r["kind"] == "perf"]
    assert any(CACHED in f for f in flagged) and not all(CACHED in f for f in flagged)


def test_a_cached_demo_request_is_marked_on_its_ttft():
    cached = DemoRecord(ttft_ms=33.0, caches=HIT)
    rows = {r["metric"]: r["value"] for r in cached.timing_rows()}
    assert rows["time to first token (ms), CACHED: not a cold prefill"] == 33.0
    assert rows["caches"].startswith("CACHED")
    cold = {r["metric"]: r["value"] for r in DemoRecord(ttft_ms=610.0, caches=CLEAN).timing_rows()}
    assert cold["time to first token (ms)"] == 610.0 and cold["caches"].startswith("no cache")
    assert DemoRecord.of(cached.to_dict()) == cached
    older = {r["metric"]: r["value"] for r in DemoRecord(ttft_ms=1.0).timing_rows()}
    assert older["caches"] == "not recorded"
