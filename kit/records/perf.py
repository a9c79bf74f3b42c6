"""The one reader of ``results.json``: its schema version, where it lies, and typed sections.

Every notebook writes one results.json; reports, the run index and the comparison read it
back only through this module, so each field is named in one place, and a file written by
an older kit (no ``engine``, no ``schedule``, no vendor-strict MMMU scoring) reads as "not
recorded" instead of failing. The writers: kit.run (``Run.document``: the envelope),
kit.engine (``engine_config``: ``engine``), kit.perf_run (``point_record``: ``perf.points``),
kit.mmmu_report (``mmmu_section``: ``mmmu``) and kit.demo (``DemoResult``: ``demo``);
docs/methodology.md says what the numbers mean.

Nothing here imports vLLM or kit.run: it works wherever a results.json was copied to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.records.base import ResultsError, known_fields, mapping
from kit.records.references import PERF_METRICS


def point_label(input_len: int, max_output_len: int, batch_size: int) -> str:
    """The one way a perf point (or a vendor row of the same scenario) is named in tables,
    plots and headlines; input, output and batch in the vendor table's column order."""
    return f"in {input_len} / out {max_output_len} / bs {batch_size}"


@dataclass(frozen=True)
class MetricRecord:
    """One standard metric's distribution, ms (kit.perf.MetricSummary)."""

    count: int | None = None
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    p99: float | None = None
    iter_min: float | None = None
    iter_max: float | None = None
    iter_std: float | None = None

    @classmethod
    def of(cls, section: Any) -> MetricRecord:
        return cls(**known_fields(cls, mapping(section)))


STANDARD_METRICS = ("ttft_ms", "tpot_ms", "e2e_ms", "prefill_ms", "decode_ms", "queue_ms")


@dataclass(frozen=True)
class StandardRecord:
    """The standard column set (kit.perf.StandardColumns): per-request distributions and
    per-iteration throughput."""

    metrics: dict[str, MetricRecord]  # the STANDARD_METRICS that were recorded, in order
    tps_per_iteration: tuple[float, ...] = ()
    tps_mean: float | None = None
    tps_std: float | None = None
    iterations: int | None = None
    num_requests: int | None = None

    @classmethod
    def of(cls, section: Any) -> StandardRecord | None:
        section = mapping(section)
        if not section:
            return None
        return cls(
            metrics={k: MetricRecord.of(section[k]) for k in STANDARD_METRICS if k in section},
            tps_per_iteration=tuple(section.get("tps_per_iteration") or ()),
            tps_mean=section.get("tps_mean"),
            tps_std=section.get("tps_std"),
            iterations=section.get("iterations"),
            num_requests=section.get("num_requests"),
        )


@dataclass(frozen=True)
class ScheduleRecord:
    """How a point's batches were first scheduled (kit.perf.ScheduleSummary plus
    kit.perf_run.scheduling_verdict); every field None in files that predate it."""

    staggered: bool | None = None  # None: not recorded, or the engine did not report
    staggered_beyond_budget: bool | None = None
    budget_steps: int | None = None
    scheduling_steps_max: int | None = None
    scheduling_spread_ms_max: float | None = None
    arrival_spread_ms_max: float | None = None
    staggered_iterations: int | None = None
    unknown_iterations: int | None = None
    probe_staggered: bool | None = None
    batches: tuple[dict[str, Any], ...] = ()  # per timed iteration (kit.perf.BatchSchedule)

    @classmethod
    def of(cls, section: Any) -> ScheduleRecord:
        section = mapping(section)
        batches = section.get("iterations")  # the per-batch list replaces the summary's count
        return cls(
            **{k: v for k, v in known_fields(cls, section).items() if k != "batches"},
            batches=tuple(batches) if isinstance(batches, list) else (),
        )

    @property
    def verdict_known(self) -> bool:
        """Whether staggering and the token-budget verdict were both recorded."""
        return self.staggered is not None and self.staggered_beyond_budget is not None


