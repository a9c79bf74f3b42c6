"""Roofline lower bounds: how fast a device could possibly run a point, from datasheet peaks.

Two bounds, both lower bounds on time, so a measurement can approach them but never beat
them (docs/methodology.md, "Roofline"):

* decode step >= (language-model weight bytes + KV-cache bytes read) / memory bandwidth.
  The weights read every step are the decoder layers, the final norm and ``lm_head``; not
  the embedding table (a gather of a few rows) and not the image tower (prefill only).
  Each sequence's step reads its whole KV cache: 2 x layers x kv_heads x head_dim x dtype
  bytes per token of context, at the point's mean context (input_len + output_len / 2).
* prefill of a request >= FLOPs / peak dense bf16: 2 x (decoder-layer parameters) per
  prompt token, plus causal attention 2 x layers x tokens^2 x hidden, plus one ``lm_head``
  row per request (only the last position is sampled), plus the image tower for the
  request's views (CLIP ViT-L/14-336 up to ``layer_idx``, and the projector). When a
  batch's requests are prefilled in one engine step (chunked prefill off, not staggered),
  each request's measured prefill is that whole step, so the bound sums the batch.

Model figures come from config.json (so a dummy-weight folder works); device peaks from
params/references.yaml, matched by the names torch and nvidia-smi print. A device without
recorded peaks gives None and a reason, never a guessed number. An efficiency
(bound / measured) above 1 means the bound is wrong (peaks, figures or formula), and is
reported as such rather than as a result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kit.core.devices import device_key
from kit.models.family import ModelFamily
from kit.models.figures import ModelFigures
from kit.records.perf import Efficiency, PointShape, RooflineRecord
from kit.records.references import References, load_references


@dataclass(frozen=True)
class DevicePeaks:
    """Datasheet peaks of one accelerator (decimal units: 1 GB = 1e9 B, 1 TFLOPS = 1e12)."""

    name: str
    memory_bandwidth_GBps: float
    bf16_dense_tflops: float
    memory_GB: float | None = None
    source: str | None = None
    names: tuple[str, ...] = ()  # what torch / nvidia-smi print for this device


def _peaks(name: str, d: Mapping[str, Any]) -> DevicePeaks:
    try:
        bw, tf = float(d["memory_bandwidth_GBps"]), float(d["bf16_dense_tflops"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"device {name!r} needs numeric memory_bandwidth_GBps and bf16_dense_tflops, "
            f"got {dict(d)!r}"
        ) from e
    if not (math.isfinite(bw) and math.isfinite(tf) and bw > 0 and tf > 0):
        raise ValueError(f"device {name!r}: peaks must be positive numbers, got {bw}, {tf}")
    mem = d.get("memory_GB")
    names = tuple(str(n) for n in d.get("names") or ())
    return DevicePeaks(name, bw, tf, None if mem is None else float(mem), d.get("source"), names)


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
    """(peaks, None) for a known device name or alias, (None, reason) otherwise."""
    wanted = device_key(device)
    for p in peaks.values():
        if wanted in {device_key(p.name), *(device_key(n) for n in p.names)}:
            return p, None
    known = ", ".join(sorted(peaks)) or "none"
    return None, (
        f"no datasheet peaks recorded for device {device!r} (known: {known}); add its "
        "memory bandwidth and dense bf16 TFLOPS under `devices:` in params/references.yaml "
        "or pass them with -y 'device_peaks: {NAME: {memory_bandwidth_GBps: ..., "
        "bf16_dense_tflops: ...}}'"
    )


def formulas(family: ModelFamily) -> tuple[str, ...]:
    """The bounds' formulas, as the report states them, with the family's image tower."""
    return (
        "decode step (ms) >= (LM weight bytes read per step + sequences x KV bytes per token x "
        "mean context) / memory bandwidth; LM weight bytes = (decoder layers + final norm + "
        "lm_head) x dtype bytes (embedding table and image tower not read); KV bytes per token = "
        "2 x layers x kv_heads x head_dim x dtype bytes; mean context = input_len + "
        "max_output_len / 2.",
        "prefill (ms) >= FLOPs / peak dense bf16, FLOPs per request = 2 x decoder-layer "
        "parameters x tokens + 2 x layers x tokens^2 x hidden (causal attention) + 2 x lm_head "
        "parameters (last position) + image tower ("
        + family.tower_note
        + "); summed over the requests prefilled in the same engine step.",
        "efficiency = bound / measured: at most 1; above 1 the bound itself is wrong.",
    )


def bounds(
    figures: ModelFigures, shape: PointShape, device: str, peaks: Mapping[str, DevicePeaks]
) -> RooflineRecord:
    step_bytes = (
        figures.decode_weight_bytes
        + shape.decoding_together * figures.kv_bytes_per_token * shape.mean_context
    )
    per_request = figures.text_prefill_flops(shape.input_len) + figures.image_flops(
        shape.image_views
    )
    flops = per_request * shape.prefilled_together
    p, reason = find_device(device, peaks)
    prefill_tflop, decode_gb_per_step = flops / 1e12, step_bytes / 1e9
    if p is None:
        return RooflineRecord(
            device,
            None,
            None,
            reason=reason,
            prefill_tflop=prefill_tflop,
            decode_gb_per_step=decode_gb_per_step,
        )
    return RooflineRecord(
        device=p.name,
        decode_ms_per_token=step_bytes / (p.memory_bandwidth_GBps * 1e9) * 1000.0,
        prefill_ms=flops / (p.bf16_dense_tflops * 1e12) * 1000.0,
        source=p.source,
        prefill_tflop=prefill_tflop,
        decode_gb_per_step=decode_gb_per_step,
    )


def efficiency(measured: float | None, bound: float | None) -> Efficiency:
    if measured is None or bound is None or measured <= 0:
        return Efficiency(None)
    ratio = bound / measured
    if ratio > 1.0:
        return Efficiency(
            None,
            f"bound {bound:.3g} above measured {measured:.3g} (ratio {ratio:.2f}): the "
            "peaks, model figures or formula are wrong for this point, not the device fast",
        )
    return Efficiency(ratio)
