"""The performance notebook's engine side: each planned point run, its batches timed and checked.

One point = ``warmup`` untimed batches (max_tokens=1, as the vendor's warm-up), an
optional ``max_tokens=1`` probe batch for the vendor-style TTFT, then ``iterations``
timed batches of ``batch_size`` requests with ignore_eos and exactly ``max_output_len``
output tokens. Every batch uses fresh prompts and images. Prompt and output lengths are
verified from what vLLM returns; a mismatch fails the run (a server that does not honour
ignore_eos has its output lengths recorded instead). A load point of a server sweep warms up
with one wave of its concurrency, has no probe, and sends its timed requests at their arrival
offsets. A point Ctrl-C stops after some timed iterations is recorded with those, marked
``cut``, before the interrupt goes on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kit.core.pauses import pause_point
from kit.engines.types import Backend, Batch, Completion, GenSampling, Load
from kit.perf.arrivals import arrival_offsets
from kit.perf.batches import RunMeasurement, request_timeline, summarize_schedules
from kit.perf.columns import standard_columns, vendor_columns
from kit.perf.grid import kv_cache_warning
from kit.perf.params import PerfParams, PlannedPoint
from kit.perf.workload import BenchRequest, WorkloadBuilder
from kit.records.caches import cache_use, served_from_cache
from kit.records.perf import PerfPointRecord, RequestSpan

PHASE_WARMUP, PHASE_PROBE, PHASE_TIMED = 1, 2, 3


def kv_warnings(engine: Backend, points: list[PlannedPoint]) -> list[str]:
    capacity = engine.config.kv_cache_tokens
    if capacity is None:
        return []
    warnings = []
    for p in points:
        text = kv_cache_warning(
            p.batch_size, p.input_len, p.max_output_len, capacity, engine.config.block_size
        )
        if text:
            warnings.append(f"point {p.index}: {text}")
    return warnings


class LengthMismatch(RuntimeError):
    """vLLM saw a different prompt or output length than the kit asked for."""


def verify_lengths(
    completions: list[Completion],
    requests: list[BenchRequest],
    max_tokens: int,
    exact_output: bool = True,
) -> None:
    """Every request answered with exactly the lengths asked for; ``exact_output`` False:
    a server that does not honour ignore_eos (its output lengths are recorded instead)."""
    for completion, request in zip(completions, requests, strict=True):
        if completion.error:
            raise RequestFailed(f"a request failed: {completion.error}")
        got = completion.prompt_tokens
        if got != request.num_tokens:
            raise LengthMismatch(
                f"vLLM counted {got} prompt tokens where the kit built {request.num_tokens}: "
                "the prompt-length calculation does not match this model's processor (on a "
                "running server: it counted this prompt otherwise than the calibration "
                "request before the first point, so its count is not the same for every "
                "prompt of a length)."
            )
        produced = completion.output_tokens
        if exact_output and produced != max_tokens:
            raise LengthMismatch(f"a request produced {produced} tokens instead of {max_tokens}")


class RequestFailed(RuntimeError):
    """A server answered a benchmark request with an error."""


def timed_generate(
    engine: Backend,
    requests: list[BenchRequest],
    max_tokens: int,
    seed: int,
    load: Load | None = None,
) -> tuple[RunMeasurement, Batch]:
    batch = engine.generate(
        [r.as_request() for r in requests], GenSampling.exact(max_tokens, seed=seed), load
    )
    exact = getattr(engine, "length_extensions", True)
    verify_lengths(batch.completions, requests, max_tokens, exact_output=exact)
    return RunMeasurement.from_batch(batch), batch


def phase_seed(params: PerfParams, point: int, phase: int, iteration: int) -> int:
    return ((params.seed * 101 + point) * 11 + phase) * 1009 + iteration


@dataclass
class PointResult:
    point: PerfPointRecord  # scenario, both column sets, schedules; point_record adds the rest
    timed: list[RunMeasurement]
    probe: RunMeasurement | None
    timeline: list[RequestSpan]  # first timed iteration, see request_timeline
    batches: list[Batch] = field(default_factory=list)  # the timed iterations' batches


def point_load(params: PerfParams, planned: PlannedPoint, seed: int) -> Load | None:
    """How a load point's requests are sent (None: a batch, all at once)."""
    if planned.concurrency is None:
        return None
    offsets = arrival_offsets(planned.batch_size, params.request_rate, params.burstiness, seed)
    return Load(concurrency=planned.concurrency, offsets=tuple(offsets))


