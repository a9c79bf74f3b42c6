"""Shared by the perf tests: the roofline bounds a run must record for the device it ran on,
derived from the device it recorded, so the same test holds on a CPU (no datasheet peaks:
no bounds, and why) and on a GPU with recorded peaks (bounds from bytes and FLOPs)."""

from __future__ import annotations

import pytest

from kit.perf.roofline import DevicePeaks, find_device, load_device_peaks


def recorded_device(results: dict) -> tuple[str, DevicePeaks | None]:
    """The device the run recorded, and its datasheet peaks from params/references.yaml
    (None for a device without recorded peaks, such as a CPU)."""
    name = results["environment"]["accelerator"]["name"]
    return name, find_device(name, load_device_peaks())[0]


def check_roofline_bounds(roofline: dict, device: str, peaks: DevicePeaks | None) -> None:
    """Bounds where the device has datasheet peaks (bytes / bandwidth, FLOPs / peak), else
    none, with the reason."""
    if peaks is None:
        assert roofline["decode_ms_per_token"] is None and roofline["prefill_ms"] is None
        assert roofline["reason"].startswith(f"no datasheet peaks recorded for device {device!r}")
        return
    assert roofline["reason"] is None and roofline["device"] == peaks.name
    bandwidth, flops = peaks.memory_bandwidth_GBps * 1e9, peaks.bf16_dense_tflops * 1e12
    assert roofline["decode_ms_per_token"] == pytest.approx(
        roofline["decode_gb_per_step"] * 1e9 / bandwidth * 1000
    )
    assert roofline["prefill_ms"] == pytest.approx(roofline["prefill_tflop"] * 1e12 / flops * 1000)
