"""The performance notebook's engine side: plan a grid, run each point, collect metrics.

One point = ``warmup`` untimed batches (max_tokens=1, as the vendor's warm-up), an
optional ``max_tokens=1`` probe batch for the vendor-style TTFT, then ``iterations``
timed batches of ``batch_size`` requests with ignore_eos and exactly ``max_output_len``
output tokens. Every batch uses fresh prompts and images. Prompt and output lengths are
verified from what vLLM returns; a mismatch fails the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.backend import Backend, Batch, Completion, GenSampling, Load
from kit.load import arrival_offsets, summarize_load
from kit.pauses import pause_point
from kit.perf import (
    PerfPoint,
    RequestMarks,
    RunMeasurement,
    budget_steps,
    standard_columns,
    summarize_schedules,
    vendor_columns,
)
from kit.perf_params import (
    PerfParams,
    PlannedPoint,
    kv_cache_warning,
    parse_vision_shape,
)
from kit.phi3v_processor import hd_padded_size
from kit.prometheus import merge_server_latencies
from kit.references import load_references, match_references, ratios
from kit.results import EfficiencyRecord, PerfPointRecord, batching, perf_points
from kit.roofline import (
    DevicePeaks,
    ModelFigures,
    PointShape,
    bounds,
    efficiency,
    load_device_peaks,
    read_model_figures,
    views_per_request,
)
from kit.workload import BenchRequest, WorkloadBuilder

PHASE_WARMUP, PHASE_PROBE, PHASE_TIMED = 1, 2, 3


def kv_warnings(engine: Backend, points: list[PlannedPoint]) -> list[str]:
    capacity = engine.config.get("kv_cache_tokens")
    if capacity is None:
        return []
    warnings = []
    for p in points:
        text = kv_cache_warning(
            p.batch_size, p.input_len, p.max_output_len, capacity, engine.config.get("block_size")
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
                "running server: its num_crops or chat template differ from the run's; set "
                "num_crops to the server's)."
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


def _phase_seed(params: PerfParams, point: int, phase: int, iteration: int) -> int:
    return ((params.seed * 101 + point) * 11 + phase) * 1009 + iteration


@dataclass
class PointResult:
    point: PerfPoint
    timed: list[RunMeasurement]
    probe: RunMeasurement | None
    timeline: list[dict[str, float]]  # first timed iteration, see request_timeline
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
        seed = _phase_seed(params, planned.index, phase, iteration)
        return builder.batch(planned.input_len, size or planned.batch_size, seed)

    pause_point("perf.point", planned.index)
    label = planned.label
    warm_size = planned.concurrency  # a load point warms up with one wave of its concurrency
    for i in range(params.warmup):
        timed_generate(engine, batch(PHASE_WARMUP, i, warm_size), 1, params.seed)
        log(f"{label}: warm-up {i + 1}/{params.warmup} done")
    probe = None
    if params.ttft_probe and planned.concurrency is None:
        probe, _ = timed_generate(engine, batch(PHASE_PROBE, 0), 1, params.seed)
        log(f"{label}: TTFT probe done ({probe.wall_s:.2f} s)")
    timed, batches = [], []
    for i in range(params.iterations):
        load = point_load(params, planned, _phase_seed(params, planned.index, PHASE_TIMED, i))
        measurement, sent = timed_generate(
            engine, batch(PHASE_TIMED, i), planned.max_output_len, params.seed, load
        )
        timed.append(measurement)
        batches.append(sent)
        schedule = measurement.schedule
        if schedule.staggered is None:
            steps = "scheduling not reported (server)"
        elif schedule.staggered:
            steps = f"batch first scheduled in {schedule.scheduling_steps} steps"
        else:
            steps = "batch first scheduled in one step"
        log(
            f"{label}: iteration {i + 1}/{params.iterations}: {measurement.wall_s:.2f} s, "
            f"{measurement.tps:.1f} output tokens/s, {steps}"
        )
    vendor = vendor_columns(timed, [probe] if probe else [])
    server_prefill = [
        b.server["prefill_ms"]["mean_ms"]
        for b in batches
        if b.server and (b.server.get("prefill_ms") or {}).get("mean_ms") is not None
    ]
    extra = load_parameters(params, planned)
    if vendor.prefill_ms is None and server_prefill:  # the server's histogram is the same
        vendor.per_iteration["prefill_ms"] = server_prefill  # first token - scheduled
        vendor.prefill_ms = sum(server_prefill) / len(server_prefill)
        extra["prefill_source"] = "server histogram vllm:request_prefill_time_seconds"
    point = PerfPoint(
        input_len=planned.input_len,
        max_output_len=planned.max_output_len,
        batch_size=planned.batch_size,
        input_vision_shape=params.vision_shapes(),
        num_crops=params.num_crops,
        iterations=params.iterations,
        warmup_iterations=params.warmup,
        max_model_len=params.max_model_len,
        extra=extra,
        vendor=vendor,
        standard=standard_columns(timed),
        schedule=summarize_schedules(
            [m.schedule for m in timed], probe.schedule if probe else None
        ),
    )
    known = all(m.scheduled is not None for m in timed[0].marks)
    return PointResult(
        point=point,
        timed=timed,
        probe=probe,
        timeline=request_timeline(timed[0].marks) if known else [],
        batches=batches,
    )


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


def served_section(result: PointResult, params: PerfParams) -> dict[str, Any] | None:
    """What a server point adds: the client's load summary over all timed iterations
    (throughput, goodput, ITL) and the server's own histograms beside it."""
    streams = [c.stream for b in result.batches for c in b.completions if c.stream is not None]
    if not streams:
        return None
    wall = sum(b.wall_s for b in result.batches)
    summary = summarize_load(streams, wall, params.slo_ttft_ms, params.slo_tpot_ms)
    return {
        "client": summary.to_dict(),
        "server": merge_server_latencies([b.server for b in result.batches if b.server]),
        "samples": {  # for the distribution plots, ms
            "ttft_ms": [s.ttft_s * 1000 for s in streams if s.ttft_s is not None],
            "itl_ms": [gap * 1000 for s in streams for gap in s.itl_s],
        },
        "slo": {"ttft_ms": params.slo_ttft_ms, "tpot_ms": params.slo_tpot_ms},
    }


