"""The widget explorer: driven from pytest as a user drives it (set values, press buttons).

Engine tests run on the tiny model and real vLLM, with one engine for the whole module.
"""

from __future__ import annotations

import ast
import html
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from kit.core.images import synthetic_image
from kit.core.params import ParameterError, defaults
from kit.engines.offline import Engine
from kit.explore.explorer import Explorer
from kit.explore.params import ExploreParams
from kit.explore.requests import chat_prompt
from kit.models.phi3v.family import PHI3V
from kit.report.html import format_value

from .conftest import REPO

NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
TRICKY_PROMPT = 'Is <b>this</b> a robot & "what" is it?'
DEMO_TOKENS = {4: 757, 16: 2509}  # the 512 x 512 demo picture (Phi-3.5-vision formula)


def upload_entry(name: str, content: bytes) -> dict:
    return {
        "name": name,
        "type": "image/png",
        "size": len(content),
        "content": memoryview(content),
        "last_modified": datetime.now(UTC),
    }


def png_bytes(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    synthetic_image(width, height, seed).save(buffer, format="PNG")
    return buffer.getvalue()


def set_inputs(explorer: Explorer, paths="demo", upload=(), prompt="What is this?", **request):
    explorer.paths.value = paths
    explorer.upload.value = tuple(upload)
    explorer.prompt.value = prompt
    explorer.num_crops.value = request.get("num_crops", 4)
    explorer.max_output_len.value = request.get("max_output_len", 8)
    explorer.temperature.value = request.get("temperature", 0.0)


def all_html(explorer: Explorer) -> str:
    parts = (
        explorer.message,
        explorer.answer,
        explorer.metrics,
        explorer.history_view,
        explorer.images_info,
        explorer.engine_status,
    )
    return "".join(part.value for part in parts)


# ----------------------------------------------------------------------------------------
# Without an engine
# ----------------------------------------------------------------------------------------


def test_parameters_cell_matches_explore_params():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign)
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert values == defaults(ExploreParams)


def test_prompt_gets_image_tags_or_keeps_the_users():
    assert (
        chat_prompt("What?", 2, PHI3V)
        == "<|user|>\n<|image_1|>\n<|image_2|>\nWhat?<|end|>\n<|assistant|>\n"
    )
    own = "Compare <|image_2|> with <|image_1|>."
    assert chat_prompt(own, 2, PHI3V) == f"<|user|>\n{own}<|end|>\n<|assistant|>\n"
    with pytest.raises(ParameterError, match="image tag .* but no image"):
        chat_prompt("<|image_1|>\nWhat?", 0, PHI3V)
    with pytest.raises(ParameterError, match="No image is given"):
        chat_prompt("What?", 0, PHI3V)
    with pytest.raises(ParameterError, match="do not match the 1 image"):
        chat_prompt("<|image_1|> and <|image_2|>", 1, PHI3V)
    with pytest.raises(ParameterError, match="prompt is empty"):
        chat_prompt("  ", 1, PHI3V)


class FakeCore:
    def __init__(self):
        self.stopped = False

    def shutdown(self):
        self.stopped = True


