"""The performance notebook's engine side: plan a grid, run each point, collect metrics.

One point = ``warmup`` untimed batches (max_tokens=1, as the vendor's warm-up), an
optional ``max_tokens=1`` probe batch for the vendor-style TTFT, then ``iterations``
timed batches of ``batch_size`` requests with ignore_eos and exactly ``max_output_len``
output tokens. Every batch uses fresh prompts and images. Prompt and output lengths are
verified from what vLLM returns; a mismatch fails the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.engine import Engine, EngineParams, resolve_model
from kit.params import ParameterError
from kit.perf import (
    PerfPoint,
    RunMeasurement,
    check_fits,
    expand_grid,
    kv_cache_warning,
    parse_vision_shape,
    standard_columns,
    vendor_columns,
)
from kit.prompts import PHI3V
from kit.references import match_references, ratios
from kit.roofline import efficiency, roofline_bounds
from kit.tokens import PromptTokenCounter
from kit.workload import BenchRequest, WorkloadBuilder

PHASE_WARMUP, PHASE_PROBE, PHASE_TIMED = 1, 2, 3


@dataclass
class PerfParams(EngineParams):
    input_len: list[int] = field(default_factory=lambda: [8192])
    max_output_len: list[int] = field(default_factory=lambda: [1024])
    batch_size: list[int] = field(default_factory=lambda: [1])
    input_vision_shape: str = "1024,1024"
    iterations: int = 3
    warmup: int = 1
    ttft_probe: bool = True
    enable_prefix_caching: bool = False
    device: str = ""
    device_peaks: dict = field(default_factory=dict)

    def check(self) -> None:
        try:
            self.grid()
            shapes = parse_vision_shape(self.input_vision_shape)
        except ValueError as exc:
            raise ParameterError(f"{exc}. Fix the parameter and run again.") from exc
        if self.limit_images is None:
            self.limit_images = len(shapes)
        super().check()
        if self.iterations < 1:
            raise ParameterError("Parameter 'iterations' must be at least 1 (timed repetitions).")
        if self.warmup < 0:
            raise ParameterError("Parameter 'warmup' must be 0 or more.")
        if len(shapes) > self.limit_images:
            raise ParameterError(
                f"Parameter 'limit_images' ({self.limit_images}) is below the {len(shapes)} "
                f"images of input_vision_shape. Fix: -p limit_images {len(shapes)}."
            )

    def grid(self) -> list[dict[str, int]]:
        return expand_grid(self.input_len, self.batch_size, self.max_output_len)

    def vision_shapes(self) -> list[tuple[int, int]]:
        return parse_vision_shape(self.input_vision_shape)

    def preflight(self) -> None:
        """Every grid point must fit the prompt template and max_model_len; checked here."""
        super().preflight()
        plan_points(self, workload_builder(self, resolve_model(self.model)))

    def engine_params(self) -> EngineParams:
        """Caches off unless asked: repeated inputs must not look faster than they are."""
        engine_args = {
            "enable_prefix_caching": self.enable_prefix_caching,
            "mm_processor_cache_gb": 4 if self.enable_prefix_caching else 0,
            **self.engine_args,
        }
        base = {f: getattr(self, f) for f in EngineParams.__dataclass_fields__}
        return EngineParams(**{**base, "engine_args": engine_args})


def workload_builder(params: PerfParams, model_path: str) -> WorkloadBuilder:
    counter = PromptTokenCounter(model_path, params.num_crops, params.trust_remote_code)
    return WorkloadBuilder(counter, PHI3V, params.vision_shapes())


@dataclass
class PlannedPoint:
    index: int
    input_len: int
    batch_size: int
    max_output_len: int
    text_tokens: int
    image_tokens: int

    def row(self) -> dict[str, Any]:
        return {
            "point": self.index,
            "input_len": self.input_len,
            "batch_size": self.batch_size,
            "max_output_len": self.max_output_len,
            "image tokens": self.image_tokens,
            "text tokens": self.text_tokens,
        }


def plan_points(params: PerfParams, builder: WorkloadBuilder) -> list[PlannedPoint]:
    points = []
    for index, combo in enumerate(params.grid()):
        try:
            check_fits(
                combo["input_len"],
                combo["max_output_len"],
                params.max_model_len,
                builder.min_tokens,
            )
        except ValueError as exc:
            raise ParameterError(f"Grid point {index} does not fit: {exc}") from exc
        points.append(
            PlannedPoint(
                index=index,
                text_tokens=combo["input_len"] - builder.image_tokens,
                image_tokens=builder.image_tokens,
                **combo,
            )
        )
    return points


def kv_cache_tokens(engine: Engine) -> int | None:
    """Tokens the engine's KV cache holds (None when this vLLM does not expose it)."""
    try:
        cache = engine.llm.llm_engine.vllm_config.cache_config
        return int(cache.num_gpu_blocks) * int(cache.block_size)
    except (AttributeError, TypeError):
        return None