def request_timeline(marks: list[RequestMarks]) -> list[dict[str, float | None]]:
    """Per request, seconds: queue / prefill / decode spans from the first request's queueing
    (engine clock), and arrival from the first arrival (wall clock; never mixed with the other)."""
    queued = [m.queued for m in marks if m.queued is not None]
    arrivals = [m.arrival for m in marks if m.arrival is not None]
    if not queued:
        return []
    origin, first_arrival = min(queued), min(arrivals) if arrivals else None

    def since(value: float | None, start: float | None) -> float | None:
        return None if value is None or start is None else value - start

    return [
        {
            "arrival": since(m.arrival, first_arrival),
            "queued": since(m.queued, origin),
            "scheduled": since(m.scheduled, origin),
            "first_token": since(m.first_token, origin),
            "last_token": since(m.last_token, origin),
        }
        for m in marks
    ]


@dataclass
class RecordContext:
    """What every point record of a run is measured against."""

    device: str
    scheduling: str
    engine_config: dict[str, Any]
    references: Any
    peaks: dict[str, DevicePeaks]
    figures: ModelFigures | None
    views_per_request: int
    params: PerfParams | None = None  # the run's (SLOs for a server point's goodput)


def record_context(run: Any, engine: Backend) -> RecordContext:
    """The device (parameter, else detected), references, peaks and model figures of a run."""
    params: PerfParams = run.params
    views = views_per_request(params.vision_shapes(), params.num_crops, hd_padded_size)
    return RecordContext(
        device=params.device or run.environment["accelerator"]["name"],
        scheduling=params.scheduling,
        engine_config=engine.config,
        references=load_references(),
        peaks=load_device_peaks(extra=params.device_peaks),
        figures=read_model_figures(engine.model_path, engine.config.get("dtype")),
        views_per_request=views,
        params=params,
    )


def scheduling_verdict(point: PerfPoint, engine_config: dict[str, Any]) -> dict[str, Any]:
    """How the point's batches were first scheduled against what the token budget allows.

    ``budget_steps`` is what vLLM 0.6 needed with every request waiting (one step for
    4 x 8192 at a 32768-token budget, four for 31744 x 4); a batch that took more steps
    than that was staggered by something else (V1's front end, KV-cache room).
    """
    schedule = point.schedule
    budget = budget_steps(
        point.batch_size, point.input_len, engine_config.get("max_num_batched_tokens")
    )
    if engine_config.get("chunked_prefill") is not False:
        budget = 1
    steps = schedule.scheduling_steps_max if schedule else 0
    return {
        "budget_steps": budget,
        "staggered_beyond_budget": bool(schedule and schedule.staggered and steps > budget),
    }