@dataclass(frozen=True)
class ReferenceComparison:
    """A vendor row of the point's scenario, with measured / vendor ratios and the reasons
    the comparison may mislead (empty: it does not)."""

    device: str
    metrics: dict[str, float | None]  # PERF_METRICS, the vendor's values
    ratios: dict[str, float | None]  # PERF_METRICS, measured / vendor
    warnings: tuple[str, ...] = ()
    card: int | None = None
    input_len: int | None = None
    output_len: int | None = None
    num_prompts: int | None = None
    max_model_len: int | None = None

    @classmethod
    def of(cls, section: Any) -> ReferenceComparison:
        section = mapping(section)
        ratios = mapping(section.get("ratios"))
        return cls(
            device=str(section.get("device", "?")),
            metrics={k: section.get(k) for k in PERF_METRICS},
            ratios={k: ratios.get(k) for k in PERF_METRICS},
            warnings=tuple(section.get("warnings") or ()),
            card=section.get("card"),
            input_len=section.get("input_len"),
            output_len=section.get("output_len"),
            num_prompts=section.get("num_prompts"),
            max_model_len=section.get("max_model_len"),
        )


@dataclass(frozen=True)
class EfficiencyRecord:
    """bound / measured, or why there is none (kit.roofline.Efficiency)."""

    value: float | None = None
    error: str | None = None

    @classmethod
    def of(cls, section: Any) -> EfficiencyRecord | None:
        section = mapping(section)
        return cls(**known_fields(cls, section)) if section else None


@dataclass(frozen=True)
class RooflineRecord:
    """A point's roofline bounds (kit.roofline.RooflineBounds) and efficiencies."""

    device: str | None = None
    decode_ms_per_token: float | None = None
    prefill_ms: float | None = None
    prefill_tflop: float | None = None
    decode_gb_per_step: float | None = None
    reason: str | None = None  # why a bound is missing
    source: str | None = None
    decoding_together: int | None = None  # sequences one decode step serves
    prefilled_together: int | None = None  # requests one measured prefill covers
    shape: dict[str, Any] = field(default_factory=dict)  # kit.roofline.PointShape
    decode_efficiency: EfficiencyRecord | None = None
    prefill_efficiency: EfficiencyRecord | None = None

    @classmethod
    def of(cls, section: Any) -> RooflineRecord | None:
        """None when the run had no model figures (or predates the section)."""
        section = mapping(section)
        if not section:
            return None
        shape = dict(mapping(section.get("shape")))
        plain = {
            k: v
            for k, v in known_fields(cls, section).items()
            if k not in ("shape", "decode_efficiency", "prefill_efficiency")
        }
        return cls(
            **plain,
            decoding_together=shape.get("decoding_together"),
            prefilled_together=shape.get("prefilled_together"),
            shape=shape,
            decode_efficiency=EfficiencyRecord.of(section.get("decode_efficiency")),
            prefill_efficiency=EfficiencyRecord.of(section.get("prefill_efficiency")),
        )


@dataclass(frozen=True)
class RequestSpan:
    """One request of the first timed batch, seconds: queue, prefill, decode marks from the
    first queueing (engine clock), arrival from the first arrival (wall clock)."""

    arrival: float | None = None
    queued: float | None = None
    scheduled: float | None = None
    first_token: float | None = None
    last_token: float | None = None

    @classmethod
    def of(cls, span: RequestSpan | Mapping[str, Any]) -> RequestSpan:
        return span if isinstance(span, RequestSpan) else cls(**known_fields(cls, mapping(span)))