def run_point(
    engine: Backend, params: PerfParams, builder: WorkloadBuilder, planned: PlannedPoint, log=print
) -> PointResult:
    def batch(phase: int, iteration: int, size: int | None = None) -> list[BenchRequest]:
        seed = phase_seed(params, planned.index, phase, iteration)
        return builder.batch(planned.input_len, size or planned.batch_size, seed)

    pause_point("perf.point", planned.index)
    label = planned.label
    warm_size = planned.concurrency  # a load point warms up with one wave of its concurrency
    for i in range(params.warmup):
        timed_generate(engine, batch(PHASE_WARMUP, i, warm_size), 1, params.seed)
        log(f"{label}: warm-up {i + 1}/{params.warmup} done")
    probe, probe_batches = None, []
    if params.ttft_probe and planned.concurrency is None:
        probe, probed = timed_generate(engine, batch(PHASE_PROBE, 0), 1, params.seed)
        probe_batches.append(probed)
        log(f"{label}: TTFT probe done ({probe.wall_s:.2f} s)")
    timed, batches = [], []
    try:
        for i in range(params.iterations):
            pause_point("perf.iteration", f"{planned.index}.{i}")
            load = point_load(params, planned, phase_seed(params, planned.index, PHASE_TIMED, i))
            measurement, sent = timed_generate(
                engine, batch(PHASE_TIMED, i), planned.max_output_len, params.seed, load
            )
            timed.append(measurement)
            batches.append(sent)
            log(f"{label}: iteration {i + 1}/{params.iterations}: {iteration_line(measurement)}")
    except KeyboardInterrupt:
        if not timed:
            raise
        cut = None  # Ctrl-C after the last iteration: the point is whole
        if len(timed) < params.iterations:
            cut = f"interrupted after {len(timed)} of {params.iterations} timed iterations"
            log(f"{label}: {cut}: its numbers are over those")
        raise PointCut(
            point_result(params, planned, builder, timed, batches, probe, probe_batches, cut, log)
        ) from None
    return point_result(params, planned, builder, timed, batches, probe, probe_batches, log=log)


class PointCut(KeyboardInterrupt):
    """Ctrl-C stopped a point after some timed iterations: ``result`` holds those."""

    def __init__(self, result: PointResult):
        super().__init__(result.point.cut)
        self.result = result


def run_points(
    engine: Backend,
    params: PerfParams,
    builder: WorkloadBuilder,
    points: Sequence[PlannedPoint],
    keep: Callable[[PointResult], None],
) -> None:
    """Each point in turn, handed to ``keep`` (which records it) as soon as it is measured;
    a point cut by Ctrl-C is handed over with its finished iterations before the interrupt
    goes on."""
    for planned in points:
        try:
            result = run_point(engine, params, builder, planned)
        except PointCut as stopped:
            keep(stopped.result)
            raise
        keep(result)


def iteration_line(measurement: RunMeasurement) -> str:
    schedule = measurement.schedule
    if schedule.staggered is None:
        steps = "scheduling not reported (server)"
    elif schedule.staggered:
        steps = f"batch first scheduled in {schedule.scheduling_steps} steps"
    else:
        steps = "batch first scheduled in one step"
    return f"{measurement.wall_s:.2f} s, {measurement.tps:.1f} output tokens/s, {steps}"


def point_result(
    params: PerfParams,
    planned: PlannedPoint,
    builder: WorkloadBuilder,
    timed: list[RunMeasurement],
    batches: list[Batch],
    probe: RunMeasurement | None,
    probe_batches: list[Batch],
    cut: str | None = None,
    log=print,
) -> PointResult:
    """A point's columns, schedules and cache use from its timed (and probe) batches."""
    label = planned.label
    vendor = vendor_columns(timed, [probe] if probe else [])
    server_prefill = [
        b.server["prefill_ms"]["mean_ms"]
        for b in batches
        if b.server and (b.server.get("prefill_ms") or {}).get("mean_ms") is not None
    ]
    extra = load_parameters(params, planned)
    if vendor.prefill_ms is None and server_prefill:  # the server's histogram is the same
        vendor = replace(  # first token - scheduled
            vendor,
            prefill_ms=sum(server_prefill) / len(server_prefill),
            per_iteration={**vendor.per_iteration, "prefill_ms": tuple(server_prefill)},
        )
        extra["prefill_source"] = "server histogram vllm:request_prefill_time_seconds"
    caches = cache_use([b.caches for b in [*batches, *probe_batches]])
    if served_from_cache(caches):
        log(f"{label}: WARNING {caches.describe()}")
    point = PerfPointRecord(
        params=scenario_params(params, planned, extra),
        vendor=vendor,
        standard=standard_columns(timed),
        schedule=summarize_schedules(
            [m.schedule for m in timed], probe.schedule if probe else None
        ),
        workload_salt=builder.salt or None,
        caches=caches,
        cut=cut,
    )
    known = all(m.scheduled is not None for m in timed[0].marks)
    return PointResult(
        point=point,
        timed=timed,
        probe=probe,
        timeline=request_timeline(timed[0].marks) if known else [],
        batches=batches,
    )


def scenario_params(
    params: PerfParams, planned: PlannedPoint, extra: dict[str, Any]
) -> dict[str, Any]:
    """What a point measured (also the keys kit.records.references.match_references reads)."""
    return {
        "input_len": planned.input_len,
        "max_output_len": planned.max_output_len,
        "batch_size": planned.batch_size,
        "input_vision_shape": [[int(h), int(w)] for h, w in params.vision_shapes()],
        "num_crops": params.num_crops,
        "iterations": params.iterations,
        "warmup_iterations": params.warmup,
        "max_model_len": params.max_model_len,
        **extra,
    }


def load_parameters(params: PerfParams, planned: PlannedPoint) -> dict[str, Any]:
    """A load point's own parameters (recorded with the point; none for a batch point)."""
    if planned.concurrency is None:
        return {}
    rate = params.request_rate
    return {
        "concurrency": planned.concurrency,
        "num_requests": planned.batch_size,
        "request_rate": "inf" if math.isinf(rate) else rate,
        "burstiness": params.burstiness,
    }
