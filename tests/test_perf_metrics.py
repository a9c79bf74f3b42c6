"""Unit tests of the pure performance logic: kit.perf and kit.records.references.

Every expected value is worked out by hand in a comment next to it. No engine is started.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from kit.core.stats import distribution, percentile
from kit.engines.timing import RequestTiming, timing_from_output, timing_from_v0, timing_from_v1
from kit.perf.batches import RunMeasurement
from kit.perf.columns import (
    standard_columns,
    vendor_columns,
    vendor_decode_ms_per_token,
    vendor_prefill_ms,
)
from kit.perf.grid import check_fits, expand_grid, kv_cache_warning, parse_vision_shape
from kit.records.perf import PerfPointRecord
from kit.records.references import (
    default_references_path,
    load_references,
    match_references,
    ratios,
)

approx = pytest.approx

# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def v1_stats(**kw):
    """A V1 RequestStateStats look-alike: wall arrival, monotonic engine timestamps."""
    base = dict(
        arrival_time=1_700_000_000.0,  # wall clock
        queued_ts=500.0,  # engine monotonic clock from here on
        scheduled_ts=500.2,
        first_token_ts=501.0,
        last_token_ts=505.0,
        first_token_latency=1.25,  # wall: arrival -> first token, incl. preprocessing
        num_generation_tokens=9,
        num_preemptions=0,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def v0_metrics(**kw):
    """A V0 RequestMetrics look-alike: every field wall clock."""
    base = dict(
        arrival_time=100.0,
        last_token_time=106.5,
        first_scheduled_time=100.5,
        first_token_time=101.5,
        time_in_queue=0.5,
        finished_time=106.6,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def timing(prefill=None, decode=None, n_out=1, ttft=None, queue=None, n_prompt=100):
    tpot = decode / (n_out - 1) if decode is not None and n_out > 1 else None
    e2e = ttft + decode if ttft is not None and decode is not None else None
    return RequestTiming(ttft, queue, prefill, decode, tpot, e2e, n_prompt, n_out)


def request_output(metrics, n_prompt=770, n_out=9):
    return SimpleNamespace(
        request_id="r0",
        metrics=metrics,
        prompt_token_ids=list(range(n_prompt)),
        outputs=[SimpleNamespace(token_ids=list(range(n_out)))],
    )


# ----------------------------------------------------------------------------------------
# per-request timing
# ----------------------------------------------------------------------------------------


def test_timing_from_v1_hand_example():
    t = timing_from_v1(v1_stats(), num_prompt_tokens=770, num_output_tokens=9)
    assert t.queue_s == approx(0.2)  # scheduled 500.2 - queued 500.0
    assert t.prefill_s == approx(0.8)  # first token 501.0 - scheduled 500.2
    assert t.decode_s == approx(4.0)  # last 505.0 - first 501.0
    assert t.tpot_s == approx(0.5)  # 4.0 / (9 - 1)
    assert t.ttft_s == approx(1.25)  # first_token_latency as is
    # e2e = (505 - 500) + (1.25 - (501 - 500)) = 5 + 0.25 = 5.25 = ttft + decode
    assert t.e2e_s == approx(5.25)
    assert (t.num_prompt_tokens, t.num_output_tokens) == (770, 9)


def test_timing_from_v1_e2e_does_not_depend_on_queue_ts():
    # Move queued_ts: queue changes (500.2 - 499.0 = 1.2) but e2e stays 1.25 + 4.0 = 5.25.
    t = timing_from_v1(v1_stats(queued_ts=499.0), 770, 9)
    assert t.queue_s == approx(1.2)
    assert t.e2e_s == approx(5.25)


def test_timing_from_v1_never_mixes_clocks():
    # arrival_time is ~1.7e9 (wall) while the engine timestamps are ~500 (monotonic): any
    # wall - monotonic difference would be ~1.7e9 s. All values stay small.
    t = timing_from_v1(v1_stats(), 770, 9)
    for v in (t.ttft_s, t.queue_s, t.prefill_s, t.decode_s, t.tpot_s, t.e2e_s):
        assert 0 <= v < 10


def test_timing_from_v1_finished_at_wall():
    # wall - wall: 1_700_000_007.5 - 1_700_000_000.0 = 7.5
    t = timing_from_v1(v1_stats(), 770, 9, finished_at_wall=1_700_000_007.5)
    assert t.e2e_s == approx(7.5)


def test_timing_from_v1_defaults_and_edge_cases():
    # num_output_tokens defaults to num_generation_tokens (9)
    assert timing_from_v1(v1_stats(), 770).num_output_tokens == 9
    # one token: decode = last - first = 0, TPOT undefined
    one = timing_from_v1(
        v1_stats(last_token_ts=501.0, num_generation_tokens=1), 770, num_output_tokens=1
    )
    assert one.decode_s == 0.0 and one.tpot_s is None
    assert one.e2e_s == approx(1.25)  # ttft + 0
    # no token yet: V1 leaves the timestamps at 0.0 -> not derivable
    none = timing_from_v1(
        v1_stats(first_token_ts=0.0, last_token_ts=0.0, first_token_latency=0.0), 770, 0
    )
    assert none.ttft_s is none.prefill_s is none.decode_s is none.tpot_s is none.e2e_s is None
    assert none.queue_s == approx(0.2)


def test_timing_from_v0_hand_example():
    t = timing_from_v0(v0_metrics(), num_prompt_tokens=770, num_output_tokens=11)
    assert t.ttft_s == approx(1.5)  # 101.5 - 100.0
    assert t.queue_s == approx(0.5)  # time_in_queue
    assert t.prefill_s == approx(1.0)  # 101.5 - 100.5 (the vendor's prefill)
    assert t.decode_s == approx(5.0)  # 106.5 - 101.5
    assert t.tpot_s == approx(0.5)  # 5.0 / (11 - 1)
    assert t.e2e_s == approx(6.5)  # 106.5 - 100.0


def test_timing_from_v0_fallbacks():
    # time_in_queue missing -> first_scheduled 100.5 - arrival 100.0 = 0.5
    t = timing_from_v0(v0_metrics(time_in_queue=None), 770, 11)
    assert t.queue_s == approx(0.5)
    # last_token_time never advanced (still = arrival, stats off) -> finished_time 106.6
    t = timing_from_v0(v0_metrics(last_token_time=100.0), 770, 11)
    assert t.decode_s == approx(5.1)  # 106.6 - 101.5
    assert t.e2e_s == approx(6.6)  # 106.6 - 100.0
    # no first token
    t = timing_from_v0(v0_metrics(first_token_time=None), 770, 0)
    assert t.ttft_s is t.prefill_s is t.decode_s is t.tpot_s is None


def test_timing_from_output_dispatch():
    t1 = timing_from_output(request_output(v1_stats(), n_prompt=770, n_out=9))
    assert t1.prefill_s == approx(0.8) and t1.num_prompt_tokens == 770
    t0 = timing_from_output(request_output(v0_metrics(), n_prompt=12, n_out=11))
    assert t0.prefill_s == approx(1.0) and t0.tpot_s == approx(0.5)


def test_timing_from_output_without_metrics_explains_the_fix():
    with pytest.raises(ValueError, match="disable_log_stats=False"):
        timing_from_output(request_output(None))


def test_timing_from_output_unknown_metrics_type():
    with pytest.raises(TypeError, match="RequestStateStats"):
        timing_from_output(request_output(SimpleNamespace(foo=1)))


# ----------------------------------------------------------------------------------------
# runs and the vendor columns
# ----------------------------------------------------------------------------------------


def hand_run():
    # r1: prefill 0.4 s, decode 4.5 s, 10 tokens (TPOT 0.5)
    # r2: prefill 0.6 s, decode 1.2 s,  5 tokens (TPOT 0.3)
    return RunMeasurement(
        [timing(prefill=0.4, decode=4.5, n_out=10), timing(prefill=0.6, decode=1.2, n_out=5)],
        wall_s=10.0,
    )


def test_run_measurement_tps():
    run = hand_run()
    assert run.total_output_tokens == 15
    assert run.tps == approx(1.5)  # 15 tokens / 10 s
    with pytest.raises(ValueError, match="wall_s"):
        RunMeasurement([], wall_s=0.0)


def test_vendor_formulas_hand_example():
    run = hand_run()
    assert vendor_prefill_ms(run) == approx(500.0)  # mean(400, 600)
    # sum of decode times / (total tokens - requests) = (4.5 + 1.2) / (15 - 2) s
    # = 5.7 / 13 = 0.438461... s = 438.46 ms/token. Not the mean TPOT (400) nor the
    # sum of per-request TPOTs (800).
    assert vendor_decode_ms_per_token(run) == approx(5700.0 / 13)


def test_vendor_decode_undefined_with_one_token_each():
    run = RunMeasurement([timing(prefill=0.1, decode=0.0, n_out=1)] * 2, wall_s=1.0)
    assert vendor_decode_ms_per_token(run) is None  # 2 tokens - 2 requests = 0


def test_vendor_columns_reproduce_l40s_bs4_row_arithmetic():
    # L40s 8192 x 4: TPS 112.76, prefill 1938.88 ms, decode 33.57 ms/token. Four requests
    # of 1024 tokens, each prefill 1.93888 s and decode 1023 x 0.03357 s; wall such that
    # 4096 / wall = 112.76.
    reqs = [timing(prefill=1.93888, decode=1023 * 0.03357, n_out=1024) for _ in range(4)]
    probe = RunMeasurement([timing(ttft=2.59819, n_out=1)] * 4, wall_s=3.0)
    cols = vendor_columns([RunMeasurement(reqs, wall_s=4096 / 112.76)], [probe])
    assert cols.tps == approx(112.76)
    assert cols.prefill_ms == approx(1938.88)
    assert cols.decode_ms_per_token == approx(33.57)  # 4*1023*33.57 / (4096 - 4)
    assert cols.ttft_ms == approx(2598.19)


def test_vendor_columns_average_iterations_and_probe():
    a = hand_run()  # tps 1.5, prefill 500, decode 438.46
    b = RunMeasurement(  # tps 15/5 = 3.0, prefill mean(200, 400) = 300, decode 2.6/13 s
        [timing(prefill=0.2, decode=2.0, n_out=10), timing(prefill=0.4, decode=0.6, n_out=5)],
        wall_s=5.0,
    )
    probes = [
        RunMeasurement([timing(ttft=0.1, n_out=1), timing(ttft=0.3, n_out=1)], 1.0),  # 200 ms
        RunMeasurement([timing(ttft=0.3, n_out=1), timing(ttft=0.5, n_out=1)], 1.0),  # 400 ms
    ]
    cols = vendor_columns([a, b], probes)
    assert cols.tps == approx(2.25)  # (1.5 + 3.0) / 2
    assert cols.prefill_ms == approx(400.0)  # (500 + 300) / 2
    assert cols.decode_ms_per_token == approx((5700 / 13 + 2600 / 13) / 2)
    assert cols.ttft_ms == approx(300.0)  # (200 + 400) / 2
    assert cols.per_iteration["tps"] == approx([1.5, 3.0])
    assert cols.per_iteration["prefill_ms"] == approx([500.0, 300.0])
    assert cols.per_iteration["ttft_ms"] == approx([200.0, 400.0])
    assert vendor_columns([a]).ttft_ms is None  # no probe run, no TTFT
    assert vendor_columns([a]).per_iteration["ttft_ms"] == ()


# ----------------------------------------------------------------------------------------
# standard columns
# ----------------------------------------------------------------------------------------


def test_percentile_linear_interpolation():
    xs = [4.0, 1.0, 3.0, 2.0]  # sorted 1,2,3,4; position q/100 * (n-1)
    assert percentile(xs, 50) == approx(2.5)  # pos 1.5
    assert percentile(xs, 90) == approx(3.7)  # pos 2.7 -> 3 + 0.7
    assert percentile(xs, 99) == approx(3.97)  # pos 2.97
    assert percentile([], 50) is None


def test_standard_columns_two_iterations():
    a = RunMeasurement(
        [timing(ttft=0.1, decode=0.9, n_out=10), timing(ttft=0.3, decode=1.8, n_out=10)],
        wall_s=2.0,  # 20 tokens / 2 s = 10 tok/s
    )
    b = RunMeasurement(
        [timing(ttft=0.2, decode=0.9, n_out=10), timing(ttft=0.4, decode=0.9, n_out=10)],
        wall_s=4.0,  # 20 / 4 = 5 tok/s
    )
    s = standard_columns([a, b])
    # TTFT ms over all requests: 100, 300, 200, 400 -> sorted 100, 200, 300, 400
    assert s.metrics["ttft_ms"].count == 4
    assert s.metrics["ttft_ms"].mean == approx(250.0)
    assert s.metrics["ttft_ms"].median == approx(250.0)
    # 4 values: too few for a p90 (10) or a p99 (100), which would be interpolated maxima
    assert s.metrics["ttft_ms"].p90 is None and s.metrics["ttft_ms"].p99 is None
    # per-iteration means 200 and 300; sample std = sqrt(50^2 + 50^2) = 70.71
    ttft = s.metrics["ttft_ms"]
    assert (ttft.iter_min, ttft.iter_max) == (approx(200.0), approx(300.0))
    assert s.metrics["ttft_ms"].iter_std == approx(math.sqrt(5000))
    # TPOT ms: 900/9 = 100, 1800/9 = 200, 100, 100 -> mean 125, median 100
    tpot = s.metrics["tpot_ms"]
    assert tpot.mean == approx(125.0) and tpot.median == approx(100.0)
    # E2E = TTFT + decode: 1000, 2100, 1100, 1300 -> mean 1375
    assert s.metrics["e2e_ms"].mean == approx(1375.0)
    assert s.tps_per_iteration == (approx(10.0), approx(5.0))
    assert s.tps_mean == approx(7.5)
    assert s.tps_std == approx(math.sqrt(2 * 2.5**2))  # ddof=1
    assert (s.iterations, s.num_requests) == (2, 4)
    # nothing recorded for queue/prefill here -> empty summaries, not zeros
    queue = s.metrics["queue_ms"]
    assert queue.count == 0 and queue.mean is None and queue.p99 is None


def test_tail_percentiles_need_a_value_beyond_them():
    ten = [float(v) for v in range(10)]  # p90 at position 8.1 of 0..9
    assert distribution([ten]).p90 == approx(8.1) and distribution([ten]).p99 is None
    assert distribution([ten[:9]]).p90 is None
    hundred = [float(v) for v in range(100)]  # p99 at position 98.01
    spread = distribution([hundred[:50], hundred[50:]])
    assert (spread.count, spread.p90, spread.p99) == (100, approx(89.1), approx(98.01))


def test_standard_columns_single_iteration_has_no_std():
    s = standard_columns([hand_run()])
    assert s.tps_std is None and s.metrics["prefill_ms"].iter_std is None
    assert s.metrics["prefill_ms"].iter_min == s.metrics["prefill_ms"].iter_max == approx(500.0)


def test_perf_point_to_dict_is_json_with_units_in_keys():
    point = PerfPointRecord(
        params={
            "input_len": 8192,
            "max_output_len": 1024,
            "batch_size": 4,
            "input_vision_shape": [[1024, 1024]],
            "num_crops": 4,
            "iterations": 1,
            "device": "cpu",
        },
        vendor=vendor_columns([hand_run()]),
        standard=standard_columns([hand_run()]),
    )
    d = json.loads(json.dumps(point.to_dict()))
    assert d["params"]["input_vision_shape"] == [[1024, 1024]]
    assert d["params"]["device"] == "cpu"
    metrics = {"ttft_ms", "tps", "prefill_ms", "decode_ms_per_token"}
    assert set(d["vendor"]) == metrics | {"per_iteration"}
    assert set(d["vendor"]["per_iteration"]) == metrics
    assert d["vendor"]["prefill_ms"] == approx(500.0)
    for key in ("ttft_ms", "tpot_ms", "e2e_ms", "prefill_ms", "decode_ms", "queue_ms"):
        assert set(d["standard"][key]) >= {"mean", "median", "p90", "p99", "iter_std"}
    assert d["standard"]["tps_mean"] == approx(1.5)


# ----------------------------------------------------------------------------------------
# grid, vision shapes, pre-flight
# ----------------------------------------------------------------------------------------


def test_expand_grid_scalars_lists_and_strings():
    assert expand_grid(8192, 1, 1024) == [
        {"input_len": 8192, "batch_size": 1, "max_output_len": 1024}
    ]
    grid = expand_grid("8192,31744", [1, "4"], "1024")
    # input_len outermost, like the vendor table: 2 x 2 x 1 = 4 points
    assert [(g["input_len"], g["batch_size"]) for g in grid] == [
        (8192, 1),
        (8192, 4),
        (31744, 1),
        (31744, 4),
    ]
    assert expand_grid(" 8192 , 8192 ", 1.0, (64,))[0]["batch_size"] == 1  # dedup, 1.0 ok
    assert len(expand_grid("[8192, 16384]", 1, 1)) == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"input_len": 0}, "input_len"),
        ({"batch_size": -4}, "batch_size"),
        ({"max_output_len": "abc"}, "max_output_len"),
        ({"input_len": "8192,x"}, "input_len"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"max_output_len": ""}, "max_output_len"),
        ({"input_len": []}, "input_len"),
    ],
)
def test_expand_grid_validation_names_parameter(kwargs, name):
    args = {"input_len": 8192, "batch_size": 1, "max_output_len": 1024, **kwargs}
    with pytest.raises(ValueError, match=name):
        expand_grid(**args)


def test_parse_vision_shape():
    assert parse_vision_shape("1024,1024") == [(1024, 1024)]
    assert parse_vision_shape("1024,1024;512,768") == [(1024, 1024), (512, 768)]
    assert parse_vision_shape(" 480 x 640 ") == [(480, 640)]
    assert parse_vision_shape([1024, 1024]) == [(1024, 1024)]
    assert parse_vision_shape([(1024, 1024), [512, 512]]) == [(1024, 1024), (512, 512)]
    assert parse_vision_shape(["1024,1024", "512,512"]) == [(1024, 1024), (512, 512)]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "input_vision_shape"),
        ("1024", "image 1"),
        ("1024,1024;", "input_vision_shape"),
        ("1024,1024;512,0", "image 2 width"),
        ("1024,abc", "image 1 width"),
        ("1,2,3", "image 1"),
        (None, "input_vision_shape"),
        ([], "input_vision_shape"),
    ],
)
def test_parse_vision_shape_errors(value, match):
    with pytest.raises(ValueError, match=match):
        parse_vision_shape(value)


def test_check_fits():
    check_fits(31744, 1024, 32768, 770)  # 31744 + 1024 = 32768: fits exactly
    with pytest.raises(ValueError, match=r"input_len=500 .* 770"):
        check_fits(500, 1024, 32768, 770)
    with pytest.raises(ValueError, match=r"max_model_len=32768.*input_len\s+to <= 31744"):
        check_fits(32000, 1024, 32768, 770)  # 33024 > 32768
    with pytest.raises(ValueError, match="max_output_len"):
        check_fits(8192, 0, 32768, 770)


def test_kv_cache_warning():
    # 4 x (8192 + 1024) = 36864 tokens fit in 40000
    assert kv_cache_warning(4, 8192, 1024, 40_000) is None
    # 4 x (31744 + 1024) = 131072 > 100000: only 100000 // 32768 = 3 fit at once
    msg = kv_cache_warning(4, 31744, 1024, 100_000)
    assert msg is not None and "131072" in msg and "3 request(s)" in msg and "serial" in msg
    # block rounding: 1 x (100 + 10) = 110 tokens -> 2 blocks of 64 = 128 > 120
    assert kv_cache_warning(1, 100, 10, 120) is None
    assert kv_cache_warning(1, 100, 10, 120, block_size=64) is not None


# ----------------------------------------------------------------------------------------
# references
# ----------------------------------------------------------------------------------------


def test_load_references_default_path():
    assert default_references_path().is_file()
    refs = load_references()
    assert len(refs.perf) == 6
    assert {r.device for r in refs.perf} == {"S60", "L40s"}
    assert all(r.max_model_len == 32768 and r.card == 1 for r in refs.perf)
    assert {(m.device, m.accuracy) for m in refs.mmmu} == {
        ("S60", 0.428),
        ("L40s", 0.429),
        ("model card", 0.430),
    }
    assert "MMMU" in refs.mmmu_source and refs.perf_source and refs.devices_source


@pytest.mark.parametrize(
    ("input_len", "batch_size", "tps_by_device"),
    [
        (8192, 1, {"S60": 27.75, "L40s": 43.26}),
        (8192, 4, {"S60": 50.09, "L40s": 112.76}),
        (31744, 4, {"S60": 13.51, "L40s": 29.52}),
    ],
)
def test_match_references_vendor_scenarios(input_len, batch_size, tps_by_device):
    refs = load_references()
    params = {"input_len": input_len, "max_output_len": 1024, "batch_size": batch_size}
    rows = match_references(params, refs)
    assert len(rows) == 2
    assert {r.device: r.tps for r in rows} == tps_by_device
    # the vendor's own names work as well
    alt = {"input_len": input_len, "output_len": 1024, "num_prompts": batch_size}
    assert match_references(alt, refs.perf) == rows


def test_match_references_from_perf_point_and_misses():
    refs = load_references()
    point = PerfPointRecord({"input_len": 8192, "max_output_len": 1024, "batch_size": 1})
    assert len(match_references(point.params, refs)) == 2
    assert match_references({"input_len": 8192, "output_len": 256, "num_prompts": 1}, refs) == []
    with pytest.raises(ValueError, match="num_prompts"):
        match_references({"input_len": 8192, "output_len": 1024}, refs)


def test_ratios():
    refs = load_references()
    l40s = next(r for r in refs.perf if r.device == "L40s" and r.num_prompts == 1)
    measured = {"ttft_ms": 928.82, "tps": 21.63, "prefill_ms": None}
    r = ratios(measured, l40s)
    assert r["ttft_ms"] == approx(2.0)  # 928.82 / 464.41
    assert r["tps"] == approx(0.5)  # 21.63 / 43.26
    assert r["prefill_ms"] is None  # not measured
    assert r["decode_ms_per_token"] is None  # missing from measured
    assert ratios({"tps": 1.0}, {"tps": 0})["tps"] is None


def test_a_point_cut_by_ctrl_c_says_so_wherever_its_numbers_are_shown():
    """Its numbers are over fewer iterations than asked: named in the comparison warnings,
    the vendor table's warning lines, and read back from results.json."""
    from kit.perf.point_records import comparison_warnings
    from kit.perf.tables import comparison_warning_lines

    cut = "interrupted after 1 of 3 timed iterations"
    data = {
        "params": {"input_len": 1024, "max_output_len": 8, "batch_size": 1, "iterations": 3},
        "vendor": {"tps": 10.0},
        "cut": cut,
    }
    point = PerfPointRecord.of(json.loads(json.dumps(PerfPointRecord.of(data).to_dict())))
    assert point.cut == cut
    assert comparison_warnings(point, "vendor") == [f"{cut}: its numbers are over those"]
    assert comparison_warning_lines([point]) == [
        f"WARNING in 1024 / out 8 / bs 1: {cut}: its numbers are over those"
    ]
    whole = PerfPointRecord.of({**data, "cut": None})
    assert comparison_warnings(whole, "vendor") == [] and comparison_warning_lines([whole]) == []
