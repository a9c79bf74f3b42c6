"""A measured perf point turned into its results.json record, with what it is compared against.

Beside the point's own columns, the record holds the token-budget verdict on its scheduling
(how many steps vLLM 0.6 would have needed, so a batch staggered beyond that is named), the
vendor's rows of the same scenario with ratios and the warnings where that comparison
misleads (another image shape, scheduling or a staggered batch), what vLLM reported of the
lengths, a server point's load summary and histograms, and the roofline bounds with the
point's efficiency against them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from kit.engines.prometheus import merge_server_latencies
from kit.engines.types import Backend
from kit.models.figures import ModelFigures
from kit.models.registry import read_model_figures
from kit.models.tokens import PromptTokenCounter
from kit.perf.arrivals import summarize_load
from kit.perf.batches import budget_steps
from kit.perf.grid import parse_vision_shape
from kit.perf.params import PerfParams
from kit.perf.roofline import (
    DevicePeaks,
    bounds,
    efficiency,
    load_device_peaks,
)
from kit.perf.sweep import PointResult
from kit.records.caches import served_from_cache
from kit.records.engine import EngineRecord
from kit.records.perf import (
    PerfPointRecord,
    PointShape,
    ReferenceComparison,
    ScheduleRecord,
    ServedRecord,
)
from kit.records.references import load_references, match_references, ratios


def served_section(result: PointResult, params: PerfParams) -> ServedRecord | None:
    """What a server point adds: the client's load summary over all timed iterations
    (throughput, goodput, ITL) and the server's own histograms beside it."""
    streams = [c.stream for b in result.batches for c in b.completions if c.stream is not None]
    if not streams:
        return None
    wall = sum(b.wall_s for b in result.batches)
    summary = summarize_load(streams, wall, params.slo_ttft_ms, params.slo_tpot_ms)
    return ServedRecord(
        client=summary,
        server=merge_server_latencies([b.server for b in result.batches if b.server]),
        samples={  # for the distribution plots, ms
            "ttft_ms": [s.ttft_s * 1000 for s in streams if s.ttft_s is not None],
            "itl_ms": [gap * 1000 for s in streams for gap in s.itl_s],
        },
        slo={"ttft_ms": params.slo_ttft_ms, "tpot_ms": params.slo_tpot_ms},
    )


@dataclass
class RecordContext:
    """What every point record of a run is measured against."""

    device: str
    scheduling: str
    engine_config: EngineRecord
    references: Any
    peaks: dict[str, DevicePeaks]
    figures: ModelFigures | None
    views_per_request: int
    params: PerfParams | None = None  # the run's (SLOs for a server point's goodput)


def record_context(run: Any, engine: Backend, counter: PromptTokenCounter) -> RecordContext:
    """The device (parameter, else detected), references, peaks and model figures of a run;
    ``counter`` (the workload's) gives the image-encoder passes per request."""
    params: PerfParams = run.params
    views = sum(counter.image_views(width, height) for height, width in params.vision_shapes())
    return RecordContext(
        device=params.device or run.environment.accelerator_name,
        scheduling=params.scheduling,
        engine_config=engine.config,
        references=load_references(),
        peaks=load_device_peaks(extra=params.device_peaks),
        figures=read_model_figures(engine.model_path, engine.config.dtype),
        views_per_request=views,
        params=params,
    )


def scheduling_verdict(point: PerfPointRecord, engine_config: EngineRecord) -> ScheduleRecord:
    """The point's schedule with the token-budget verdict: ``budget_steps`` is what vLLM
    0.6 needed with every request waiting (one step for 4 x 8192 at a 32768-token budget,
    four for 31744 x 4); a batch that took more steps than that was staggered by something
    else (V1's front end, KV-cache room)."""
    schedule = point.schedule
    budget = budget_steps(point.batch_size, point.input_len, engine_config.max_num_batched_tokens)
    if engine_config.chunked_prefill is not False:
        budget = 1
    steps = schedule.scheduling_steps_max or 0
    return replace(
        schedule,
        budget_steps=budget,
        staggered_beyond_budget=bool(schedule.staggered and steps > budget),
    )