def kv_warnings(engine: Engine, points: list[PlannedPoint]) -> list[str]:
    capacity = kv_cache_tokens(engine)
    if capacity is None:
        return []
    warnings = []
    for p in points:
        text = kv_cache_warning(p.batch_size, p.input_len, p.max_output_len, capacity)
        if text:
            warnings.append(f"point {p.index}: {text}")
    return warnings


class LengthMismatch(RuntimeError):
    """vLLM saw a different prompt or output length than the kit asked for."""


def verify_lengths(outputs: list[Any], requests: list[BenchRequest], max_tokens: int) -> None:
    for output, request in zip(outputs, requests, strict=True):
        got = len(output.prompt_token_ids)
        if got != request.num_tokens:
            raise LengthMismatch(
                f"vLLM counted {got} prompt tokens where the kit built {request.num_tokens}: "
                "the prompt-length calculation does not match this model's processor."
            )
        produced = sum(len(c.token_ids) for c in output.outputs)
        if produced != max_tokens:
            raise LengthMismatch(f"a request produced {produced} tokens instead of {max_tokens}")


def timed_generate(
    engine: Engine, requests: list[BenchRequest], max_tokens: int, seed: int
) -> tuple[RunMeasurement, list[Any]]:
    sampling = engine.sampling_params(
        max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True, temperature=0.0, seed=seed
    )
    inputs = [r.as_vllm_input() for r in requests]
    start = time.perf_counter()
    outputs = engine.llm.generate(inputs, sampling, use_tqdm=False)
    wall = time.perf_counter() - start
    verify_lengths(outputs, requests, max_tokens)
    return RunMeasurement.from_outputs(outputs, wall), outputs


def _phase_seed(params: PerfParams, point: int, phase: int, iteration: int) -> int:
    return ((params.seed * 101 + point) * 11 + phase) * 1009 + iteration


@dataclass
class PointResult:
    point: PerfPoint
    timed: list[RunMeasurement]
    probe: RunMeasurement | None
    timeline: list[dict[str, float]]  # first timed iteration, seconds from its first arrival


def run_point(
    engine: Engine, params: PerfParams, builder: WorkloadBuilder, planned: PlannedPoint, log=print
) -> PointResult:
    def batch(phase: int, iteration: int) -> list[BenchRequest]:
        seed = _phase_seed(params, planned.index, phase, iteration)
        return builder.batch(planned.input_len, planned.batch_size, seed)

    label = f"point {planned.index} (input_len {planned.input_len}, batch {planned.batch_size})"
    for i in range(params.warmup):
        timed_generate(engine, batch(PHASE_WARMUP, i), 1, params.seed)
        log(f"{label}: warm-up {i + 1}/{params.warmup} done")
    probe = None
    if params.ttft_probe:
        probe, _ = timed_generate(engine, batch(PHASE_PROBE, 0), 1, params.seed)
        log(f"{label}: TTFT probe done ({probe.wall_s:.2f} s)")
    timed, timeline = [], []
    for i in range(params.iterations):
        measurement, outputs = timed_generate(
            engine, batch(PHASE_TIMED, i), planned.max_output_len, params.seed
        )
        timed.append(measurement)
        if i == 0:
            timeline = request_timeline(outputs)
        log(
            f"{label}: iteration {i + 1}/{params.iterations}: {measurement.wall_s:.2f} s, "
            f"{measurement.tps:.1f} output tokens/s"
        )
    point = PerfPoint(
        input_len=planned.input_len,
        max_output_len=planned.max_output_len,
        batch_size=planned.batch_size,
        input_vision_shape=params.vision_shapes(),
        num_crops=params.num_crops,
        iterations=params.iterations,
        warmup_iterations=params.warmup,
        max_model_len=params.max_model_len,
        vendor=vendor_columns(timed, [probe] if probe else []),
        standard=standard_columns(timed),
    )
    return PointResult(point=point, timed=timed, probe=probe, timeline=timeline)


def request_timeline(outputs: list[Any]) -> list[dict[str, float]]:
    """Queue / prefill / decode spans per request (V1 engine clock, or V0 wall clock)."""
    spans = []
    for output in outputs:
        m = output.metrics
        if hasattr(m, "queued_ts"):
            marks = (m.queued_ts, m.scheduled_ts, m.first_token_ts, m.last_token_ts)
        else:
            marks = (m.arrival_time, m.first_scheduled_time, m.first_token_time, m.finished_time)
        spans.append(marks)
    if not spans:
        return []
    origin = min(s[0] for s in spans)
    return [
        {
            "queued": q - origin,
            "scheduled": s - origin,
            "first_token": f - origin,
            "last_token": last - origin,
        }
        for q, s, f, last in spans
    ]


