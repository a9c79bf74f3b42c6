"""The perf notebook end to end on the tiny model, through python -m kit run perf."""

import json

import pytest

from .conftest import run_kit


@pytest.fixture(scope="module")
def perf_run(tmp_path_factory, smoke_model):
    outputs = tmp_path_factory.mktemp("outputs")
    proc = run_kit(
        "run",
        "perf",
        "-f",
        "params/smoke-perf-sweep.yaml",
        "-p",
        "max_output_len",
        "8",
        "-p",
        "batch_size",
        "1,2",
        "-p",
        "input_len",
        "800,1024",
        env={"KIT_OUTPUTS_DIR": str(outputs)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = outputs.glob("*-perf-*")
    return folder, json.loads((folder / "results.json").read_text())


@pytest.mark.slow
def test_results_hold_both_column_sets_per_point(perf_run):
    _, results = perf_run
    points = results["perf"]["points"]
    assert [(p["params"]["input_len"], p["params"]["batch_size"]) for p in points] == [
        (800, 1),
        (800, 2),
        (1024, 1),
        (1024, 2),
    ]
    for point in points:
        vendor = point["vendor"]
        assert set(vendor) == {"ttft_ms", "tps", "prefill_ms", "decode_ms_per_token"}
        assert all(v is not None and v > 0 for v in vendor.values())
        standard = point["standard"]
        assert standard["num_requests"] == point["params"]["batch_size"]  # 1 iteration
        for metric in ("ttft_ms", "tpot_ms", "e2e_ms", "prefill_ms", "decode_ms", "queue_ms"):
            assert {"mean", "median", "p90", "p99"} <= set(standard[metric])
        assert point["roofline"]["decode_ms_per_token"] is None  # CPU: no datasheet peaks
        assert "no datasheet peaks" in point["roofline"]["reason"]


@pytest.mark.slow
def test_prompt_and_output_lengths_were_exact(perf_run):
    _, results = perf_run
    for point in results["perf"]["points"]:
        seen = point["observed"]  # lengths vLLM reported for every timed request
        assert seen["prompt_tokens"] == [point["params"]["input_len"]]
        assert seen["output_tokens"] == [8]


@pytest.mark.slow
def test_report_has_tables_and_figures(perf_run):
    folder, _ = perf_run
    report = (folder / "report.html").read_text()
    assert "Vendor-compatible columns" in report and "Standard columns" in report
    assert report.count("data:image/png;base64,") >= 4 + 4 + 1  # timelines, histograms, sweep
    assert "no datasheet peaks recorded for device" in report
