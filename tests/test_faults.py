"""Fault injection: hostile input, kills and interrupts, as a user meets them.

What the kit promises (docs/usage.md, "When things go wrong"): bad input is refused before any
file is touched, with one paragraph and exit 2; an interrupted run ends "interrupted" with
what it saved, a report and no engine left running; a record whose process was killed is
marked "interrupted" by the next ``kit run`` or ``kit index``; every JSON file is strict.

Engine cases start the tiny model (an interrupt and a SIGKILL: two engines) or a real vLLM
server (one start, which dies mid-run); an interrupted MMMU run (SIGINT and SIGTERM) answers
through tests/chatserver.py; the others need none.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kit.core import jsonio
from kit.core.pauses import PAUSE_ENV, PAUSED_LINE, RELEASE_ENV
from kit.core.processes import process_identity
from kit.engines.logs import root_cause
from kit.perf.grid import check_fits
from kit.perf.params import PerfParams
from kit.runs.parameters import check_resume, preflight, resume_values
from kit.runs.record import mark_if_gone

from .chatserver import ChatServer
from .conftest import REPO, kit_in_process, run_kit

# A two-point perf grid whose first point finishes within seconds of the engine start.
QUICK_GRID = (
    *("-f", "params/smoke-perf.yaml", "-p", "input_len", "400,500", "-p", "batch_size", "1"),
    *("-p", "max_output_len", "4", "-p", "iterations", "1", "-p", "warmup", "0"),
    *("-p", "ttft_probe", "false"),
)


def strict_json(path: Path):
    """Parse with NaN/Infinity refused, as browsers and jq do."""

    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def start_perf(outputs: Path, *args: str, hold: str = "perf.point:1") -> subprocess.Popen:
    """The quick grid as a user starts it, held before its second point (KIT_PAUSE_AT), so
    a signal always lands after point 0 was saved and before point 1 began, however fast
    or slow the machine (or at ``hold``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "kit", "run", "perf", *QUICK_GRID, *args],
        cwd=REPO,
        env={**os.environ, "KIT_OUTPUTS_DIR": str(outputs), PAUSE_ENV: hold},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell job
    )


def wait_until_held(
    proc: subprocess.Popen, outputs: Path, place: str = "perf.point:1"
) -> tuple[list[str], list[psutil.Process]]:
    """Read the run's output until it is held at ``place`` in point 1; its process tree then.
    Point 0 is in results.json by then: the notebook records a point before the next."""
    held = PAUSED_LINE.format(place=place)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if held in line:
            break
    else:
        raise AssertionError("the run ended before it was held:\n" + "".join(lines[-40:]))
    (saved,) = outputs.glob("*/results.json")
    points = json.loads(saved.read_text())["perf"]["points"]
    assert [p["params"]["input_len"] for p in points] == [400]
    return lines, psutil.Process(proc.pid).children(recursive=True)


def gone(processes: list[psutil.Process], timeout_s: float) -> list[int]:
    """Pids still running (zombies count as gone) after up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p.pid for p in processes if p.is_running() and p.status() != "zombie"]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Interrupts and kills (engine)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_interrupt_keeps_what_was_measured_and_leaves_nothing_running(tmp_path):
    """Held before point 1's second timed iteration: point 0 is kept whole, and point 1 with
    its one finished iteration, marked cut. (SIGTERM takes the same path, checked on the
    MMMU run below without an engine: an engine start here cost the suite 37 s.)"""
    sig = signal.SIGINT
    place = "perf.iteration:1.1"
    proc = start_perf(tmp_path, "-p", "iterations", "2", hold=place)
    lines, tree = wait_until_held(proc, tmp_path, place)
    os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C reaches the whole foreground job
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 128 + sig
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
    (message,) = [line for line in rest.splitlines() if line.startswith("interrupted")]
    assert f"interrupted ({sig.name})" in message and "report:" in message
    assert gone(tree, timeout_s=30) == []  # papermill's shutdown, then stop_leftovers
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    results = strict_json(folder / "results.json")
    assert results["status"] == "interrupted" and results["finished_at"]
    assert sig.name in results["error"]
    whole, cut = results["perf"]["points"]
    assert whole["params"]["input_len"] == 400 and whole["cut"] is None
    assert cut["params"]["input_len"] == 500 and cut["vendor"]["tps"] > 0
    assert cut["cut"] == "interrupted after 1 of 2 timed iterations"
    assert "500 / out 4 / bs 1: interrupted after 1 of 2 timed iterations" in "".join(lines) + rest
    assert "interrupted" in (folder / "report.html").read_text()
    assert "interrupted" in (tmp_path / "index.html").read_text()


@pytest.mark.slow
def test_sigkill_of_the_kit_takes_the_engine_down_and_the_record_says_so(tmp_path):
    proc = start_perf(tmp_path, "-p", "scheduling", "vllm")
    _, tree = wait_until_held(proc, tmp_path)
    engine = [p for p in tree if "EngineCore" in p.name()]
    assert engine, [p.name() for p in tree]
    proc.kill()  # SIGKILL: the kit gets no chance to clean up
    proc.wait()
    # docs/usage.md: "within a second"; the reaper polls every 0.2 s and kills without grace
    # (tests/test_reaper.py holds the mechanism), plus a second of slack for a busy machine
    assert gone(tree, timeout_s=2) == []
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert strict_json(folder / "results.json")["status"] == "running"
    index = run_kit("index", "--outputs", str(tmp_path))
    assert index.returncode == 0, index.stderr
    results = strict_json(folder / "results.json")
    assert results["status"] == "interrupted" and results["finished_at"]
    assert "ended without finishing the record" in results["error"]
    assert results["perf"]["points"]  # what it had saved is kept


def held(proc: subprocess.Popen, place: str) -> list[str]:
    """The run's output until it says it is held at ``place``."""
    line = PAUSED_LINE.format(place=place)
    lines = []
    for text in proc.stdout:
        lines.append(text)
        if line in text:
            return lines
    raise AssertionError("the run ended before it was held:\n" + "".join(lines[-40:]))


