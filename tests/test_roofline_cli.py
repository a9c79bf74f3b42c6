"""``python -m kit roofline``: every full-size dummy's bounds on a device, without an engine.

The command's numbers must be the perf notebook's: each is checked against
``roofline.bounds`` on the shape a run of the same point records (``point_shape``, vendor
scheduling), with the image-encoder passes counted by the family's processor where it loads
here (Qwen2-VL's needs torchvision: text only, with a note).
"""

from __future__ import annotations

import json

import pytest

from kit.models.registry import NAMED_MODELS, family_for_model, read_model_figures, resolve_model
from kit.models.tokens import PromptTokenCounter
from kit.perf.roofline import bounds, load_device_peaks
from kit.records.perf import PointShape
from tests.conftest import kit_in_process

H100 = "NVIDIA H100 80GB HBM3"
DUMMIES = sorted(name for name, model in NAMED_MODELS.items() if model.kind == "dummy")


def roofline(*args: str) -> dict:
    proc = kit_in_process("roofline", *args, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def expected_views(model_path: str, crops: int = 4) -> int | None:
    """One 1024x1024 image's encoder passes, as the perf notebook counts them; None where
    the family's processor cannot load on this machine."""
    counter = PromptTokenCounter(model_path, family_for_model(model_path), crops)
    try:
        return counter.image_views(1024, 1024)
    except ImportError:
        return None


@pytest.mark.parametrize("name", DUMMIES)
def test_every_dummy_gives_the_notebooks_bounds(name):
    out = roofline(name, "--device", H100)
    path = resolve_model(name)
    views = expected_views(path)
    if views is None:  # counted text only, and said so
        assert "processor cannot load here" in out["note"]
        views = 0
    else:
        assert views > 0 and out["note"] is None
    shape = PointShape(8192, 1024, 1, views, prefilled_together=1, decoding_together=1)
    assert PointShape.of(out["shape"]) == shape
    [record] = out["roofline"]
    expected = bounds(read_model_figures(path), shape, H100, load_device_peaks())
    assert record["device"] == expected.device == "H100 SXM"
    assert record["prefill_ms"] > 0 and record["decode_ms_per_token"] > 0
    for key in ("prefill_ms", "decode_ms_per_token", "prefill_tflop", "decode_gb_per_step"):
        assert record[key] == getattr(expected, key), key
    assert out["figures"]["kv_bytes_per_token"] == read_model_figures(path).kv_bytes_per_token


def test_a_batch_prefilled_in_one_step_sums_its_requests():
    """Vendor scheduling: 4 x 8192 tokens fit one 32768-token step, as the notebook's shape."""
    one = roofline("phi35v-dummy", "--device", H100, "--image", "none")
    four = roofline("phi35v-dummy", "--device", H100, "--image", "none", "--batch-size", "4")
    assert four["shape"]["prefilled_together"] == four["shape"]["decoding_together"] == 4
    assert four["shape"]["image_views"] == 0
    assert four["roofline"][0]["prefill_ms"] == pytest.approx(4 * one["roofline"][0]["prefill_ms"])


def test_text_table_and_every_device_by_default():
    proc = kit_in_process("roofline", "phi35v-dummy")
    assert proc.returncode == 0, proc.stderr
    for text in ("prefill >= ms", "decode >= ms/token", "H100 SXM", "L40S", "KV 393,216 bytes"):
        assert text in proc.stdout
    assert len(roofline("phi35v-dummy")["roofline"]) == len(load_device_peaks())


def test_unknown_device_gives_the_reason():
    proc = kit_in_process("roofline", "phi35v-dummy", "--device", "Imaginary GPU 9000")
    assert proc.returncode == 2
    assert "no datasheet peaks recorded for device 'Imaginary GPU 9000'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("/no/such/checkpoint",), "folder '/no/such/checkpoint' does not exist"),
        (("phi35v-dummy", "--image", "1024"), "is not WIDTHxHEIGHT"),
        (("phi35v-dummy", "--batch-size", "0"), "--batch-size must be a positive integer"),
    ],
)
def test_bad_input_exits_2_with_one_paragraph(args, message):
    proc = kit_in_process("roofline", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
