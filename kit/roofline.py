"""Roofline lower bounds: how fast could a device possibly be, from its datasheet peaks.

Decode reads every weight once per step, so a step cannot beat weight bytes / memory
bandwidth (KV-cache reads come on top, so this is a lower bound). Prefill needs about
2 x parameters x tokens FLOPs, so it cannot beat that / peak dense bf16 (attention FLOPs
come on top). Peaks come from params/references.yaml; a device with no recorded figures
yields None and a reason, never a guessed number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kit.references import References, load_references


@dataclass(frozen=True)
class DevicePeaks:
    """Datasheet peaks of one accelerator (decimal units: 1 GB = 1e9 B, 1 TFLOPS = 1e12)."""

    name: str
    memory_bandwidth_GBps: float
    bf16_dense_tflops: float
    memory_GB: float | None = None
    source: str | None = None


def _key(name: str) -> str:
    """Lookup key: case, spaces and punctuation ignored ("L40s" == "L40S", "H100-SXM")."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _peaks(name: str, d: Mapping[str, Any]) -> DevicePeaks:
    try:
        bw, tf = float(d["memory_bandwidth_GBps"]), float(d["bf16_dense_tflops"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"device {name!r} needs numeric memory_bandwidth_GBps and bf16_dense_tflops, "
            f"got {dict(d)!r}"
        ) from e
    mem = d.get("memory_GB")
    return DevicePeaks(name, bw, tf, None if mem is None else float(mem), d.get("source"))


def load_device_peaks(
    refs: References | None = None, extra: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, DevicePeaks]:
    """Device peaks from references.yaml, overridden/extended by ``extra`` (same fields)."""
    refs = refs if refs is not None else load_references()
    table = {name: _peaks(name, d) for name, d in refs.devices.items()}
    for name, d in (extra or {}).items():
        table[name] = _peaks(name, d)
    return table


def find_device(
    device: str, peaks: Mapping[str, DevicePeaks]
) -> tuple[DevicePeaks | None, str | None]:
    """(peaks, None) for a known device, (None, reason) otherwise."""
    wanted = _key(device)
    for name, p in peaks.items():
        if _key(name) == wanted:
            return p, None
    known = ", ".join(sorted(peaks)) or "none"
    return None, (
        f"no datasheet peaks recorded for device {device!r} (known: {known}); add its "
        "memory bandwidth and dense bf16 TFLOPS under `devices:` in params/references.yaml "
        "or pass them as extra peaks"
    )


def decode_bound_ms_per_token(weight_bytes: float, bandwidth_GBps: float) -> float:
    """Lower bound of one decode step, ms: all weights read once at peak bandwidth."""
    if bandwidth_GBps <= 0 or weight_bytes <= 0:
        raise ValueError("weight_bytes and bandwidth_GBps must be > 0")
    return weight_bytes / (bandwidth_GBps * 1e9) * 1000.0


def prefill_flops(num_params: float, tokens: int) -> float:
    """Dense forward FLOPs of a prefill: 2 x parameters x tokens (attention not counted)."""
    return 2.0 * num_params * tokens


def prefill_bound_s(num_params: float, tokens: int, tflops: float) -> float:
    """Lower bound of a prefill of ``tokens`` tokens, s, at peak dense bf16 throughput."""
    if tflops <= 0 or num_params <= 0 or tokens <= 0:
        raise ValueError("num_params, tokens and tflops must be > 0")
    return prefill_flops(num_params, tokens) / (tflops * 1e12)


def efficiency(measured: float | None, bound: float | None) -> float | None:
    """bound / measured for times (1.0 = at the roofline); None if either is missing.

    A value above 1 means the measurement beat the bound: check units or the peaks.
    """
    if measured is None or bound is None or measured <= 0:
        return None
    return bound / measured


@dataclass
class RooflineBounds:
    """Bounds for one device and scenario; values None (with ``reason``) if unknown."""

    device: str
    decode_ms_per_token: float | None
    prefill_s: float | None
    prefill_tflop: float
    reason: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def roofline_bounds(
    device: str,
    weight_bytes: float,
    num_params: float,
    prefill_tokens: int,
    peaks: Mapping[str, DevicePeaks] | None = None,
) -> RooflineBounds:
    """Decode and prefill lower bounds of a model on ``device``.

    ``prefill_tokens`` is all tokens prefilled together (input_len x batch when the whole
    batch prefills at once). ``peaks`` defaults to ``load_device_peaks()``.
    """
    table = peaks if peaks is not None else load_device_peaks()
    tflop = prefill_flops(num_params, prefill_tokens) / 1e12
    p, reason = find_device(device, table)
    if p is None:
        return RooflineBounds(device, None, None, tflop, reason=reason)
    return RooflineBounds(
        device=p.name,
        decode_ms_per_token=decode_bound_ms_per_token(weight_bytes, p.memory_bandwidth_GBps),
        prefill_s=prefill_bound_s(num_params, prefill_tokens, p.bf16_dense_tflops),
        prefill_tflop=tflop,
        source=p.source,
    )