def command_line(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # a short-lived helper process that has ended since
        return []


@pytest.mark.slow
def test_a_started_server_that_dies_mid_perf_fails_the_run_keeping_its_points(tmp_path):
    """docs/usage.md (Server mode): a server that dies mid-run fails the run with its cause,
    keeping the perf points finished so far. The kit starts a real vLLM server; the run is
    held before point 1 (point 0 saved), the server and its engine are killed (SIGKILL, as
    a crash or the OOM killer), then the hold is released (KIT_PAUSE_RELEASE) so point 1
    meets the dead server. The folder stays resumable."""
    release = tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "run", "perf", *QUICK_GRID, "-p", "backend", "server"],
        cwd=REPO,
        env={
            **os.environ,
            "KIT_OUTPUTS_DIR": str(tmp_path),
            PAUSE_ENV: "perf.point:1",
            RELEASE_ENV: str(release),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _, tree = wait_until_held(proc, tmp_path)
        (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        endpoint = strict_json(folder / "results.json")["engine"]["endpoint"]
        port = endpoint.rsplit(":", 1)[1]
        (server,) = [p for p in tree if f"--port {port}" in " ".join(command_line(p))]
        dying = [server, *server.children(recursive=True)]
        for process in dying:
            process.kill()
        assert gone(dying, timeout_s=30) == []
        release.touch()
        rest = proc.stdout.read()
        assert proc.wait(timeout=300) == 1, rest[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not release.exists()  # the hold took it
    results = strict_json(folder / "results.json")
    assert results["status"] == "failed"
    assert "The vLLM server exited with code -9 during the run" in results["error"]
    assert "The vLLM server exited with code -9" in rest  # the command says why
    assert [p["params"]["input_len"] for p in results["perf"]["points"]] == [400]
    assert "exited with code -9" in (folder / "report.html").read_text()
    assert gone(tree, timeout_s=30) == []
    # resumable as it stands: its saved parameters pass the resume checks unchanged (a
    # resume reruns in place, as test_reproduce_e2e's resumed child shows; not repeated
    # here, where it would cost a second vllm serve)
    saved = resume_values(folder, "perf")
    assert saved["backend"] == "server" and not saved.get("base_url")
    check_resume(folder, preflight(PerfParams, saved), PerfParams, saved, {})


def start_held_mmmu(outputs: Path, fake: ChatServer) -> subprocess.Popen:
    """Four questions, two per generate call, against the fake server (answering is the
    server's part, interrupting and resuming the kit's), held before the second call."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "kit", "run", "mmmu", "-f", "params/smoke-mmmu.yaml"),
            *("-p", "backend", "server", "-p", "base_url", fake.base_url),
            *("-p", "subjects", "Art,Physics", "-p", "chunk_size", "2"),
        ],
        cwd=REPO,
        env={**os.environ, "KIT_OUTPUTS_DIR": str(outputs), PAUSE_ENV: "mmmu.chunk:1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    ("sig", "presses"), [(signal.SIGINT, 3), (signal.SIGTERM, 1)], ids=["ctrl-c-thrice", "sigterm"]
)
def test_an_interrupted_mmmu_run_keeps_its_answers_and_resumes_only_the_missing(
    tmp_path, sig, presses
):
    """docs/usage.md: Ctrl-C (pressed once or several times) or a scheduler's SIGTERM keeps every
    answer saved so far, says so in one line, leaves no process behind, and the record says
    interrupted; --resume answers only what is missing (after Ctrl-C)."""
    outputs = tmp_path / "outputs"
    with ChatServer() as fake:
        proc = start_held_mmmu(outputs, fake)
        try:
            held(proc, "mmmu.chunk:1")
            tree = psutil.Process(proc.pid).children(recursive=True)
            (folder,) = [p for p in outputs.iterdir() if p.is_dir()]
            predictions = folder / "predictions.jsonl"
            saved = predictions.read_text()
            assert len(saved.splitlines()) == 2 and len(fake.requests) == 2
            for _ in range(presses):  # Ctrl-C pressed three times in the terminal, impatiently
                os.killpg(proc.pid, sig)
            rest = proc.stdout.read()
            assert proc.wait(timeout=120) == 128 + sig, rest[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert gone(tree, timeout_s=30) == []  # the notebook's kernel included
        (line,) = rest.strip().splitlines()  # one line, however often it was pressed
        assert line.startswith(f"interrupted ({sig.name}): what was saved is kept in")
        results = strict_json(folder / "results.json")
        assert results["status"] == "interrupted" and sig.name in results["error"]
        assert predictions.read_text() == saved
        if sig != signal.SIGINT:
            return  # the resume is the same after either signal: once is enough (16 s)
        asked = len(fake.requests)
        resumed = kit_in_process(
            "run", "mmmu", "--resume", str(folder), env={"KIT_OUTPUTS_DIR": str(outputs)}
        )
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert len(fake.requests) - asked == 2  # only the two unanswered questions
    text = predictions.read_text()
    assert text.startswith(saved)  # the earlier answers as they were
    ids = [json.loads(line)["id"] for line in text.splitlines()]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert {i.split("_")[1] for i in ids} == {"Art", "Physics"}
    results = strict_json(folder / "results.json")
    assert results["status"] == "ok" and results["mmmu"]["overall"]["n"] == 4


# --------------------------------------------------------------------------------------------
# A refused resume touches nothing (engine: the session's MMMU run)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_refused_resume_leaves_the_run_byte_identical(mmmu_run, tmp_path):
    source, _ = mmmu_run
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    before = tree_digest(folder)
    proc = run_kit("run", "mmmu", "--resume", str(folder), "-p", "max_output_len", "20")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "max_output_len: 10 -> 20" in proc.stderr and "Traceback" not in proc.stderr
    assert tree_digest(folder) == before
    assert strict_json(folder / "results.json")["status"] == "ok"
    # still resumable as it stands: test_mmmu_e2e resumes a copy of the same run (25 s)


# --------------------------------------------------------------------------------------------
# Bad input and bad places: one paragraph, exit 2, nothing written (no engine)
# --------------------------------------------------------------------------------------------


def _refused(outputs: Path, *args: str, env: dict | None = None):
    proc = run_kit(*args, env={"KIT_OUTPUTS_DIR": str(outputs), **(env or {})}, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (paragraph,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return paragraph


def test_non_finite_numbers_are_refused_up_front(tmp_path):
    outputs = tmp_path / "out"
    for given in (
        ("-p", "temperature", "nan"),
        ("-p", "temperature", "inf"),
        ("-y", "temperature: -.inf"),
    ):
        message = _refused(outputs, "run", "demo", "-f", "params/smoke-demo.yaml", *given)
        assert "'temperature' must be a finite number" in message
    peaks = "device_peaks: {X: {memory_bandwidth_GBps: .nan, bf16_dense_tflops: 1}}"
    message = _refused(outputs, "run", "perf", "-f", "params/smoke-perf.yaml", "-y", peaks)
    assert "device_peaks.X.memory_bandwidth_GBps" in message
    assert not outputs.exists() or not any(outputs.iterdir())


def test_huge_image_names_the_limit_and_the_setting(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    message = _refused(
        tmp_path / "out", "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "image", str(huge)
    )
    assert str(huge) in message and "KIT_MAX_IMAGE_PIXELS" in message


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            {"KIT_OUTPUTS_DIR": "/proc/kit-outputs"},
            "The outputs folder '/proc/kit-outputs' cannot be written",
        ),
        ({"KIT_CACHE_DIR": "/proc/kit-cache"}, "KIT_CACHE_DIR"),
    ],
    ids=["unwritable-outputs", "unwritable-cache"],
)
def test_unusable_folders_are_named_with_the_fix(tmp_path, setting, expected):
    env = {"KIT_OUTPUTS_DIR": str(tmp_path / "out"), **setting}
    proc = run_kit("run", "demo", "-f", "params/smoke-demo.yaml", env=env, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_score_output(tmp_path):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"id": "validation_Art_1", "response": "A"}\n')
    proc = run_kit(
        "mmmu-score",
        "--dataset",
        "fixture",
        "--predictions",
        str(predictions),
        "--out",
        "/proc/x/s.json",
    )
    assert proc.returncode == 2 and "/proc/x/s.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    before = predictions.read_bytes()
    same = tmp_path / "." / "p.jsonl"  # the same file, spelled otherwise
    message = _refused(
        tmp_path, "mmmu-score", "--dataset", "fixture", "--predictions", str(predictions),
        "--out", str(same),
    )  # fmt: skip
    assert "is the predictions file" in message and predictions.read_bytes() == before


def test_config_json_that_is_not_json_is_caught_before_the_engine(tmp_path, smoke_model):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)
    (model / "config.json").write_text('{"architectures": ["Phi3VForCausalLM"],')
    message = _refused(
        tmp_path / "out", "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "model", str(model)
    )
    assert "config.json" in message and "is not valid JSON" in message


def test_input_len_beyond_the_context_suggests_only_possible_fixes():
    with pytest.raises(ValueError) as caught:
        check_fits(40000, 1024, 32768, min_prompt_tokens=300)
    message = str(caught.value)
    assert "lower input_len to <= 31744" in message and "raise max_model_len to >= 41024" in message
    assert "max_output_len to <=" not in message  # 32768 - 40000 < 1: not a fix
    assert not re.search(r"<= -\d", message)


def test_missing_image_names_each_folder_once(tmp_path):
    message = _refused(
        tmp_path, "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "image", "nope.png"
    )
    folders = re.search(r"looked in (.+?)\)", message).group(1).split(" and ")
    assert len(folders) == len(set(folders))


def test_engine_failure_names_the_root_cause_from_its_log(tmp_path):
    log = tmp_path / "engine.log"
    log.write_text(
        "INFO loading\n"
        "[rank0]: ValueError: Available memory on node 0 (4.34/14.84 GiB) is less than needed\n"
        "ERROR Engine core initialization failed. See root cause above.\n"
        "RuntimeError: Engine core initialization failed. See root cause above. "
        "Failed core proc(s): {}\n"
    )
    assert (
        root_cause(log)
        == "ValueError: Available memory on node 0 (4.34/14.84 GiB) is less than needed"
    )
    log.write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    assert root_cause(log).startswith("torch.OutOfMemoryError: CUDA out of memory")


# --------------------------------------------------------------------------------------------
# Records: strict JSON, and a killed run's record
# --------------------------------------------------------------------------------------------


def test_json_the_kit_writes_is_strict(tmp_path):
    path = jsonio.write_json(
        tmp_path / "r.json", {"a": math.nan, "b": [math.inf, 1.5], "c": -math.inf}
    )
    assert strict_json(path) == {"a": None, "b": [None, 1.5], "c": None}
    bad = tmp_path / "bad.json"
    bad.write_text("[NaN]")  # what json.dumps writes by default: the check can fail
    with pytest.raises(ValueError, match="not JSON"):
        strict_json(bad)


def test_record_of_a_dead_process_becomes_interrupted(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait()
    path = tmp_path / "results.json"
    jsonio.write_json(path, {"status": "running", "process": identity, "finished_at": None})
    assert mark_if_gone(path) is True
    record = strict_json(path)
    assert record["status"] == "interrupted" and record["finished_at"]
    assert str(child.pid) in record["error"]
    mine = tmp_path / "mine.json"
    jsonio.write_json(mine, {"status": "running", "process": process_identity()})
    assert mark_if_gone(mine) is False  # this process is alive
    jsonio.write_json(
        mine, {"status": "running", "process": {**process_identity(), "host": "elsewhere"}}
    )
    assert mark_if_gone(mine) is False  # another host's process cannot be checked from here


def test_one_unreadable_record_never_breaks_the_index_or_the_others(tmp_path):
    """A results.json that is a JSON array, one whose process is not an object, and one
    that is not JSON: ``kit index`` lists each under "could not be read" and lists the
    good run, exit 0, no traceback."""
    good = tmp_path / "good"
    good.mkdir()
    record = {"schema_version": 2, "notebook": "demo", "status": "ok", "started_at": "2026"}
    jsonio.write_json(good / "results.json", record)
    for name, text in (
        ("array", "[1, 2]"),
        ("odd-process", '{"status": "running", "process": [1]}'),
        ("torn", '{"status": "runn'),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(text)
    index = run_kit("index", "--outputs", str(tmp_path))
    assert index.returncode == 0 and "Traceback" not in index.stderr, index.stderr
    page = (tmp_path / "index.html").read_text()
    unreadable = page.split("could not be read", 1)[1]
    for name in ("array", "odd-process", "torn"):
        assert f"{name}/results.json" in unreadable, name
    assert "good" in page.split("could not be read", 1)[0]


def resumable_perf_folder(tmp_path: Path, status: str, process: dict | None = None) -> Path:
    """A finished (or running) perf run folder as ``kit run perf`` leaves it, without its
    engine: the parameters it started with, its record and a report."""
    folder = tmp_path / "outputs" / "perf-run"
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(
        "model: smoke\ninput_len: [1024]\nmax_output_len: [8]\nbatch_size: [1]\n"
        "num_crops: 1\ninput_vision_shape: '336,336'\nmax_model_len: 4096\n"
    )
    record = {"schema_version": 2, "notebook": "perf", "status": status, "process": process}
    jsonio.write_json(folder / "results.json", record)
    (folder / "report.md").write_text("measured")
    return folder


def test_resume_refuses_parameters_that_change_what_was_measured(tmp_path, smoke_model):
    folder = resumable_perf_folder(tmp_path, "ok")
    before = tree_digest(folder)
    message = _refused(
        tmp_path / "outputs", "run", "perf", "--resume", str(folder), "-p", "input_len", "2048"
    )
    assert "input_len: [1024] -> [2048]" in message and "start a new run" in message
    assert tree_digest(folder) == before  # results, parameters and report untouched


def test_resume_of_a_run_that_is_still_running_is_refused(tmp_path, smoke_model):
    folder = resumable_perf_folder(tmp_path, "running", process_identity())  # alive: this one
    before = tree_digest(folder)
    message = _refused(tmp_path / "outputs", "run", "perf", "--resume", str(folder))
    assert "that run is still running (pid" in message and f"{os.getpid()}" in message
    assert tree_digest(folder) == before


def test_a_resumed_run_keeps_the_earlier_reports_as_attempts(tmp_path):
    from kit.runs.runner import keep_previous_attempt

    folder = tmp_path / "run"
    (folder / "report_files").mkdir(parents=True)
    (folder / "report_files" / "figure.png").write_bytes(b"png")
    (folder / "report.md").write_text("![a plot](report_files/figure.png)\n")
    for name in ("perf.ipynb", "report.html"):
        (folder / name).write_text(name)
    keep_previous_attempt(folder, "perf")
    assert sorted(p.name for p in folder.iterdir()) == [
        "perf.attempt-1.ipynb", "report.attempt-1.html", "report.attempt-1.md",
        "report.attempt-1_files",
    ]  # fmt: skip
    text = (folder / "report.attempt-1.md").read_text()
    assert text == "![a plot](report.attempt-1_files/figure.png)\n"
    assert (folder / "report.attempt-1_files" / "figure.png").read_bytes() == b"png"


def test_small_mistakes_are_named_precisely(tmp_path):
    """A key given twice in a -f file (YAML keeps the last silently), concurrency 0 (the
    grid reads it where batch_size would be), and ``kit index --outputs`` with a typo (it
    would create the folder): each one paragraph naming what to fix, nothing written."""
    twice = tmp_path / "twice.yaml"
    twice.write_text("input_len: 800\nwarmup: 0\ninput_len: 1024\n")
    outputs = tmp_path / "out"
    message = _refused(outputs, "run", "perf", "-f", "params/smoke-perf.yaml", "-f", str(twice))
    assert f"Parameter file {str(twice)!r}" in message and "'input_len' is given twice" in message
    assert "(line 3)" in message
    message = _refused(
        outputs, "run", "perf", "-f", "params/smoke-perf.yaml", "-p", "backend", "server",
        "-p", "base_url", "http://127.0.0.1:9", "-p", "concurrency", "0",
    )  # fmt: skip
    assert message.startswith("error: concurrency: must be a positive integer, got 0.")
    assert ".." not in message
    typo = tmp_path / "outptus"
    message = _refused(outputs, "index", "--outputs", str(typo))
    assert f"--outputs {str(typo)!r} is not a folder" in message and not typo.exists()
    assert not outputs.exists() or not any(outputs.iterdir())