@dataclass(frozen=True)
class PerfPointRecord:
    """One entry of ``perf.points`` (kit.perf_run.point_record)."""

    input_len: int
    max_output_len: int
    batch_size: int
    input_vision_shape: list[list[int]] | None
    num_crops: int | None
    params: dict[str, Any]  # all recorded scenario parameters (iterations, warm-up, ...)
    vendor: dict[str, float | None]  # the vendor's four columns, PERF_METRICS order
    vendor_per_iteration: dict[str, tuple[float, ...]]  # the values behind each mean
    standard: StandardRecord | None
    schedule: ScheduleRecord
    references: tuple[ReferenceComparison, ...]
    roofline: RooflineRecord | None
    timeline: tuple[RequestSpan, ...]
    observed: dict[str, Any]  # prompt and output lengths vLLM reported
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, point: PerfPointRecord | Mapping[str, Any]) -> PerfPointRecord:
        if isinstance(point, PerfPointRecord):
            return point
        point = mapping(point)
        params = mapping(point.get("params"))
        missing = [k for k in ("input_len", "max_output_len", "batch_size") if k not in params]
        if missing:
            raise ResultsError(f"a perf point's params lack {', '.join(missing)}")
        vendor = mapping(point.get("vendor"))
        return cls(
            input_len=params["input_len"],
            max_output_len=params["max_output_len"],
            batch_size=params["batch_size"],
            input_vision_shape=params.get("input_vision_shape"),
            num_crops=params.get("num_crops"),
            params=dict(params),
            vendor={k: vendor.get(k) for k in PERF_METRICS},
            vendor_per_iteration={
                k: tuple(mapping(vendor.get("per_iteration")).get(k) or ()) for k in PERF_METRICS
            },
            standard=StandardRecord.of(point.get("standard")),
            schedule=ScheduleRecord.of(point.get("schedule")),
            references=tuple(ReferenceComparison.of(r) for r in point.get("references") or ()),
            roofline=RooflineRecord.of(point.get("roofline")),
            timeline=tuple(RequestSpan.of(s) for s in point.get("timeline") or ()),
            observed=dict(mapping(point.get("observed"))),
            document=dict(point),
        )

    @property
    def key(self) -> tuple[int, int, int]:
        """(input_len, max_output_len, batch_size): what makes two points the same scenario."""
        return (self.input_len, self.max_output_len, self.batch_size)

    @property
    def concurrency(self) -> int | None:
        """A server load point's requests in flight (None: a batch point)."""
        return self.params.get("concurrency")

    @property
    def label(self) -> str:
        base = point_label(*self.key)
        return base if self.concurrency is None else f"{base} / conc {self.concurrency}"

    @property
    def served(self) -> dict[str, Any] | None:
        """A server point's client load summary and server histograms (kit.perf_run)."""
        return self.document.get("served")


def batching(point: PerfPointRecord | Mapping[str, Any]) -> tuple[int, ScheduleRecord]:
    """A point's batch size and schedule: all that says how its batches were scheduled
    (read from a whole point, or from a partial one holding only these)."""
    if isinstance(point, PerfPointRecord):
        return point.batch_size, point.schedule
    point = mapping(point)
    return mapping(point.get("params")).get("batch_size", 1), ScheduleRecord.of(
        point.get("schedule")
    )


@dataclass(frozen=True)
class PerfSection:
    """The ``perf`` section: the device the numbers are for, and the points measured."""

    device: str | None
    points: tuple[PerfPointRecord, ...]

    @classmethod
    def of(cls, section: Any) -> PerfSection | None:
        if section is None:
            return None
        section = mapping(section)
        points = []
        for index, point in enumerate(section.get("points") or ()):
            try:
                points.append(PerfPointRecord.of(point))
            except ResultsError as exc:
                raise ResultsError(f"perf.points[{index}]: {exc}") from None
        return cls(device=section.get("device") or None, points=tuple(points))


def perf_points(points: Sequence[PerfPointRecord | Mapping[str, Any]]) -> list[PerfPointRecord]:
    """Points as records, whether read from a file or just built by kit.perf_run."""
    return [PerfPointRecord.of(p) for p in points]
