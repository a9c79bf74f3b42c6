"""Bad input fails fast, before any engine starts, with a message naming the fix."""

import pytest

from .conftest import run_kit


def _run_demo(outputs, *params):
    proc = run_kit(
        "run",
        "demo",
        "-f",
        "params/smoke-demo.yaml",
        *params,
        env={"KIT_OUTPUTS_DIR": str(outputs)},
        timeout=300,
    )
    return proc


@pytest.mark.parametrize(
    "params,expected",
    [
        (("-p", "image", "no/such/picture.png"), "image file 'no/such/picture.png' does not exist"),
        (("-p", "model", "/nowhere/Phi-3.5-vision-instruct"), "Parameter 'model'"),
        (("-p", "max_output_lenn", "5"), "did you mean 'max_output_len'"),
        (("-p", "max_output_len", "lots"), "must be an integer"),
        (("-y", "engine_args: {enable_prefix_cache: false}"), "enable_prefix_caching"),
        (("-p", "model", "phi35v-dummy"), "-p allow_dummy_weights true"),
        (("-y", "engine_args: {load_format: dummy}"), "dummy (random) weights"),
        (("-p", "scheduling", "v0"), "'scheduling' must be one of vendor, vllm"),
        (("-y", "engine_args: {max_num_batched_tokens: 8192}"), "conflicts with scheduling"),
    ],
    ids=[
        "missing-image",
        "missing-model",
        "unknown-name",
        "wrong-type",
        "unknown-engine-arg",
        "dummy-model",
        "dummy-load-format",
        "unknown-scheduling",
        "scheduling-conflict",
    ],
)
def test_rejected_before_any_run_folder_or_engine(outputs, params, expected):
    proc = _run_demo(outputs, *params)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not outputs.exists() or not any(outputs.iterdir())


def test_unreadable_image(outputs, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    proc = _run_demo(outputs, "-p", "image", str(bad))
    assert proc.returncode == 2
    assert "cannot be read as an image" in proc.stderr


def test_unknown_notebook(outputs):
    proc = run_kit("run", "nope", env={"KIT_OUTPUTS_DIR": str(outputs)})
    assert proc.returncode == 2 and "Unknown notebook 'nope'" in proc.stderr


def test_checkpoint_folder_without_weights(outputs, tmp_path, smoke_model):
    folder = tmp_path / "half-downloaded"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((smoke_model / name).read_bytes())
    proc = _run_demo(outputs, "-p", "model", str(folder))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no weight files" in proc.stderr and "load_format: dummy" in proc.stderr
    assert "Traceback" not in proc.stderr