def model_size(model_path: str) -> tuple[int | None, int | None]:
    """(weight bytes, parameter count) from the checkpoint's safetensors headers."""
    folder = Path(model_path)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None, None
    from safetensors import safe_open

    weight_bytes = sum(f.stat().st_size for f in files)
    params = 0
    for file in files:
        with safe_open(str(file), "pt") as fh:
            for name in fh.keys():
                shape = fh.get_slice(name).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                params += count
    return weight_bytes, params


def point_record(
    result: PointResult,
    references: Any,
    device: str,
    model: tuple[int | None, int | None],
    peaks: Any = None,
) -> dict[str, Any]:
    """One entry of results.json ``perf.points``: parameters, both column sets, references,
    the request timeline and roofline bounds (None with a reason for unknown devices)."""
    record = result.point.to_dict()
    measured = record["vendor"]
    record["references"] = [
        {**row.to_dict(), "ratios": ratios(measured, row)}
        for row in match_references(result.point.params(), references)
    ]
    record["timeline"] = result.timeline
    record["observed"] = {  # what vLLM reported, across all timed requests
        "prompt_tokens": sorted({t.num_prompt_tokens for r in result.timed for t in r.timings}),
        "output_tokens": sorted({t.num_output_tokens for r in result.timed for t in r.timings}),
    }
    weight_bytes, num_params = model
    if weight_bytes and num_params:
        prefill_tokens = result.point.input_len * result.point.batch_size
        bounds = roofline_bounds(device, weight_bytes, num_params, prefill_tokens, peaks)
        record["roofline"] = {
            **bounds.to_dict(),
            "decode_efficiency": efficiency(
                measured.get("decode_ms_per_token"), bounds.decode_ms_per_token
            ),
            "prefill_efficiency": efficiency(
                measured.get("prefill_ms"),
                None if bounds.prefill_s is None else bounds.prefill_s * 1000,
            ),
        }
    return record


def vendor_table(records: list[dict[str, Any]], device_label: str) -> list[dict[str, Any]]:
    """The vendor table's layout: each measured row, its reference rows, and the ratios."""
    rows = []
    for record in records:
        p = record["params"]
        scenario = {
            "input-len": p["input_len"],
            "output-len": p["max_output_len"],
            "num-prompts": p["batch_size"],
        }
        rows.append({"source": f"measured ({device_label})", **scenario, **record["vendor"]})
        for ref in record.get("references", []):
            metrics = {k: ref[k] for k in ("ttft_ms", "tps", "prefill_ms", "decode_ms_per_token")}
            rows.append({"source": f"vendor {ref['device']}", **scenario, **metrics})
            ratio = {k: v for k, v in ref["ratios"].items()}
            rows.append({"source": f"measured / {ref['device']}", **scenario, **ratio})
    return rows


def standard_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, median, p90, p99 per metric, and the spread of per-iteration means."""
    rows = []
    for record in records:
        p = record["params"]
        std = record["standard"]
        for metric in ("ttft_ms", "tpot_ms", "e2e_ms", "prefill_ms", "decode_ms", "queue_ms"):
            s = std[metric]
            rows.append(
                {
                    "point": f"{p['input_len']} x {p['batch_size']} -> {p['max_output_len']}",
                    "metric": metric,
                    "mean": s["mean"],
                    "median": s["median"],
                    "p90": s["p90"],
                    "p99": s["p99"],
                    "iteration means min": s["iter_min"],
                    "iteration means max": s["iter_max"],
                    "n": s["count"],
                }
            )
        rows.append(
            {
                "point": f"{p['input_len']} x {p['batch_size']} -> {p['max_output_len']}",
                "metric": "tps (per iteration)",
                "mean": std["tps_mean"],
                "iteration means min": min(std["tps_per_iteration"]),
                "iteration means max": max(std["tps_per_iteration"]),
                "n": std["iterations"],
            }
        )
    return rows


def roofline_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        bounds = record.get("roofline")
        if not bounds:
            continue
        p = record["params"]
        rows.append(
            {
                "point": f"{p['input_len']} x {p['batch_size']}",
                "device": bounds["device"],
                "decode bound (ms/token)": bounds["decode_ms_per_token"],
                "decode measured (ms/token)": record["vendor"]["decode_ms_per_token"],
                "decode efficiency": bounds["decode_efficiency"],
                "prefill bound (ms)": None
                if bounds["prefill_s"] is None
                else bounds["prefill_s"] * 1000,
                "prefill measured (ms)": record["vendor"]["prefill_ms"],
                "prefill efficiency": bounds["prefill_efficiency"],
                "note": bounds["reason"] or "",
            }
        )
    return rows
