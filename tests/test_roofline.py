"""Roofline bounds: device names as torch prints them, model figures from config, formulas.

Expected values are worked out by hand in the comments (Phi-3.5-vision-instruct's real
dimensions: hidden 3072, 32 layers, 32 heads and KV heads, head_dim 96, intermediate 8192,
vocab 32064, CLIP ViT-L/14-336 up to layer_idx -2). No engine is started.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from kit.models.figures import model_figures
from kit.models.phi3v.family import PHI3V
from kit.models.phi3v.tiny import full_size_config
from kit.models.phi3v.vision import clip_layer_params, clip_layers_built
from kit.perf.point_records import RecordContext, point_shape, scheduling_verdict
from kit.perf.roofline import (
    PointShape,
    bounds,
    efficiency,
    find_device,
    load_device_peaks,
)
from kit.records.engine import EngineRecord
from kit.records.perf import PerfPointRecord, ScheduleRecord

approx = pytest.approx

# (what torch.cuda.get_device_name / nvidia-smi print, the references.yaml entry)
DEVICE_NAMES = [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB"),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA A10G", "A10G"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("AMD Instinct MI300X", "MI300X"),
    ("L40s", "L40S"),  # the vendor table's spelling
    ("h200", "H200"),  # a -p device value
]


@pytest.mark.parametrize(("printed", "entry"), DEVICE_NAMES)
def test_device_names_as_printed_find_their_datasheet(printed, entry):
    peaks, reason = find_device(printed, load_device_peaks())
    assert reason is None, reason
    assert peaks.name == entry


def test_similar_names_do_not_cross_match():
    peaks = load_device_peaks()
    assert find_device("NVIDIA H100 PCIe", peaks)[0].memory_bandwidth_GBps == 2000
    assert find_device("NVIDIA H100 80GB HBM3", peaks)[0].memory_bandwidth_GBps == 3350
    assert find_device("NVIDIA A100-SXM4-40GB", peaks)[0].memory_bandwidth_GBps == 1555
    for unknown in ("NVIDIA H100", "S60", "CPU", "Intel(R) Xeon(R) Platinum"):
        p, reason = find_device(unknown, peaks)
        assert p is None and unknown in reason and "device_peaks" in reason


def test_every_peak_entry_is_positive_and_cited():
    for name, p in load_device_peaks().items():
        assert p.memory_bandwidth_GBps > 0 and p.bf16_dense_tflops > 0, name
        assert p.source and p.names, name


def test_extra_peaks_extend_and_bad_ones_are_refused():
    peaks = load_device_peaks(
        extra={"S60": {"memory_bandwidth_GBps": 1000, "bf16_dense_tflops": 100}}
    )
    assert find_device("s60", peaks)[0].bf16_dense_tflops == 100
    with pytest.raises(ValueError, match="bf16_dense_tflops"):
        load_device_peaks(extra={"bad": {"memory_bandwidth_GBps": 1}})
    with pytest.raises(ValueError, match="positive"):
        load_device_peaks(extra={"bad": {"memory_bandwidth_GBps": 1, "bf16_dense_tflops": 0}})


@pytest.fixture(scope="module")
def phi35v():
    config = full_size_config({"<s>": 1, "<|endoftext|>": 3})
    return model_figures(config, "bfloat16", PHI3V.vision_tower(config))


def test_full_size_figures_from_config(phi35v):
    # decoder layer: qkv 3072*(32+2*32)*96 = 28,311,552; o 9,437,184;
    # gate_up + down 3*3072*8192 = 75,497,472; two norms 6,144 -> 113,252,352
    assert phi35v.layer_params == 113_252_352
    assert phi35v.decoder_params == 32 * 113_252_352 + 3072
    assert phi35v.lm_head_params == phi35v.embedding_params == 32064 * 3072
    # read per decode step: decoder + lm_head, bf16: (3,624,078,336 + 98,500,608) * 2
    assert phi35v.decode_weight_bytes == 7_445_157_888
    assert phi35v.kv_bytes_per_token == 2 * 32 * 32 * 96 * 2  # 393,216
    assert phi35v.vision.shown["clip_layers"] == 23  # layer_idx -2 of 24
    # ~4.15B parameters in the published checkpoint (which keeps all 24 CLIP layers)
    assert phi35v.num_params + clip_layer_params() == approx(4.15e9, rel=0.01)
    assert clip_layers_built(0) == 1 and clip_layers_built(-1) == 24


def test_decode_and_prefill_bounds_on_l40s(phi35v):
    shape = PointShape(8192, 1024, 1, image_views=5, prefilled_together=1, decoding_together=1)
    b = bounds(phi35v, shape, "L40s", load_device_peaks())
    # (7,445,157,888 + 393,216 * (8192 + 512)) B / 864e9 B/s = 12.578 ms
    assert b.decode_ms_per_token == approx(12.578, abs=1e-3)
    # text: 2 * (3,624,078,336 - 65*3072) * 8192 + 2 * 32 * 8192^2 * 3072 + 2 * 98,500,608
    text = 2 * (3_624_078_336 - 65 * 3072) * 8192 + 2 * 32 * 8192**2 * 3072 + 2 * 98_500_608
    assert b.prefill_tflop == approx((text + phi35v.image_flops(5)) / 1e12)
    assert b.prefill_ms == approx(b.prefill_tflop * 1e12 / 362e12 * 1000)
    # the vendor measured 22.34 ms/token and 802.93 ms: both slower than the bounds
    assert 0 < efficiency(22.34, b.decode_ms_per_token).value < 1
    assert 0 < efficiency(802.93, b.prefill_ms).value < 1


def test_batch_bounds_scale_with_what_a_step_holds(phi35v):
    peaks = load_device_peaks()
    one = bounds(phi35v, PointShape(8192, 1024, 4, 5, 1, 1), "H100 SXM", peaks)
    four = bounds(phi35v, PointShape(8192, 1024, 4, 5, 4, 4), "H100 SXM", peaks)
    assert four.prefill_ms == approx(4 * one.prefill_ms)
    # four sequences read four KV caches per step, the weights once
    kv = 393_216 * (8192 + 512)
    assert (four.decode_gb_per_step - one.decode_gb_per_step) * 1e9 == approx(3 * kv)


def test_image_views_follow_the_hd_transform():
    # 1024x1024 at num_crops 4 -> 672x672 canvas -> 2x2 crops + 1 global = 5 views
    assert PHI3V.image_views(None, 1024, 1024, 4) == 5
    # 336x336 at num_crops 4 -> also scaled to 672x672 -> 5; at 1 -> 1 crop + 1 = 2
    assert PHI3V.image_views(None, 336, 336, 4) == 5
    assert PHI3V.image_views(None, 336, 336, 1) == 2
    assert PHI3V.image_views(None, 1024, 1024, 1) == 2


def test_efficiency_above_one_is_an_error_not_a_result():
    assert efficiency(2.0, 1.0).value == approx(0.5)
    assert efficiency(None, 1.0).value is None and efficiency(2.0, None).value is None
    wrong = efficiency(1.0, 2.0)
    assert wrong.value is None and "above measured" in wrong.error


def _context(config):
    return RecordContext("H100 SXM", "vendor", config, None, {}, None, views_per_request=5)


def _point(batch, input_len, staggered_steps):
    schedule = ScheduleRecord(
        staggered_iterations=int(staggered_steps > 1),
        unknown_iterations=0,
        probe_staggered=False,
        arrival_spread_ms_max=0.0,
        scheduling_spread_ms_max=0.0,
        scheduling_steps_max=staggered_steps,
        staggered=staggered_steps > 1,
    )
    params = {"input_len": input_len, "max_output_len": 1024, "batch_size": batch}
    return PerfPointRecord(params=params, schedule=schedule)


VENDOR = EngineRecord(chunked_prefill=False, max_num_batched_tokens=32768, kv_cache_tokens=163_072)


def test_point_shape_counts_the_requests_of_one_prefill_step():
    # 4 x 8192 in one step: each measured prefill is the whole step
    point = _point(4, 8192, 1)
    verdict = scheduling_verdict(point, VENDOR)
    assert (verdict.budget_steps, verdict.staggered_beyond_budget) == (1, False)
    assert point_shape(replace(point, schedule=verdict), _context(VENDOR)).prefilled_together == 4
    # 31744 x 4: one request per step, as the 32768-token budget allows
    point = _point(4, 31744, 4)
    verdict = scheduling_verdict(point, VENDOR)
    assert (verdict.budget_steps, verdict.staggered_beyond_budget) == (4, False)
    shape = point_shape(replace(point, schedule=verdict), _context(VENDOR))
    assert shape.prefilled_together == 1
    # KV: 163,072 tokens hold 4 sequences of 32,768 -> all four decode together
    assert shape.decoding_together == 4


def test_point_shape_is_conservative_when_staggered_or_chunked():
    point = _point(4, 8192, 4)  # V1 front end: one request per step
    verdict = scheduling_verdict(point, VENDOR)
    assert verdict.staggered_beyond_budget is True
    assert point_shape(replace(point, schedule=verdict), _context(VENDOR)).prefilled_together == 1
    chunked = replace(VENDOR, chunked_prefill=True)
    point = _point(4, 8192, 1)
    verdict = scheduling_verdict(point, chunked)
    assert point_shape(replace(point, schedule=verdict), _context(chunked)).prefilled_together == 1
    # a KV cache of 70,000 tokens holds two 32,768-token sequences
    small = replace(VENDOR, kv_cache_tokens=70_000, block_size=64)
    shape = point_shape(replace(_point(4, 31744, 4), schedule=verdict), _context(small))
    assert shape.decoding_together == 2
