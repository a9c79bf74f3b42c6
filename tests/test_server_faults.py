"""Server mode when the server misbehaves: unreachable, wrong model, HTTP errors, a stream
cut mid-answer, a request timeout, a server that dies mid-run, one that refuses vLLM's
ignore_eos/min_tokens; and what reaches a server (request pacing). Against tests/chatserver.py,
a small OpenAI-compatible server that fails on purpose (no vLLM engine starts here; one test
starts ``vllm serve`` and gives up on it long before it could answer)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import psutil
import pytest
from PIL import Image

from kit.core.params import ParameterError
from kit.engines.openai_client import served_model
from kit.engines.params import EngineParams
from kit.engines.served import ServerBackend
from kit.engines.server_process import ServerError
from kit.engines.types import GenRequest, GenSampling
from kit.models.phi3v.family import PHI3V
from kit.models.tokens import PromptTokenCounter
from kit.perf.arrivals import arrival_offsets

from .chatserver import MODEL, Behaviour, ChatServer
from .conftest import kit_in_process, run_into, run_kit


def backend(url: str, timeout_s: float = 30.0) -> ServerBackend:
    params = EngineParams(backend="server", base_url=url, request_timeout_s=timeout_s)
    params.check()
    return ServerBackend(
        params=params,
        base_url=url,
        model=MODEL,
        model_path="",
        family=PHI3V,
        device="remote",
        config={},
    )


def ask(server: ServerBackend):
    request = GenRequest(question="Which?", images=[], prompt="Which?")
    return server.generate([request], GenSampling(max_tokens=4)).completions[0]


def test_a_healthy_stream_is_timed_chunk_by_chunk():
    with ChatServer() as fake:
        answer = ask(backend(fake.base_url))
    assert answer.error is None and answer.text == "A" and answer.finish_reason == "stop"
    assert answer.prompt_tokens == 10 and answer.output_tokens == 1
    assert answer.timing.tpot_s is None  # one token: nothing after the first to spread


FIRST_TOKEN_S, TOKEN_GAP_S = 0.3, 0.1


def test_ttft_waits_for_the_first_content_and_tpot_spreads_the_rest():
    """The server sends its role chunk (no content) at once, holds the first token back
    FIRST_TOKEN_S and each later one TOKEN_GAP_S. What holds on any machine: the first
    content cannot arrive before FIRST_TOKEN_S, and the last was sent at least 2 gaps after
    the first; the client may read the first late (by at most ttft - FIRST_TOKEN_S), which
    shortens the decode it measures by as much, never more."""
    paced = Behaviour(first_token_delay_s=FIRST_TOKEN_S, token_gap_s=TOKEN_GAP_S)
    request = GenRequest(question="Which?", images=[], prompt="Which?")
    with ChatServer(paced) as fake:
        result = backend(fake.base_url).generate([request], GenSampling.exact(3))
    (answer,) = result.completions
    assert answer.error is None and answer.text == "A A A" and answer.output_tokens == 3
    timing = answer.timing
    assert timing.ttft_s >= FIRST_TOKEN_S  # from the send to the first content, not the role
    read_late = timing.ttft_s - FIRST_TOKEN_S  # at most this after it was sent
    assert timing.decode_s >= 2 * TOKEN_GAP_S - read_late  # the two tokens after the first
    assert timing.tpot_s == pytest.approx(timing.decode_s / 2)  # over n - 1 = 2 tokens


@pytest.mark.parametrize("mode", ["http400", "http500"])
def test_http_errors_are_the_request_s_error_with_the_status(mode):
    with ChatServer(Behaviour(mode=mode)) as fake:
        answer = ask(backend(fake.base_url))
    assert answer.error.startswith(f"HTTP {mode[4:]}") and "fake failure" in answer.error


def test_a_stream_cut_mid_answer_is_an_error_not_a_short_answer():
    with ChatServer(Behaviour(mode="cut")) as fake:
        answer = ask(backend(fake.base_url))
    assert answer.error is not None
    assert answer.text.startswith("A")  # what arrived is kept for the record


def test_a_request_slower_than_the_timeout_names_the_parameter():
    with ChatServer(Behaviour(mode="slow", delay_s=3.0)) as fake:
        answer = ask(backend(fake.base_url, timeout_s=0.5))
    assert "request_timeout_s" in answer.error


def test_a_server_gone_mid_run_fails_the_call_naming_it():
    with ChatServer(Behaviour(die_after=1)) as fake:
        server = backend(fake.base_url)
        assert ask(server).error is None
        with pytest.raises(ServerError, match="stopped answering"):
            ask(server)


def test_wrong_model_name_lists_what_the_server_serves():
    with ChatServer() as fake:
        assert served_model(fake.base_url, None, "") == MODEL
        with pytest.raises(ParameterError, match=r"served_model_name.*fake-model"):
            served_model(fake.base_url, None, "other-model")


def test_unreachable_server_is_refused_before_a_run_folder(tmp_path, smoke_model):
    outputs = tmp_path / "outputs"
    proc = run_kit(
        "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "backend", "server",
        "-p", "base_url", "http://127.0.0.1:9",
        env={"KIT_OUTPUTS_DIR": str(outputs)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "base_url" in proc.stderr and "Traceback" not in proc.stderr
    assert not outputs.exists() or not any(outputs.iterdir())


@pytest.mark.parametrize(
    "setting, expected",
    [
        (("-p", "base_url", "http://127.0.0.1:9"), "only applies to backend: server"),
        (("-p", "backend", "cloud"), "'backend' must be one of offline, server"),
        (("-p", "backend", "server", "-p", "base_url", "http://u:pw@h:1"), "credentials"),
        (("-p", "backend", "server", "-p", "api_key_env", "KIT_NO_SUCH_KEY"), "not set"),
    ],
)
def test_bad_server_parameters_are_refused_up_front(tmp_path, setting, expected):
    proc = kit_in_process(
        "run", "demo", "-f", "params/smoke-demo.yaml", *setting,
        env={"KIT_OUTPUTS_DIR": str(tmp_path / "outputs")},
    )  # fmt: skip
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "key_env, expected",
    [
        (
            {},
            "It wants an API key: export it in a variable and name that variable with "
            "-p api_key_env VARIABLE.",
        ),
        (
            {"KIT_TEST_KEY": "sk-wrong-0451"},
            "It refused the key in $KIT_TEST_KEY: check that it is the key the server was "
            "started with (vllm serve --api-key).",
        ),
    ],
    ids=["no key", "wrong key"],
)
def test_a_server_that_wants_a_key_says_which_key_to_fix(tmp_path, key_env, expected):
    """HTTP 401 from a server started with --api-key: without api_key_env the message says
    to set it; with it set to a wrong key, it names the variable (never the key)."""
    given = ("-p", "api_key_env", "KIT_TEST_KEY") if key_env else ()
    with ChatServer(Behaviour(api_key="sk-right")) as fake:
        proc = kit_in_process(
            "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "backend", "server",
            "-p", "base_url", fake.base_url, *given,
            env={"KIT_OUTPUTS_DIR": str(tmp_path / "outputs"), **key_env},
        )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    (paragraph,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert paragraph == (
        f"error: Parameter 'base_url': {fake.base_url}/v1/models answered HTTP 401. {expected}"
    )
    assert "sk-wrong" not in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_mmmu_keeps_the_answers_of_a_server_that_died_mid_run(tmp_path, smoke_model):
    """Two questions per call; the server dies after the first call: those two answers are
    kept in predictions.jsonl, the run fails and says why; the API key is nowhere."""
    outputs = tmp_path / "outputs"
    with ChatServer(Behaviour(die_after=2)) as fake:
        proc = kit_in_process(
            "run", "mmmu", "-f", "params/smoke-mmmu.yaml", "-p", "backend", "server",
            "-p", "base_url", fake.base_url, "-p", "subjects", "Art,Physics",
            "-p", "chunk_size", "2", "-p", "api_key_env", "KIT_TEST_KEY",
            env={"KIT_OUTPUTS_DIR": str(outputs), "KIT_TEST_KEY": "sk-secret-0451"},
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    folder = next(outputs.glob("*-mmmu-*"))
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "failed" and "stopped answering" in results["error"]
    assert results["engine"]["backend"] == "server"
    assert results["engine"]["endpoint"] == fake.base_url
    assert results["engine"]["server_version"] == "fake-1.0"
    lines = [json.loads(x) for x in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(line["response"] == "A" for line in lines)
    for path in folder.rglob("*"):
        if path.is_file():
            assert b"sk-secret-0451" not in path.read_bytes(), path
    assert re.search(r"stopped answering", proc.stdout + proc.stderr)


# --------------------------------------------------------------------------------------------
# Perf through a server: what reaches it (the kit builds prompts of exactly input_len tokens
# with the local model; the fake server counts as vLLM would, with its own num_crops)
# --------------------------------------------------------------------------------------------


def counting_as_vllm(model: Path, num_crops: int = 1):
    """A fake server's prompt-token count as vLLM's: the user's text in the family's chat
    turn, each image by the family's processor with the server's ``num_crops``."""
    counter = PromptTokenCounter(str(model), PHI3V, num_crops)

    def count(body: dict) -> int:
        content = body["messages"][0]["content"]
        text = "".join(part["text"] for part in content if part["type"] == "text")
        sizes = [
            Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))).size
            for part in content
            if part["type"] == "image_url"
        ]
        return counter.prompt_tokens(PHI3V.prompt(text, len(sizes)), sizes)

    return count


def timed_bodies(fake: ChatServer) -> list[dict]:
    """What the server got after the kit's calibration request (max_tokens 1, no length
    extensions: a server the kit did not start is asked how it counts the images first)."""
    bodies = [r.body for r in fake.requests]
    assert bodies[0]["max_tokens"] == 1 and "min_tokens" not in bodies[0]
    return bodies[1:]


INPUT_LEN = 600
FAKE_PERF = (
    *("-f", "params/smoke-perf.yaml", "-p", "backend", "server", "-p", "input_len", str(INPUT_LEN)),
    *("-p", "max_output_len", "4", "-p", "iterations", "1", "-p", "warmup", "0"),
    *("-p", "ttft_probe", "false"),
)


def test_a_server_that_refuses_ignore_eos_is_named_and_the_run_goes_on(tmp_path, smoke_model):
    """docs/usage.md: output lengths are forced with vLLM's ignore_eos/min_tokens, and a server
    that refuses them is named in the report: the batch is sent again without them, its
    output lengths are recorded as the model chose them, and results.json's engine section,
    report.html and report.md say so."""
    behaviour = Behaviour(mode="no_length_extensions", count_prompt=counting_as_vllm(smoke_model))
    with ChatServer(behaviour) as fake:
        folder, _ = run_into(tmp_path, "perf", *FAKE_PERF, "-p", "base_url", fake.base_url)
        sent = timed_bodies(fake)
    extended = [any(k in body for k in ("ignore_eos", "min_tokens")) for body in sent]
    assert extended == [True, True, False, False]  # batch_size 2: refused, then sent plain
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "ok"
    (point,) = results["perf"]["points"]
    assert point["observed"] == {"prompt_tokens": [INPUT_LEN], "output_tokens": [1]}
    control = results["engine"]["output_length_control"]
    assert control.startswith("not honoured: the server refused ignore_eos/min_tokens")
    assert "Unrecognized request argument supplied: ignore_eos, min_tokens" in control
    for report in ("report.md", "report.html"):
        assert (
            "not honoured: the server refused ignore_eos/min_tokens"
            in (folder / report).read_text()
        ), report


def test_a_server_with_its_own_processor_settings_is_asked_and_every_prompt_is_exact(
    tmp_path, smoke_model
):
    """The fake counts images with num_crops 4 (what a plain vllm serve of a Phi-3.5
    checkpoint uses); the parameter file says 1, which used to fail with LengthMismatch. The
    kit asks the server first, builds every prompt to input_len by the server's count, and
    says in results.json and the report what it learned."""
    with ChatServer(Behaviour(count_prompt=counting_as_vllm(smoke_model, num_crops=4))) as fake:
        folder, _ = run_into(
            tmp_path, "perf", *FAKE_PERF, "-p", "input_len", "1024", "-p", "base_url", fake.base_url
        )  # fmt: skip
        timed = timed_bodies(fake)
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "ok" and len(timed) == 2
    count = results["perf"]["server_count"]
    assert count["image_sizes"] == [[336, 336]]
    assert (count["kit_image_tokens"], count["server_image_tokens"]) == (313, 757)
    assert (count["kit_setting"], count["matches"]) == ("num_crops 1", "num_crops 4")
    (point,) = results["perf"]["points"]
    assert point["observed"]["prompt_tokens"] == [1024]  # by the server's own count
    said = (
        "The server counts 757 tokens for 336x336 where the kit counts 313 with num_crops 1: "
        "its setting matches num_crops 4."
    )
    assert said in (folder / "report.md").read_text()


CLOCK_SLACK_S = 1e-3  # asyncio may wake a timer up to its clock's resolution early (1 ns)


def test_request_rate_and_burstiness_pace_the_requests_the_server_gets(tmp_path, smoke_model):
    """A load point sends request i no earlier than its seeded arrival offset after the
    point starts (kit.perf.arrivals.arrival_offsets with the run's seed), at most ``concurrency`` at
    a time. The server's clock sees the point start after the /metrics read that opens it,
    so every arrival is at least its offset after that read, on any machine; and a kit that
    ignored the pacing would deliver them all within moments of it."""
    from kit.engines.types import Load
    from kit.perf.params import PerfParams, PlannedPoint
    from kit.perf.sweep import PHASE_TIMED, phase_seed, point_load

    rate, burstiness, requests = 2.0, 0.5, 4
    with ChatServer(Behaviour(count_prompt=counting_as_vllm(smoke_model))) as fake:
        folder, _ = run_into(
            tmp_path, "perf", *FAKE_PERF, "-p", "base_url", fake.base_url,
            "-p", "concurrency", "2", "-p", "num_requests", str(requests),
            "-p", "request_rate", str(rate), "-p", "burstiness", str(burstiness),
        )  # fmt: skip
        timed_bodies(fake)
        chats, gets, most = fake.requests[1:], fake.gets, fake.state.max_in_flight
    # the offsets of the point's first timed iteration, seeded by the run's seed (0)
    params = PerfParams(request_rate=rate, burstiness=burstiness, concurrency=[2])
    seed = phase_seed(params, 0, PHASE_TIMED, 0)
    offsets = arrival_offsets(requests, rate, burstiness, seed=seed)
    planned = PlannedPoint(0, INPUT_LEN, requests, 4, text_tokens=0, image_tokens=0, concurrency=2)
    assert point_load(params, planned, seed) == Load(concurrency=2, offsets=tuple(offsets))
    assert offsets[-1] > 0.5  # long enough that unpaced requests could not meet it
    first = min(r.arrived for r in chats)
    opened = max(t for t, path in gets if path == "/metrics" and t < first)
    arrivals = sorted(r.arrived for r in chats)
    assert len(arrivals) == requests
    for arrived, offset in zip(arrivals, sorted(offsets), strict=True):
        assert arrived - opened >= offset - CLOCK_SLACK_S, (arrivals, opened, offsets)
    assert most <= 2
    (point,) = json.loads((folder / "results.json").read_text())["perf"]["points"]
    assert point["params"]["request_rate"] == rate and point["params"]["burstiness"] == burstiness
    assert point["served"]["client"]["completed"] == requests


def test_an_infinite_request_rate_sends_a_wave_of_concurrency_at_once():
    """request_rate inf: every offset is 0, so ``concurrency`` requests are in flight
    together. The server holds the first two until both arrived, which a client sending
    them one at a time never achieves; it never sees more than two at once."""
    from kit.perf.params import PerfParams, PlannedPoint
    from kit.perf.sweep import point_load

    params = PerfParams(concurrency=[2])  # request_rate: inf, the default
    planned = PlannedPoint(0, 600, 4, 3, text_tokens=0, image_tokens=0, concurrency=2)
    load = point_load(params, planned, seed=7)
    assert load.offsets == (0.0, 0.0, 0.0, 0.0)
    with ChatServer(Behaviour(hold_first=2)) as fake:
        requests = [GenRequest(question=f"Q{i}", images=[], prompt=f"Q{i}") for i in range(4)]
        batch = backend(fake.base_url).generate(requests, GenSampling.exact(3), load)
        assert not fake.state.hold_broken and fake.state.max_in_flight == 2
        assert len(fake.requests) == 4
    assert [c.error for c in batch.completions] == [None] * 4
    assert [c.output_tokens for c in batch.completions] == [3] * 4


# --------------------------------------------------------------------------------------------
# A server the kit starts that is not healthy in time
# --------------------------------------------------------------------------------------------


def test_a_started_server_not_healthy_within_server_start_timeout_s_fails_naming_it(
    tmp_path, smoke_model
):
    """The kit starts a real ``vllm serve`` and waits server_start_timeout_s for /health.
    0.05 s cannot be enough on any machine: the server is a new interpreter that imports
    vLLM (seconds) and loads the model before it even listens, so the wait always ends
    unanswered; nothing here depends on how fast the machine is. The run fails naming the
    parameter, and the kit stops the server it started."""
    outputs = tmp_path / "outputs"
    proc = kit_in_process(
        "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "backend", "server",
        "-p", "server_start_timeout_s", "0.05", "-p", "warmup", "0",
        env={"KIT_OUTPUTS_DIR": str(outputs)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    (folder,) = outputs.glob("*-demo-*")
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "failed"
    assert "did not answer" in results["error"] and "(server_start_timeout_s)" in results["error"]
    assert "server_start_timeout_s" in proc.stderr
    assert "server_start_timeout_s" in (folder / "report.html").read_text()
    port = re.search(r"http://127\.0\.0\.1:(\d+)/health", results["error"]).group(1)
    servers = [
        p.pid
        for p in psutil.process_iter(["cmdline", "status"])
        if f"--port {port}" in " ".join(p.info["cmdline"] or [])
        and p.info["status"] != psutil.STATUS_ZOMBIE
    ]
    assert servers == []


# --------------------------------------------------------------------------------------------
# A server's caches (the fake counts a repeated request as vLLM's caches would)
# --------------------------------------------------------------------------------------------


def test_a_caching_server_cannot_flatter_a_rerun_and_a_hit_is_shown_on_the_numbers(
    tmp_path, smoke_model
):
    """The same perf command twice against a server with prefix caching on. Each run salts
    its words and pictures anew (``workload_salt``), so no request of the second run repeats
    one of the first (which the server would serve from cache); the first run's point
    records the server's counters: every prompt token and image looked up, none served.
    Before the second run another client warms the server's caches for everything
    (``always_hit``): the hit is shown on the point, in the terminal, in the vendor table of
    both reports and in a comparison. The engine section gives the server's own cache
    setting, not the kit's parameter."""
    from kit.compare.table import CACHED, compare

    behaviour = Behaviour(count_prompt=counting_as_vllm(smoke_model), prefix_caching=True)
    with ChatServer(behaviour) as fake:
        first, _ = run_into(tmp_path, "perf", *FAKE_PERF, "-p", "base_url", fake.base_url)
        fake.behaviour.always_hit = True
        second, proc = run_into(tmp_path, "perf", *FAKE_PERF, "-p", "base_url", fake.base_url)
        bodies = [json.dumps(r.body["messages"]) for r in fake.requests]
    # each run: its calibration request, then the timed batch of 2
    assert len(bodies) == 6 and len(set(bodies)) == 6  # nothing the server saw came again
    runs = [json.loads((folder / "results.json").read_text()) for folder in (first, second)]
    (clean,), (cached,) = (run["perf"]["points"] for run in runs)
    assert clean["workload_salt"] != cached["workload_salt"]
    for run in runs:
        assert run["engine"]["prefix_caching"] is True  # the server's, from its /metrics
        assert run["parameters"]["enable_prefix_caching"] is False  # the kit's, not applied
    assert clean["caches"] == {
        "source": "the server's /metrics counters",
        "prefix_hit_tokens": 0,
        "prefix_query_tokens": 2 * INPUT_LEN,  # batch_size 2, every prompt token looked up
        "mm_hits": 0,
        "mm_queries": 2,
        "hit": False,
    }
    assert cached["caches"]["hit"] is True and cached["caches"]["prefix_hit_tokens"] == 1200
    line = "CACHED: prefix cache 1200 of 1200 prompt tokens, multimodal cache 2 of 2 images"
    assert f"WARNING {line}" in proc.stdout
    for report in ("report.md", "report.html"):
        assert line in (second / report).read_text(), report
        assert "CACHED" not in (first / report).read_text(), report
    rows = [row for row in compare(runs).rows if row["kind"] == "perf"]
    assert [CACHED in row["flags"] for row in rows] == [False, True]
