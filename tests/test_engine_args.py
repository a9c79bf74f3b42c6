"""Engine arguments: device defaults in one place, pass-through keys checked against vLLM."""

import pytest

from kit.core.params import ParameterError
from kit.engines.devices import device_defaults
from kit.engines.params import (
    EngineParams,
    check_engine_args,
    engine_kwargs,
    valid_engine_arg_names,
)
from kit.models.phi3v.family import PHI3V
from kit.models.registry import resolve_model


def test_cpu_defaults_and_stats_always_on():
    defaults = device_defaults("cpu")
    kwargs = engine_kwargs(EngineParams(num_crops=16, limit_images=2), "/m", defaults, PHI3V)
    assert kwargs["gpu_memory_utilization"] == 0.3
    assert kwargs["enforce_eager"] is True
    assert kwargs["disable_log_stats"] is False
    assert kwargs["mm_processor_kwargs"] == {"num_crops": 16}
    assert kwargs["limit_mm_per_prompt"] == {"image": 2}
    assert defaults.environment["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


def test_explicit_values_win_over_device_defaults():
    params = EngineParams(gpu_memory_utilization=0.5, enforce_eager=False, block_size=64)
    kwargs = engine_kwargs(params, "/m", device_defaults("cuda"), PHI3V)
    assert (kwargs["gpu_memory_utilization"], kwargs["enforce_eager"]) == (0.5, False)
    assert kwargs["block_size"] == 64


def test_engine_args_pass_through():
    params = EngineParams(engine_args={"enable_prefix_caching": False})
    assert (
        engine_kwargs(params, "/m", device_defaults("cpu"), PHI3V)["enable_prefix_caching"] is False
    )


def test_installed_vllm_knows_the_args_the_kit_uses():
    names = valid_engine_arg_names()
    for name in ("max_model_len", "block_size", "mm_processor_kwargs", "mm_processor_cache_gb"):
        assert name in names
    check_engine_args({"enable_prefix_caching": False, "mm_processor_cache_gb": 0}, names)


def test_unknown_engine_arg_names_closest_valid_ones():
    with pytest.raises(ParameterError) as info:
        check_engine_args({"enable_prefix_cache": True}, ["enable_prefix_caching", "seed"])
    assert "enable_prefix_caching" in str(info.value)


def test_kit_owned_args_point_to_the_notebook_parameter():
    with pytest.raises(ParameterError, match="num_crops"):
        check_engine_args({"mm_processor_kwargs": {"num_crops": 16}}, [])


def test_model_resolution(tmp_path):
    assert resolve_model("microsoft/Phi-3.5-vision-instruct") == "microsoft/Phi-3.5-vision-instruct"
    with pytest.raises(ParameterError, match="does not exist"):
        resolve_model(str(tmp_path / "missing" / "Phi-3.5-vision-instruct"))
    with pytest.raises(ParameterError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_changed_remote_code_is_refused_before_the_engine(tmp_path, smoke_model):
    import json
    import shutil

    from kit.records.manifest import remote_code

    folder = tmp_path / "model"
    shutil.copytree(smoke_model, folder)
    manifest = {"kit_manifest": 1, "kind": "model", "remote_code": remote_code(folder)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    EngineParams(model=str(folder)).preflight()  # unchanged: accepted
    (folder / "processing_phi3_v.py").write_text("import os  # tampered\n")
    with pytest.raises(ParameterError, match="processing_phi3_v.py"):
        EngineParams(model=str(folder)).preflight()
    EngineParams(model=str(folder), allow_changed_remote_code=True).preflight()


GIB = 1 << 30


def test_a_model_whose_weights_exceed_the_cpu_share_is_refused_with_the_setting_that_fits():
    from kit.engines.memory import NodeMemory, cpu_memory_problem

    memory = NodeMemory(total=24 * GIB, available=20 * GIB)
    weights, kv = int(7.7 * GIB), int(1.5 * GIB)  # phi35v-dummy in bf16, 4096 tokens
    message = cpu_memory_problem(weights, kv, 0.1, memory)
    assert message.startswith(
        "Parameter 'gpu_memory_utilization': on CPU vLLM takes 0.1 of node 0's 24.00 GiB = "
        "2.40 GiB for the model, which needs 10.20 GiB (weights 7.70 GiB (config.json)"
    )
    assert message.endswith("Fix: -p gpu_memory_utilization 0.43, or a smaller max_model_len.")
    assert cpu_memory_problem(weights, kv, 0.43, memory) is None  # the fix fits
    small = NodeMemory(total=8 * GIB, available=6 * GIB)
    assert "too little for it" in cpu_memory_problem(weights, kv, 0.3, small)
    # the tiny model at the smoke files' 0.1 of an 8 GiB machine: vLLM may manage, no refusal
    assert cpu_memory_problem(int(0.09 * GIB), 8 << 20, 0.1, small) is None


def test_the_memory_refusal_comes_before_any_folder_or_engine(tmp_path, monkeypatch):
    """-p model phi35v-dummy with the smoke file's gpu_memory_utilization 0.1 on a 24 GiB
    machine (the figures vLLM would read here, whatever this machine has)."""
    from kit.engines import params as engine_params
    from kit.engines.memory import NodeMemory

    from .conftest import kit_in_process

    monkeypatch.setattr(engine_params, "node_memory", lambda: NodeMemory(24 * GIB, 20 * GIB))
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    outputs = tmp_path / "outputs"
    proc = kit_in_process(
        "run", "perf", "-f", "params/smoke-perf.yaml", "-p", "model", "phi35v-dummy",
        env={"KIT_OUTPUTS_DIR": str(outputs), "KIT_DEVICE": "cpu"},  # the check is CPU's
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    (paragraph,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "'gpu_memory_utilization': on CPU vLLM takes 0.1 of node 0's 24.00 GiB" in paragraph
    assert "Fix: -p gpu_memory_utilization 0." in paragraph
    assert not outputs.exists() or not any(outputs.iterdir())