def comparison_warnings(
    point: PerfPoint,
    scheduling: str,
    verdict: dict[str, Any],
    vendor_shape: list[tuple[int, int]] | None = None,
) -> list[str]:
    """Why a comparison of this point with the vendor's rows may mislead (empty: it does not)."""
    warnings = []
    if vendor_shape is not None and point.input_vision_shape != vendor_shape:
        shapes = ";".join(f"{h},{w}" for h, w in point.input_vision_shape or []) or "none"
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
    schedule = point.schedule
    if point.batch_size > 1 and verdict["staggered_beyond_budget"]:
        warnings.append(
            f"staggered batch: its requests were first scheduled in up to "
            f"{schedule.scheduling_steps_max} engine steps where the token budget needs "
            f"{verdict['budget_steps']} ({schedule.scheduling_spread_ms_max or 0:.0f} ms apart), "
            "so prefill and TTFT do not measure the vendor's batch prefill"
        )
    return warnings


def point_shape(point: PerfPoint, context: RecordContext, verdict: dict[str, Any]) -> PointShape:
    """How many requests one measured prefill and one decode step cover, for the bounds.

    Without chunked prefill every request first scheduled in a step is prefilled whole in
    it, and its measured prefill is that step: the bound may count the step's requests
    (at least the fewest any step held). Otherwise only the request's own tokens count.
    """
    config = context.engine_config
    prefilled = 1
    if config.get("chunked_prefill") is False and not verdict["staggered_beyond_budget"]:
        budget = config.get("max_num_batched_tokens") or point.input_len
        per_step = min(point.batch_size, max(1, budget // point.input_len))
        steps = math.ceil(point.batch_size / per_step)
        prefilled = point.batch_size - per_step * (steps - 1)  # the last step holds the fewest
    decoding = point.batch_size
    capacity, block = config.get("kv_cache_tokens"), config.get("block_size") or 1
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


def point_record(result: PointResult, context: RecordContext) -> dict[str, Any]:
    """One entry of results.json ``perf.points``: parameters, both column sets, how the
    batches were scheduled, the vendor rows with ratios (and warnings where the comparison
    misleads), the request timeline and roofline bounds."""
    record = result.point.to_dict()
    measured = record["vendor"]
    verdict = scheduling_verdict(result.point, context.engine_config)
    vendor_shape = context.references.perf_command.get("input_vision_shape")
    warnings = comparison_warnings(
        result.point,
        context.scheduling,
        verdict,
        None if vendor_shape is None else parse_vision_shape(vendor_shape),
    )
    record["schedule"].update(verdict)
    record["schedule"]["iterations"] = [m.schedule.to_dict() for m in result.timed]
    record["references"] = [
        {**row.to_dict(), "ratios": ratios(measured, row), "warnings": warnings}
        for row in match_references(result.point.params(), context.references)
    ]
    record["timeline"] = result.timeline
    record["served"] = served_section(result, context.params or PerfParams())
    record["observed"] = {  # what vLLM reported, across all timed requests
        "prompt_tokens": sorted({t.num_prompt_tokens for r in result.timed for t in r.timings}),
        "output_tokens": sorted({t.num_output_tokens for r in result.timed for t in r.timings}),
    }
    if context.figures is None:
        record["roofline"] = None
        return record
    shape = point_shape(result.point, context, verdict)
    b = bounds(context.figures, shape, context.device, context.peaks)
    record["roofline"] = {
        **b.to_dict(),
        "shape": asdict(shape),
        "decode_efficiency": efficiency(
            measured.get("decode_ms_per_token"), b.decode_ms_per_token
        ).to_dict(),
        "prefill_efficiency": efficiency(measured.get("prefill_ms"), b.prefill_ms).to_dict(),
    }
    return record


# ----------------------------------------------------------------------------------------
# Report tables: they take point records as point_record wrote them, or as kit.results
# read them back, and read them only through kit.results
# ----------------------------------------------------------------------------------------

PointRecords = Sequence[PerfPointRecord | Mapping[str, Any]]


def batch_scheduling(record: PerfPointRecord | Mapping[str, Any]) -> str:
    """How a point's batches were first scheduled, in words."""
    batch_size, schedule = batching(record)
    if batch_size == 1:
        return "single request"
    if schedule.staggered is None:
        return "unknown"
    steps = schedule.scheduling_steps_max
    if schedule.staggered_beyond_budget:
        return f"staggered ({steps} steps; the token budget needs {schedule.budget_steps})"
    if schedule.staggered:
        return f"{steps} steps, as the token budget needs (as vLLM 0.6)"
    return "one step"


def vendor_table(records: PointRecords, device_label: str) -> list[dict[str, Any]]:
    """The vendor table's layout: each measured row, its reference rows, and the ratios,
    with how the batch was scheduled and a warning where the ratio compares unlike things."""
    rows = []
    for point in perf_points(records):
        scenario = {
            "input-len": point.input_len,
            "output-len": point.max_output_len,
            "num-prompts": point.batch_size,
        }
        rows.append(
            {
                "source": f"measured ({device_label})",
                **scenario,
                **point.vendor,
                "batch scheduling": batch_scheduling(point),
            }
        )
        for ref in point.references:
            rows.append({"source": f"vendor {ref.device}", **scenario, **ref.metrics})
            warning = "; ".join(ref.warnings)
            rows.append(
                {
                    "source": f"measured / {ref.device}" + (" (WARNING)" if warning else ""),
                    **scenario,
                    **ref.ratios,
                    "batch scheduling": warning,
                }
            )
    return rows


def comparison_warning_lines(records: PointRecords) -> list[str]:
    """One line per point whose vendor comparison carries a warning."""
    return [
        f"WARNING {point.label}: " + "; ".join(point.references[0].warnings)
        for point in perf_points(records)
        if point.references and point.references[0].warnings
    ]


def standard_table(records: PointRecords) -> list[dict[str, Any]]:
    """Mean, median, p90, p99 per metric, and the spread of per-iteration means."""
    rows = []
    for point in perf_points(records):
        std = point.standard
        if std is None:
            continue
        for metric, s in std.metrics.items():
            rows.append(
                {
                    "point": point.label,
                    "metric": metric,
                    "mean": s.mean,
                    "median": s.median,
                    "p90": s.p90,
                    "p99": s.p99,
                    "iteration means min": s.iter_min,
                    "iteration means max": s.iter_max,
                    "n": s.count,
                }
            )
        tps = std.tps_per_iteration
        rows.append(
            {
                "point": point.label,
                "metric": "tps (per iteration)",
                "mean": std.tps_mean,
                "iteration means min": min(tps) if tps else None,
                "iteration means max": max(tps) if tps else None,
                "n": std.iterations,
            }
        )
    return rows


def roofline_table(records: PointRecords) -> list[dict[str, Any]]:
    def shown(eff: EfficiencyRecord | None) -> Any:
        if eff is None:
            return None
        return eff.value if eff.error is None else "ERROR: " + eff.error

    rows = []
    for point in perf_points(records):
        bounds = point.roofline
        if bounds is None:
            continue
        rows.append(
            {
                "point": point.label,
                "device": bounds.device,
                "decode bound (ms/token)": bounds.decode_ms_per_token,
                "decode measured (ms/token)": point.vendor["decode_ms_per_token"],
                "decode efficiency": shown(bounds.decode_efficiency),
                "sequences per decode step": bounds.decoding_together,
                "prefill bound (ms)": bounds.prefill_ms,
                "prefill measured (ms)": point.vendor["prefill_ms"],
                "prefill efficiency": shown(bounds.prefill_efficiency),
                "requests per prefill": bounds.prefilled_together,
                "note": bounds.reason or "",
            }
        )
    return rows


def served_table(records: PointRecords) -> list[dict[str, Any]]:
    """Per server point: the client's load figures, with the server's own histogram means
    beside them (the difference is network and front end)."""
    rows = []
    for point in perf_points(records):
        served = point.served
        if not served:
            continue
        client, server = served["client"], served.get("server") or {}

        def server_mean(key: str, server: dict = server) -> float | None:
            return (server.get(key) or {}).get("mean_ms")

        rows.append(
            {
                "point": point.label,
                "request rate": point.params.get("request_rate", "inf"),
                "completed": client["completed"],
                "failed": client["failed"],
                "requests/s": client["request_throughput"],
                "output tokens/s": client["output_throughput"],
                "goodput (req/s)": client["goodput"],
                "TTFT mean (client)": client["ttft_ms"]["mean"],
                "TTFT mean (server)": server_mean("ttft_ms"),
                "TTFT p99 (client)": client["ttft_ms"]["p99"],
                "TPOT mean": client["tpot_ms"]["mean"],
                "ITL mean (client)": client["itl_ms"]["mean"],
                "ITL mean (server)": server_mean("itl_ms"),
                "ITL p99 (client)": client["itl_ms"]["p99"],
                "E2E mean (client)": client["e2e_ms"]["mean"],
                "E2E mean (server)": server_mean("e2e_ms"),
                "queue mean (server)": server_mean("queue_ms"),
                "prefill mean (server)": server_mean("prefill_ms"),
                "decode mean (server)": server_mean("decode_ms"),
            }
        )
    return rows
