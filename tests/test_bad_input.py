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
    ],
    ids=["missing-image", "missing-model", "unknown-name", "wrong-type", "unknown-engine-arg"],
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