def comparison_warnings(
    point: PerfPointRecord,
    scheduling: str,
    vendor_shape: list[tuple[int, int]] | None = None,
) -> list[str]:
    """Why a comparison of this point with the vendor's rows may mislead (empty: it does
    not); ``point.schedule`` carries the token-budget verdict (scheduling_verdict)."""
    warnings = []
    shape = [(h, w) for h, w in point.input_vision_shape or []]
    if vendor_shape is not None and shape != vendor_shape:
        shapes = ";".join(f"{h},{w}" for h, w in shape) or "none"
        vendor = ";".join(f"{h},{w}" for h, w in vendor_shape)
        warnings.append(
            f"input_vision_shape {shapes} where the vendor used {vendor}: the image tokens "
            "and the image tower's work differ"
        )
    if scheduling != "vendor":
        warnings.append(
            f"scheduling: {scheduling}; the vendor's rows come from vLLM 0.6, which scheduled a "
            "batch together (rerun with -p scheduling vendor to compare like for like)"
        )
    if served_from_cache(point.caches):
        warnings.append(
            f"{point.caches.describe()}: TTFT and prefill measure a cache lookup, not the "
            "vendor's prefill (see the point's caches)"
        )
    if point.cut:
        warnings.append(f"{point.cut}: its numbers are over those")
    schedule = point.schedule
    if point.batch_size > 1 and schedule.staggered_beyond_budget:
        warnings.append(
            f"staggered batch: its requests were first scheduled in up to "
            f"{schedule.scheduling_steps_max} engine steps where the token budget needs "
            f"{schedule.budget_steps} ({schedule.scheduling_spread_ms_max or 0:.0f} ms apart), "
            "so prefill and TTFT do not measure the vendor's batch prefill"
        )
    return warnings


def point_shape(point: PerfPointRecord, context: RecordContext) -> PointShape:
    """How many requests one measured prefill and one decode step cover, for the bounds.

    Without chunked prefill every request first scheduled in a step is prefilled whole in
    it, and its measured prefill is that step: the bound may count the step's requests
    (at least the fewest any step held). Otherwise only the request's own tokens count.
    """
    config = context.engine_config
    prefilled = 1
    if config.chunked_prefill is False and not point.schedule.staggered_beyond_budget:
        budget = config.max_num_batched_tokens or point.input_len
        per_step = min(point.batch_size, max(1, budget // point.input_len))
        steps = math.ceil(point.batch_size / per_step)
        prefilled = point.batch_size - per_step * (steps - 1)  # the last step holds the fewest
    decoding = point.batch_size
    capacity, block = config.kv_cache_tokens, config.block_size or 1
    if capacity:  # sequences that fit the KV cache together decode together
        per_request = math.ceil((point.input_len + point.max_output_len) / block) * block
        decoding = max(1, min(point.batch_size, capacity // per_request))
    return PointShape(
        input_len=point.input_len,
        max_output_len=point.max_output_len,
        batch_size=point.batch_size,
        image_views=context.views_per_request,
        prefilled_together=prefilled,
        decoding_together=decoding,
    )


def point_record(result: PointResult, context: RecordContext) -> PerfPointRecord:
    """One entry of results.json ``perf.points``: parameters, both column sets, how the
    batches were scheduled, the vendor rows with ratios (and warnings where the comparison
    misleads), the request timeline and roofline bounds."""
    point = replace(result.point, schedule=scheduling_verdict(result.point, context.engine_config))
    measured = point.vendor.metrics()
    vendor_shape = context.references.perf_command.get("input_vision_shape")
    warnings = comparison_warnings(
        point,
        context.scheduling,
        None if vendor_shape is None else parse_vision_shape(vendor_shape),
    )
    references = tuple(
        ReferenceComparison.of_row(row, ratios(measured, row), warnings)
        for row in match_references(point.params, context.references)
    )
    timings = [t for r in result.timed for t in r.timings]
    point = replace(
        point,
        references=references,
        timeline=tuple(result.timeline),
        served=served_section(result, context.params or PerfParams()),
        observed={  # what vLLM reported, across all timed requests
            "prompt_tokens": sorted({t.num_prompt_tokens for t in timings}),
            "output_tokens": sorted({t.num_output_tokens for t in timings}),
        },
    )
    if context.figures is None:
        return point
    shape = point_shape(point, context)
    bound = bounds(context.figures, shape, context.device, context.peaks)
    roofline = replace(
        bound,
        shape=shape,
        decode_efficiency=efficiency(measured["decode_ms_per_token"], bound.decode_ms_per_token),
        prefill_efficiency=efficiency(measured["prefill_ms"], bound.prefill_ms),
    )
    return replace(point, roofline=roofline)
