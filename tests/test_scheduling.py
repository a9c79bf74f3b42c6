"""Scheduling modes and how a batch was scheduled: pure logic, no engine.

The engine side (a 2-request batch first scheduled in one step under ``vendor``) is checked
end to end in tests/test_perf_e2e.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from kit.core.params import ParameterError, build
from kit.engines.devices import device_defaults
from kit.engines.params import EngineParams, check_scheduling_conflicts, engine_kwargs
from kit.engines.scheduling import scheduling_args, scheduling_environment
from kit.engines.timing import marks_from_metrics
from kit.models.phi3v.family import PHI3V
from kit.perf.batches import batch_schedule, budget_steps, summarize_schedules
from kit.perf.point_records import comparison_warnings, scheduling_verdict
from kit.perf.tables import batch_scheduling
from kit.records.engine import EngineRecord
from kit.records.perf import PerfPointRecord


def v1(arrival, queued, scheduled, first, last=None):
    return SimpleNamespace(
        arrival_time=arrival,
        queued_ts=queued,
        scheduled_ts=scheduled,
        first_token_ts=first,
        last_token_ts=last or first + 1.0,
        first_token_latency=first - queued,
        num_generation_tokens=4,
    )


def test_vendor_mode_sets_v0_like_scheduling_and_an_in_process_core():
    assert scheduling_args("vendor", 32768) == {
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": 32768,
        "max_num_seqs": 256,
    }
    assert scheduling_args("vllm", 32768) == {}
    assert scheduling_environment("vendor") == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    assert scheduling_environment("vllm") == {"VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    kwargs = engine_kwargs(EngineParams(max_model_len=4096), "/m", device_defaults("cpu"), PHI3V)
    assert kwargs["max_num_batched_tokens"] == 4096 and kwargs["enable_chunked_prefill"] is False
    kwargs = engine_kwargs(EngineParams(scheduling="vllm"), "/m", device_defaults("cpu"), PHI3V)
    assert "enable_chunked_prefill" not in kwargs and "max_num_batched_tokens" not in kwargs


def test_scheduling_is_checked_and_conflicts_are_refused():
    with pytest.raises(ParameterError, match="'scheduling' must be one of vendor, vllm"):
        build(EngineParams, {"scheduling": "v0"})
    params = EngineParams(engine_args={"enable_chunked_prefill": True})
    with pytest.raises(ParameterError, match="conflicts with scheduling: vendor"):
        check_scheduling_conflicts(params)
    check_scheduling_conflicts(
        EngineParams(scheduling="vllm", engine_args={"enable_chunked_prefill": True})
    )


def test_parallel_sizes_pass_through():
    params = EngineParams(
        tensor_parallel_size=2,
        pipeline_parallel_size=2,
        data_parallel_size=2,
        distributed_executor_backend="ray",
    )
    kwargs = engine_kwargs(params, "/m", device_defaults("cuda"), PHI3V)
    assert (kwargs["tensor_parallel_size"], kwargs["pipeline_parallel_size"]) == (2, 2)
    assert kwargs["data_parallel_size"] == 2
    assert kwargs["distributed_executor_backend"] == "ray"
    assert "distributed_executor_backend" not in engine_kwargs(
        EngineParams(), "/m", device_defaults("cuda"), PHI3V
    )
    with pytest.raises(ParameterError, match="pipeline_parallel_size"):
        build(EngineParams, {"pipeline_parallel_size": 0})


def test_one_step_batch_shares_its_scheduled_and_first_token_timestamps():
    marks = [
        marks_from_metrics(v1(1000.00, 5.0, 5.1, 6.0)),
        marks_from_metrics(v1(1000.05, 5.05, 5.1, 6.0)),
    ]
    s = batch_schedule(marks)
    assert s.staggered is False and s.scheduling_steps == 1 and s.first_token_steps == 1
    assert s.arrival_spread_ms == pytest.approx(50.0)  # wall clock, 1000.05 - 1000.00
    assert s.scheduling_spread_ms == 0.0


def test_staggered_batch_is_marked_with_its_spreads():
    # the H100 timeline of 8192 x 4 under V1: entered 0, 146, 301, 449 ms apart
    marks = [
        marks_from_metrics(v1(2000 + a, 10 + a, 10 + a + 0.001, 10 + a + 0.14))
        for a in (0.0, 0.146, 0.301, 0.449)
    ]
    s = batch_schedule(marks)
    assert s.staggered is True and s.scheduling_steps == 4 and s.first_token_steps == 4
    assert s.arrival_spread_ms == pytest.approx(449.0)
    assert s.scheduling_spread_ms == pytest.approx(449.0)


def test_unknown_timestamps_are_not_called_one_step():
    missing = v1(1.0, 5.0, 0.0, 6.0)  # V1 leaves unset timestamps at 0.0
    s = batch_schedule([marks_from_metrics(missing), marks_from_metrics(v1(1.0, 5.0, 5.1, 6.0))])
    assert s.staggered is None
    summary = summarize_schedules([s])
    assert summary.staggered is None and summary.unknown_iterations == 1


def test_v0_metrics_are_read_too():
    v0 = SimpleNamespace(
        arrival_time=100.0,
        first_scheduled_time=100.5,
        first_token_time=101.0,
        last_token_time=103.0,
        finished_time=103.0,
        time_in_queue=0.5,
    )
    m = marks_from_metrics(v0)
    assert (m.arrival, m.scheduled, m.first_token, m.last_token) == (100.0, 100.5, 101.0, 103.0)


def test_budget_steps_follow_vllm_06():
    assert budget_steps(4, 8192, 32768) == 1  # 4 x 8192 = 32768: one step
    assert budget_steps(4, 31744, 32768) == 4  # one 31744 prompt per step
    assert budget_steps(3, 8192, 16384) == 2
    assert budget_steps(4, 8192, None) == 1


def _point(batch, input_len, steps, staggered):
    timed = batch_schedule(
        [
            marks_from_metrics(v1(1.0, 1.0, 1.0 + (i % steps), 2.0 + (i % steps)))
            for i in range(batch)
        ]
    )
    assert timed.staggered is staggered
    return PerfPointRecord(
        params={"input_len": input_len, "max_output_len": 16, "batch_size": batch},
        schedule=summarize_schedules([timed]),
    )


def _judged(point, config, shape=None):
    """The point as point_record judges it: its schedule with the token-budget verdict."""
    if shape is not None:
        point = replace(point, params={**point.params, "input_vision_shape": shape})
    return replace(point, schedule=scheduling_verdict(point, config))


def test_comparison_warnings_name_staggering_beyond_the_budget_and_vllm_mode():
    config = EngineRecord(chunked_prefill=False, max_num_batched_tokens=32768)
    together = _judged(_point(4, 8192, 1, False), config)
    assert comparison_warnings(together, "vendor") == []
    budgeted = _judged(_point(4, 31744, 4, True), config)  # vLLM 0.6: one request per step
    assert comparison_warnings(budgeted, "vendor") == []
    assert batch_scheduling(budgeted) == "4 steps, as the token budget needs (as vLLM 0.6)"
    read_back = PerfPointRecord.of(json.loads(json.dumps(budgeted.to_dict())))
    assert batch_scheduling(read_back) == batch_scheduling(budgeted)
    staggered = _judged(_point(4, 8192, 4, True), config)
    (warning,) = comparison_warnings(staggered, "vendor")
    assert "staggered batch" in warning and "4 engine steps" in warning
    assert batch_scheduling(staggered).startswith("staggered (4 steps")
    warnings = comparison_warnings(together, "vllm")
    assert len(warnings) == 1 and "scheduling: vllm" in warnings[0]


def test_image_shape_other_than_the_vendors_is_a_warning():
    config = EngineRecord(chunked_prefill=False, max_num_batched_tokens=32768)
    point = _judged(_point(1, 8192, 1, False), config, [[336, 336]])
    (warning,) = comparison_warnings(point, "vendor", [(1024, 1024)])
    assert "input_vision_shape 336,336 where the vendor used 1024,1024" in warning
    point = _judged(_point(1, 8192, 1, False), config, [])
    (warning,) = comparison_warnings(point, "vendor", [(1024, 1024)])
    assert "input_vision_shape none" in warning
    point = _judged(_point(1, 8192, 1, False), config, [[1024, 1024]])
    assert comparison_warnings(point, "vendor", [(1024, 1024)]) == []
