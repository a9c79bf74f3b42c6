"""``model: phi35v-dummy``: the full-size Phi-3.5-vision architecture with random weights.

One engine start of the real folder on the CPU, cut to 2 of its 32 decoder layers (40 s
here, 66 s whole), and one short point.
The point is text-only: on a CPU without AVX-512, vLLM runs the CLIP tower's bf16 matmuls
through torch's slow path (a single 336x336 image took 267 s to prefill here), while the
language model runs in a few seconds. Image prompts are covered by the tiny model.
"""

import json

import pytest

from kit.models.phi3v.tiny import ensure_full_size_model

from .conftest import kit_in_process
from .roofline_checks import check_roofline_bounds, recorded_device


def test_folder_has_the_real_dimensions_and_no_weights():
    folder = ensure_full_size_model()
    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["intermediate_size"]) == (3072, 8192)
    assert config["num_hidden_layers"] == config["num_attention_heads"] == 32
    assert (config["num_key_value_heads"], config["vocab_size"]) == (32, 32064)
    assert config["max_position_embeddings"] == 131072
    assert config["original_max_position_embeddings"] == 4096
    assert config["img_processor"]["layer_idx"] == -2 and config["embd_layer"]["use_hd_transform"]
    assert config["torch_dtype"] == "bfloat16" and config["kit_dummy_weights"] is True
    assert len(config["rope_scaling"]["long_factor"]) == 48
    assert not list(folder.glob("*.safetensors"))


@pytest.fixture(scope="module")
def dummy_run(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    proc = kit_in_process(
        "run",
        "perf",
        *("-p", "model", "phi35v-dummy", "-p", "input_vision_shape", "none"),
        *("-p", "input_len", "48", "-p", "max_output_len", "4", "-p", "batch_size", "1"),
        *("-p", "iterations", "1", "-p", "warmup", "0", "-p", "ttft_probe", "false"),
        *("-p", "max_model_len", "512", "-p", "label", "dummy-cpu"),
        # CPU: the KV cache in bytes (a share of RAM would have to cover the 8 GB of weights),
        # and 2 of the 32 decoder layers: vLLM's dummy init of all 4.1 B parameters is 26 s
        # of this 2-core suite. The folder, its config and the roofline stay full size;
        # the full engine runs on a GPU (docs/gpu.md).
        *(
            "-y",
            "engine_args: {kv_cache_memory_bytes: 1073741824, "
            "hf_overrides: {num_hidden_layers: 2}}",
        ),
        env={"KIT_OUTPUTS_DIR": str(outputs)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = outputs.glob("*-perf-*")
    return folder, json.loads((folder / "results.json").read_text())


@pytest.mark.slow
def test_the_full_size_dummy_folder_runs_a_point(dummy_run):
    _, results = dummy_run
    engine = results["engine"]
    assert engine["weights"] == "dummy" and engine["load_format"] == "dummy"
    assert engine["weights_note"] == "weights: dummy (random) — speed and memory only"
    assert engine["kv_cache_tokens"] > 0
    (point,) = results["perf"]["points"]
    assert point["observed"] == {"prompt_tokens": [48], "output_tokens": [4]}
    assert point["vendor"]["tps"] > 0 and point["vendor"]["prefill_ms"] > 0


@pytest.mark.slow
def test_roofline_figures_come_from_the_config(dummy_run):
    _, results = dummy_run
    (point,) = results["perf"]["points"]
    roofline = point["roofline"]
    assert roofline["shape"]["image_views"] == 0
    assert roofline["decode_gb_per_step"] == pytest.approx(
        (7_445_157_888 + 393_216 * (48 + 4 / 2)) / 1e9
    )
    check_roofline_bounds(roofline, *recorded_device(results))  # CPU: none, and why


@pytest.mark.slow
def test_reports_say_the_weights_are_random(dummy_run):
    folder, _ = dummy_run
    for name in ("report.html", "report.md"):
        assert "weights: dummy (random) — speed and memory only" in (folder / name).read_text()