class FakeLLM:
    def __init__(self):
        self.llm_engine = type("E", (), {})()
        self.llm_engine.engine_core = FakeCore()

    def generate(self, *args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("the running engine must not be used")


@pytest.fixture
def fake_explorer(tmp_path, smoke_model):
    started = []

    def factory(params, log_file):
        started.append((params, log_file))
        return Engine(FakeLLM(), params, str(smoke_model), PHI3V, {}, "cpu")

    explorer = Explorer(ExploreParams(max_model_len=4096), tmp_path / "session", factory)
    explorer.started = started
    return explorer


def test_engine_setting_change_needs_an_explicit_restart(fake_explorer):
    explorer = fake_explorer
    assert "starts on the first Generate" in explorer.engine_status.value
    explorer.engine_button.click()
    assert len(explorer.started) == 1 and explorer.engine is not None
    first = explorer.engine
    assert explorer.started[0][1] == explorer.session_dir / "engine.log"

    explorer.max_model_len.value = 8192
    explorer.dtype.value = "float32"
    assert "max_model_len 4096 → 8192" in explorer.engine_status.value
    assert "Restart engine" in explorer.engine_status.value
    assert explorer.generate() is None
    assert "Engine settings changed" in explorer.message.value
    assert "dtype auto → float32" in explorer.message.value
    assert explorer.engine is first and len(explorer.started) == 1

    explorer.engine_button.click()  # Restart engine
    assert first.llm is None  # shut down
    assert len(explorer.started) == 2
    params = explorer.started[1][0]
    assert (params.max_model_len, params.dtype) == (8192, "float32")
    assert explorer.pending_changes() == {}
    assert "Changed:" not in explorer.engine_status.value


def test_bad_inputs_are_messages_and_start_no_engine(fake_explorer):
    explorer = fake_explorer
    cases = [
        ({"paths": ""}, "No image is given"),
        ({"paths": "", "prompt": "<|image_1|>\nWhat?"}, "has an image tag"),
        ({"paths": "no/such/picture.png"}, "does not exist"),
        ({"upload": [upload_entry("notes.png", b"not a picture")]}, "cannot be read as an image"),
        ({"prompt": "word " * 5000}, "max_model_len of 4096"),
        ({"num_crops": 16, "paths": "demo\ndemo"}, "leaves no room for an answer"),
        ({"paths": "\n".join(["demo"] * 5)}, "at most 4 per prompt"),
    ]
    for inputs, expected in cases:
        set_inputs(explorer, **inputs)
        assert explorer.generate() is None, inputs
        assert expected in html.unescape(explorer.message.value), (inputs, explorer.message.value)
        assert "⚠" in explorer.message.value
    assert explorer.started == []  # checked before any engine start


def test_image_table_shows_tokens_at_every_num_crops(fake_explorer):
    explorer = fake_explorer
    set_inputs(explorer, paths="demo", upload=[upload_entry("wide.png", png_bytes(1000, 500, 1))])
    explorer.num_crops.value = 16
    table = explorer.images_info.value
    assert "512 x 512" in table and "1000 x 500" in table and "16 ◀" in table
    assert "<td>457</td>" in table and "<td>2353</td>" in table  # docs/methodology.md section 2
    assert f"<td>{DEMO_TOKENS[4]}</td>" in table and f"<td>{DEMO_TOKENS[16]}</td>" in table
    explorer.upload.value = (upload_entry("bad.png", b"\x89PNG nothing"),)
    assert "cannot be read as an image" in html.unescape(explorer.images_info.value)


def test_notebook_runs_headlessly_without_an_engine(tmp_path):
    out = tmp_path / "explore.ipynb"
    outputs = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "-p", "max_model_len", "4096"],
        cwd=tmp_path,
        env={**os.environ, "KIT_OUTPUTS_DIR": str(outputs)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    mimes = [set(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("application/vnd.jupyter.widget-view+json" in m for m in mimes)
    assert not any(o.output_type == "error" for c in nb.cells for o in c.get("outputs", []))
    assert not outputs.exists()  # no engine, no session folder


# ----------------------------------------------------------------------------------------
# On the tiny model and real vLLM (one engine for the module)
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explorer(tmp_path_factory, smoke_model):
    params = ExploreParams(max_model_len=4096, max_output_len=8, history_size=3)
    explorer = Explorer(params, session_dir=tmp_path_factory.mktemp("explore-session"))
    explorer.engine_button.click()  # Start engine
    assert explorer.engine is not None, explorer.message.value
    yield explorer
    explorer.stop_engine()


def generate_ok(explorer: Explorer):
    answer = explorer.generate()
    assert answer is not None, explorer.message.value
    return answer


@pytest.mark.slow
def test_a_numerics_run_twice_on_one_engine_is_identical_at_every_position(explorer):
    """kit.numerics on this module's engine (the tiny model, vLLM's default dtype): the
    same prompts twice give the same tokens and the same logprobs, Δ = 0 everywhere."""
    from kit.numerics import run as numerics
    from kit.numerics.compare import compare_runs
    from kit.numerics.params import NumericsParams

    params = NumericsParams(prompts=["text-capital", "image-describe", "long-1k"], max_tokens=16)
    prepared = numerics.prepare(params)
    first = numerics.record(explorer.engine, params, prepared)
    second = numerics.record(explorer.engine, params, prepared)
    same = compare_runs(second.records, first.records)
    assert same.verdict == "identical", same
    assert same.max_abs_delta == 0 and same.positions > 16
    assert [r.generated for r in second.records] == [r.generated for r in first.records]


@pytest.mark.slow
def test_generate_streams_the_answer_and_shows_timing(explorer):
    set_inputs(explorer, prompt=TRICKY_PROMPT, max_output_len=8)
    shown = []
    explorer.answer.observe(lambda change: shown.append(change["new"]), names="value")
    engine = explorer.engine
    answer = generate_ok(explorer)
    result = answer.result

    assert answer.streamed and len(set(shown)) >= 3  # empty, partial, ..., final
    assert result.num_output_tokens == 8 and result.generated_text.strip()
    assert html.escape(result.generated_text) in explorer.answer.value
    assert result.num_image_tokens == [DEMO_TOKENS[4]] and result.num_text_tokens > 0
    assert result.num_prompt_tokens == result.expected_prompt_tokens  # what vLLM saw
    assert result.ttft_ms > 0 and result.output_tokens_per_s > 0
    metrics = explorer.metrics.value
    for text in (
        "time to first token (ms)",
        format_value(result.ttft_ms),
        f"{result.num_prompt_tokens} ({result.num_text_tokens} text + {DEMO_TOKENS[4]} image)",
        "output tokens",
        format_value(result.output_tokens_per_s),
    ):
        assert html.escape(text) in metrics, text
    assert "<b>this</b>" not in all_html(explorer)
    assert "Is &lt;b&gt;this&lt;/b&gt; a robot &amp;" in explorer.history_view.value
    assert explorer.engine is engine
    saved = (explorer.session_dir / "answers.jsonl").read_text().splitlines()
    assert json.loads(saved[-1])["result"]["question"] == TRICKY_PROMPT


@pytest.mark.slow
def test_num_crops_changes_per_request_without_restart(explorer):
    engine, llm = explorer.engine, explorer.engine.llm
    set_inputs(explorer, num_crops=16, max_output_len=4)
    result = generate_ok(explorer).result
    assert result.num_image_tokens == [DEMO_TOKENS[16]]
    assert result.num_prompt_tokens == result.expected_prompt_tokens
    assert explorer.engine is engine and engine.llm is llm


@pytest.mark.slow
def test_several_images_from_paths_and_uploads(explorer):
    upload = [upload_entry("photo.png", png_bytes(640, 480, 3))]
    set_inputs(explorer, paths="demo", upload=upload, prompt="What differs?", max_output_len=4)
    answer = generate_ok(explorer)
    assert answer.image_names == ["demo", "photo.png"]
    assert answer.result.image_sizes == [(512, 512), (640, 480)]
    assert answer.result.num_image_tokens == [757, 757]  # 640x480 at 4 crops: docs/methodology.md 2
    assert answer.result.num_prompt_tokens == answer.result.expected_prompt_tokens
    assert "<|image_2|>" in answer.result.prompt


@pytest.mark.slow
def test_bad_input_is_a_message_and_the_engine_keeps_running(explorer):
    engine, llm = explorer.engine, explorer.engine.llm
    cases = [
        ({"paths": ""}, "No image is given"),
        ({"paths": "", "prompt": "<|image_1|>\nWhat?"}, "has an image tag"),
        ({"upload": [upload_entry("notes.png", b"not a picture")]}, "cannot be read as an image"),
        ({"prompt": "word " * 5000}, "max_model_len of 4096"),
        ({"paths": "demo\ndemo\ndemo\ndemo\ndemo"}, "at most 4 per prompt"),
    ]
    before = len(explorer.history)
    for inputs, expected in cases:
        set_inputs(explorer, **inputs)
        assert explorer.generate() is None
        assert expected in html.unescape(explorer.message.value), explorer.message.value
        assert explorer.engine is engine and engine.llm is llm
    assert len(explorer.history) == before
    set_inputs(explorer, max_output_len=4)
    assert generate_ok(explorer).result.num_output_tokens == 4


@pytest.mark.slow
def test_changed_engine_setting_pauses_generate_until_restart(explorer):
    set_inputs(explorer, max_output_len=4)
    explorer.max_model_len.value = 8192
    assert explorer.generate() is None
    assert "press 'Restart engine'" in html.unescape(explorer.message.value)
    assert "max_model_len 4096 → 8192" in explorer.engine_status.value
    explorer.max_model_len.value = 4096  # set back: no restart needed
    assert "Changed:" not in explorer.engine_status.value
    generate_ok(explorer)


@pytest.mark.slow
def test_history_keeps_the_last_answers(explorer):
    while explorer.last_answer is None or explorer.last_answer.index < 4:
        set_inputs(explorer, max_output_len=2)
        generate_ok(explorer)
    last = explorer.last_answer.index
    assert [a.index for a in explorer.history] == [last - 2, last - 1, last]
    rows = explorer.history_rows()
    assert [row["#"] for row in rows] == [last, last - 1, last - 2]  # newest first
    table = explorer.history_view.value
    assert table.count("<tr>") == 4  # header + 3 answers
    for row in rows:
        assert format_value(row["TTFT (ms)"]) in table
    lines = Path(explorer.session_dir / "answers.jsonl").read_text().splitlines()
    assert len(lines) == last  # every answer is kept on disk
