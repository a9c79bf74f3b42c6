"""Bad input fails fast, before any engine starts, with a message naming the fix."""

import pytest

from kit.core.params import ParameterError
from kit.demo.params import DemoParams
from kit.runs.parameters import RunRequest, merge_parameters, preflight

from .conftest import REPO, run_kit


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


CASES = [
    (("-p", "image", "no/such/picture.png"), "image file 'no/such/picture.png' does not exist"),
    (("-p", "model", "/nowhere/Phi-3.5-vision-instruct"), "Parameter 'model'"),
    (("-p", "max_output_lenn", "5"), "did you mean 'max_output_len'"),
    (("-p", "max_output_len", "lots"), "must be an integer"),
    (("-y", "engine_args: {enable_prefix_cache: false}"), "enable_prefix_caching"),
    (("-p", "model", "phi35v-dummy"), "-p allow_dummy_weights true"),
    (("-y", "engine_args: {load_format: dummy}"), "dummy (random) weights"),
    (("-p", "scheduling", "v0"), "'scheduling' must be one of vendor, vllm"),
    (("-y", "engine_args: {max_num_batched_tokens: 8192}"), "conflicts with scheduling"),
]
IDS = [
    "missing-image",
    "missing-model",
    "unknown-name",
    "wrong-type",
    "unknown-engine-arg",
    "dummy-model",
    "dummy-load-format",
    "unknown-scheduling",
    "scheduling-conflict",
]


def _refusal(*args: str) -> str:
    """The runner's checks on demo parameters, in-process: the message they refuse with."""
    params, yaml_strings, i = [], [], 0
    while i < len(args):
        if args[i] == "-p":
            params.append((args[i + 1], args[i + 2]))
            i += 3
        else:
            yaml_strings.append(args[i + 1])
            i += 2
    request = RunRequest(
        "demo",
        DemoParams,
        files=[str(REPO / "params" / "smoke-demo.yaml")],
        yaml_strings=yaml_strings,
        params=params,
    )
    with pytest.raises(ParameterError) as caught:
        preflight(DemoParams, merge_parameters(request))
    return str(caught.value)


@pytest.mark.parametrize("params,expected", CASES, ids=IDS)
def test_refused_by_the_checks_before_an_engine(params, expected):
    assert expected in _refusal(*params)


@pytest.mark.parametrize("index", [0, 2, 5], ids=[IDS[0], IDS[2], IDS[5]])
def test_rejected_before_any_run_folder_or_engine(outputs, index):
    """As users type it: exit 2, one paragraph, no traceback, no run folder."""
    params, expected = CASES[index]
    proc = _run_demo(outputs, *params)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not outputs.exists() or not any(outputs.iterdir())


def test_unreadable_image(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    assert "cannot be read as an image" in _refusal("-p", "image", str(bad))


def test_unknown_notebook(outputs):
    proc = run_kit("run", "nope", env={"KIT_OUTPUTS_DIR": str(outputs)})
    assert proc.returncode == 2 and "Unknown notebook 'nope'" in proc.stderr


def test_checkpoint_folder_without_weights(tmp_path, smoke_model):
    folder = tmp_path / "half-downloaded"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((smoke_model / name).read_bytes())
    message = _refusal("-p", "model", str(folder))
    assert "no weight files" in message and "load_format: dummy" in message
