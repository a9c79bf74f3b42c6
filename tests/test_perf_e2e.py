"""The perf notebook end to end on the tiny model, through python -m kit run perf."""

import json
import re

import pytest

from .roofline_checks import check_roofline_bounds, recorded_device


@pytest.fixture(scope="module")
def perf_run(perf_sweep_run):
    folder, _ = perf_sweep_run
    return folder, json.loads((folder / "results.json").read_text())


@pytest.mark.slow
def test_results_hold_both_column_sets_per_point(perf_run):
    _, results = perf_run
    device, peaks = recorded_device(results)
    points = results["perf"]["points"]
    assert [(p["params"]["input_len"], p["params"]["batch_size"]) for p in points] == [
        (800, 1),
        (800, 2),
        (1024, 1),
        (1024, 2),
    ]
    for point in points:
        vendor = point["vendor"]
        metrics = {"ttft_ms", "tps", "prefill_ms", "decode_ms_per_token"}
        assert set(vendor) == metrics | {"per_iteration"}
        assert all(vendor[m] is not None and vendor[m] > 0 for m in metrics)
        assert len(vendor["per_iteration"]["tps"]) == 1  # one timed iteration
        standard = point["standard"]
        assert standard["num_requests"] == point["params"]["batch_size"]  # 1 iteration
        for metric in ("ttft_ms", "tpot_ms", "e2e_ms", "prefill_ms", "decode_ms", "queue_ms"):
            assert {"mean", "median", "p90", "p99"} <= set(standard[metric])
        check_roofline_bounds(point["roofline"], device, peaks)


@pytest.mark.slow
def test_prompt_and_output_lengths_were_exact(perf_run):
    _, results = perf_run
    for point in results["perf"]["points"]:
        seen = point["observed"]  # lengths vLLM reported for every timed request
        assert seen["prompt_tokens"] == [point["params"]["input_len"]]
        assert seen["output_tokens"] == [8]


@pytest.mark.slow
def test_report_has_tables_and_figures(perf_run):
    folder, results = perf_run
    report = (folder / "report.html").read_text()
    assert "Vendor-compatible columns" in report and "Standard columns" in report
    assert report.count("data:image/png;base64,") >= 4 + 4 + 1  # timelines, histograms, sweep
    _, peaks = recorded_device(results)
    no_peaks = "no datasheet peaks recorded for device" in report
    assert no_peaks is (peaks is None)  # the roofline section says why it has no bounds


@pytest.mark.slow
def test_vendor_scheduling_prefills_each_batch_in_one_step(perf_run):
    _, results = perf_run
    engine = results["engine"]
    assert engine["scheduling"] == "vendor" and engine["engine_core"] == "in-process"
    assert engine["chunked_prefill"] is False and engine["max_num_batched_tokens"] == 4096
    for point in results["perf"]["points"]:
        if point["params"]["batch_size"] != 2:
            continue
        schedule = point["schedule"]
        assert schedule["staggered"] is False and schedule["probe_staggered"] is False
        for batch in schedule["iterations"]:  # same scheduler step, first tokens from it
            assert batch["requests"] == 2
            assert batch["scheduling_steps"] == 1 and batch["first_token_steps"] == 1
            assert batch["scheduling_spread_ms"] == 0.0
        # the request timeline (first timed iteration) shows the same batch
        timeline, first = point["timeline"], schedule["iterations"][0]
        assert len({r["scheduled"] for r in timeline}) == 1
        assert first["arrival_spread_ms"] == pytest.approx(arrival_spread_ms(timeline))


def arrival_spread_ms(timeline: list[dict]) -> float:
    """Last minus first arrival of a timeline's requests (seconds since the first), in ms."""
    arrivals = [r["arrival"] for r in timeline]
    return 1000 * (max(arrivals) - min(arrivals))


@pytest.fixture(scope="module")
def vllm_scheduling_run(perf_vllm_run):
    folder, _ = perf_vllm_run
    return folder, json.loads((folder / "results.json").read_text())


@pytest.mark.slow
def test_vllm_scheduling_records_spreads_that_agree_with_the_timeline(vllm_scheduling_run):
    folder, results = vllm_scheduling_run
    engine = results["engine"]
    assert engine["scheduling"] == "vllm" and engine["engine_core"] == "separate process"
    (point,) = results["perf"]["points"]
    (batch,) = point["schedule"]["iterations"]
    timeline = point["timeline"]  # the same requests, from their own timestamps
    assert batch["requests"] == len(timeline) == 2 and timeline[0]["arrival"] == 0.0
    scheduled = [r["scheduled"] for r in timeline]
    assert batch["scheduling_steps"] == len(set(scheduled)) in (1, 2)
    assert batch["scheduling_spread_ms"] == pytest.approx(1000 * (max(scheduled) - min(scheduled)))
    assert batch["arrival_spread_ms"] == pytest.approx(arrival_spread_ms(timeline))
    assert batch["staggered"] is (batch["scheduling_steps"] == 2)
    report = (folder / "report.html").read_text()
    assert "scheduling vllm" in report  # the run header names the mode


@pytest.mark.slow
def test_terminal_shows_one_line_per_section_and_the_notebook_progress(perf_sweep_run):
    _, proc = perf_sweep_run
    out = proc.stdout
    assert "Executing Cell" not in out and "IPython.core.display" not in out
    sections = re.findall(r"^\[\d+:\d\d\] (.+)$", out, re.MULTILINE)
    assert sections[:2] == ["Performance: TTFT, throughput, prefill and decode latency", "Plan"]
    assert "Measurements" in sections and sections[-1] == "Environment"
    assert len(sections) == len(set(sections))  # one line per section
    assert re.search(r"^in 1024 / out 8 / bs 2: iteration 1/1", out, re.MULTILINE)
    assert out.rstrip().splitlines()[-2].startswith("report: ")
