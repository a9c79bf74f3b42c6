"""The ``perf`` section of results.json: one class per part of a point, each used by kit.perf
to write it and by reports, compare and reproduce to read it back.

A point (:class:`PerfPointRecord`) holds its scenario parameters, the vendor's four columns
and the standard distributions, how its batches were scheduled, the vendor rows of the same
scenario with ratios, the first timed batch's timeline, what a server point saw (load,
histograms), the lengths vLLM reported and the roofline bounds. Files of an older kit may
lack any part: it then reads as "not recorded". docs/methodology.md says what each number
means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kit.core.stats import Distribution
from kit.records.base import ResultsError, known_fields, mapping
from kit.records.caches import CacheUse
from kit.records.references import PERF_METRICS, ReferenceRow
from kit.records.server_count import ServerCount

#: The standard column set: results key (ms) -> the RequestTiming attribute (s) it reads.
STANDARD_METRICS: dict[str, str] = {
    "ttft_ms": "ttft_s",
    "tpot_ms": "tpot_s",
    "e2e_ms": "e2e_s",
    "prefill_ms": "prefill_s",
    "decode_ms": "decode_s",
    "queue_ms": "queue_s",
}


def point_label(input_len: int, max_output_len: int, batch_size: int) -> str:
    """The one way a perf point (or a vendor row of the same scenario) is named in tables,
    plots and headlines; input, output and batch in the vendor table's column order."""
    return f"in {input_len} / out {max_output_len} / bs {batch_size}"


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(values) if isinstance(values, list | tuple) else ()


@dataclass(frozen=True)
class VendorColumns:
    """The vendor table's four columns, each the mean of its per-iteration values (None
    where not measurable), and the values behind each mean."""

    ttft_ms: float | None = None
    tps: float | None = None
    prefill_ms: float | None = None
    decode_ms_per_token: float | None = None
    per_iteration: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in PERF_METRICS}

    def to_dict(self) -> dict[str, Any]:
        per_iteration = {name: list(self.per_iteration.get(name, ())) for name in PERF_METRICS}
        return {**self.metrics(), "per_iteration": per_iteration}

    @classmethod
    def of(cls, section: Any) -> VendorColumns:
        section = mapping(section)
        per_iteration = mapping(section.get("per_iteration"))
        return cls(
            **{name: section.get(name) for name in PERF_METRICS},
            per_iteration={name: _floats(per_iteration.get(name)) for name in PERF_METRICS},
        )


@dataclass(frozen=True)
class StandardColumns:
    """Per-request distributions (ms) over every timed request, and throughput per iteration."""

    metrics: Mapping[str, Distribution]  # the STANDARD_METRICS recorded, in that order
    tps_per_iteration: tuple[float, ...] = ()
    tps_mean: float | None = None
    tps_std: float | None = None
    iterations: int | None = None
    num_requests: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: self.metrics[name].to_dict() for name in STANDARD_METRICS},
            "tps_per_iteration": list(self.tps_per_iteration),
            "tps_mean": self.tps_mean,
            "tps_std": self.tps_std,
            "iterations": self.iterations,
            "num_requests": self.num_requests,
        }

    @classmethod
    def of(cls, section: Any) -> StandardColumns | None:
        section = mapping(section)
        if not section:
            return None
        return cls(
            metrics={k: Distribution.of(section[k]) for k in STANDARD_METRICS if k in section},
            tps_per_iteration=_floats(section.get("tps_per_iteration")),
            tps_mean=section.get("tps_mean"),
            tps_std=section.get("tps_std"),
            iterations=section.get("iterations"),
            num_requests=section.get("num_requests"),
        )


@dataclass(frozen=True)
class BatchSchedule:
    """How one batch was first scheduled, from its requests' timestamps (kit.perf.batches):
    spreads are last minus first, ms; ``staggered`` when its requests were first scheduled
    in more than one engine step (None: the engine did not report every request's)."""

    requests: int = 0
    arrival_spread_ms: float | None = None
    scheduling_spread_ms: float | None = None
    scheduling_steps: int = 0
    first_token_steps: int = 0
    staggered: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> BatchSchedule:
        return cls(**known_fields(cls, mapping(section)))


@dataclass(frozen=True)
class ScheduleRecord:
    """How a point's timed batches (and its TTFT probe) were first scheduled, against what
    the token budget needs (``budget_steps``); every field None in files that predate it."""

    batches: tuple[BatchSchedule, ...] = ()  # per timed iteration ("iterations" in the file)
    staggered_iterations: int | None = None
    unknown_iterations: int | None = None
    probe_staggered: bool | None = None
    arrival_spread_ms_max: float | None = None
    scheduling_spread_ms_max: float | None = None
    scheduling_steps_max: int | None = None
    staggered: bool | None = None  # any batch staggered; None: not recorded or not reported
    budget_steps: int | None = None
    staggered_beyond_budget: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "batches"}
        return {"iterations": [batch.to_dict() for batch in self.batches], **out}

    @classmethod
    def of(cls, section: Any) -> ScheduleRecord:
        section = mapping(section)
        batches = section.get("iterations")
        values = {k: v for k, v in known_fields(cls, section).items() if k != "batches"}
        return cls(
            **values,
            batches=tuple(BatchSchedule.of(b) for b in batches)
            if isinstance(batches, list)
            else (),
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
    metrics: Mapping[str, float | None]  # PERF_METRICS, the vendor's values
    ratios: Mapping[str, float | None]  # PERF_METRICS, measured / vendor
    warnings: tuple[str, ...] = ()
    card: int | None = None
    input_len: int | None = None
    output_len: int | None = None
    num_prompts: int | None = None
    max_model_len: int | None = None

    def to_dict(self) -> dict[str, Any]:
        row = {
            "device": self.device,
            "card": self.card,
            "max_model_len": self.max_model_len,
            "input_len": self.input_len,
            "output_len": self.output_len,
            "num_prompts": self.num_prompts,
        }
        return {
            **row,
            **{name: self.metrics.get(name) for name in PERF_METRICS},
            "ratios": {name: self.ratios.get(name) for name in PERF_METRICS},
            "warnings": list(self.warnings),
        }

    @classmethod
    def of_row(
        cls, row: ReferenceRow, ratios: Mapping[str, float | None], warnings: Sequence[str]
    ) -> ReferenceComparison:
        """A vendor row (params/references.yaml) beside a measured point."""
        return cls(
            device=row.device,
            metrics=row.metrics(),
            ratios=dict(ratios),
            warnings=tuple(warnings),
            card=row.card,
            input_len=row.input_len,
            output_len=row.output_len,
            num_prompts=row.num_prompts,
            max_model_len=row.max_model_len,
        )

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
class Efficiency:
    """bound / measured; ``error`` when above 1 (a bound cannot be beaten: it is wrong)."""

    value: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> Efficiency | None:
        section = mapping(section)
        return cls(**known_fields(cls, section)) if section else None


@dataclass(frozen=True)
class PointShape:
    """What one perf point asks of the device, for its roofline bounds."""

    input_len: int
    max_output_len: int
    batch_size: int
    image_views: int  # image-encoder passes per request (crops and global views)
    prefilled_together: int  # requests whose prefill one measured prefill covers
    decoding_together: int  # sequences one decode step serves

    @property
    def mean_context(self) -> float:
        return self.input_len + self.max_output_len / 2

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> PointShape | None:
        values = known_fields(cls, mapping(section))
        return cls(**values) if len(values) == len(fields(cls)) else None


@dataclass(frozen=True)
class RooflineRecord:
    """A point's roofline bounds for one device (values None, with ``reason``, where the
    device has no recorded peaks), the shape they were computed for, and the efficiencies."""

    device: str | None = None
    decode_ms_per_token: float | None = None
    prefill_ms: float | None = None
    prefill_tflop: float | None = None
    decode_gb_per_step: float | None = None
    reason: str | None = None  # why a bound is missing
    source: str | None = None
    shape: PointShape | None = None
    decode_efficiency: Efficiency | None = None
    prefill_efficiency: Efficiency | None = None

    @property
    def decoding_together(self) -> int | None:
        return self.shape.decoding_together if self.shape else None

    @property
    def prefilled_together(self) -> int | None:
        return self.shape.prefilled_together if self.shape else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "device",
                "decode_ms_per_token",
                "prefill_ms",
                "prefill_tflop",
                "decode_gb_per_step",
                "reason",
                "source",
            )
        }
        if self.shape is not None:
            out["shape"] = self.shape.to_dict()
        for name in ("decode_efficiency", "prefill_efficiency"):
            efficiency = getattr(self, name)
            if efficiency is not None:
                out[name] = efficiency.to_dict()
        return out

    @classmethod
    def of(cls, section: Any) -> RooflineRecord | None:
        """None when the run had no model figures (or predates the section)."""
        section = mapping(section)
        if not section:
            return None
        plain = {
            k: v
            for k, v in known_fields(cls, section).items()
            if k not in ("shape", "decode_efficiency", "prefill_efficiency")
        }
        return cls(
            **plain,
            shape=PointShape.of(section.get("shape")),
            decode_efficiency=Efficiency.of(section.get("decode_efficiency")),
            prefill_efficiency=Efficiency.of(section.get("prefill_efficiency")),
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

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)

    @classmethod
    def of(cls, span: RequestSpan | Mapping[str, Any]) -> RequestSpan:
        return span if isinstance(span, RequestSpan) else cls(**known_fields(cls, mapping(span)))


@dataclass(frozen=True)
class LoadSummary:
    """One point of a server load sweep, as the client saw it (``vllm bench serve``'s
    definitions: kit.perf.arrivals)."""

    requests: int = 0
    completed: int = 0
    failed: int = 0
    wall_s: float = 0.0
    request_throughput: float = 0.0  # completed requests / s
    output_throughput: float = 0.0  # output tokens / s
    ttft_ms: Distribution = field(default_factory=Distribution)
    tpot_ms: Distribution = field(default_factory=Distribution)
    itl_ms: Distribution = field(default_factory=Distribution)
    e2e_ms: Distribution = field(default_factory=Distribution)
    goodput: float | None = None  # requests / s meeting every SLO given; None without SLOs
    slo_met: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
            out[key] = getattr(self, key).to_dict()
        return out

    @classmethod
    def of(cls, section: Any) -> LoadSummary:
        values = known_fields(cls, mapping(section))
        for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
            values[key] = Distribution.of(values.get(key))
        return cls(**values)


@dataclass(frozen=True)
class ServedRecord:
    """What a server point adds: the client's load summary over its timed iterations, the
    server's own histogram means (``{key: {count, mean_ms}}``), samples for the plots, SLOs."""

    client: LoadSummary
    server: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    samples: Mapping[str, Sequence[float]] = field(default_factory=dict)  # ttft_ms, itl_ms
    slo: Mapping[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client.to_dict(),
            "server": {k: dict(v) for k, v in self.server.items()},
            "samples": {k: list(v) for k, v in self.samples.items()},
            "slo": dict(self.slo),
        }

    @classmethod
    def of(cls, section: Any) -> ServedRecord | None:
        section = mapping(section)
        if not section:
            return None
        return cls(
            client=LoadSummary.of(section.get("client")),
            server={k: dict(mapping(v)) for k, v in mapping(section.get("server")).items()},
            samples={k: list(v or ()) for k, v in mapping(section.get("samples")).items()},
            slo=dict(mapping(section.get("slo"))),
        )


@dataclass(frozen=True)
class PerfPointRecord:
    """One entry of ``perf.points``."""

    params: Mapping[str, Any]  # the scenario: input_len, max_output_len, batch_size, ...
    vendor: VendorColumns = field(default_factory=VendorColumns)
    standard: StandardColumns | None = None
    schedule: ScheduleRecord = field(default_factory=ScheduleRecord)
    references: tuple[ReferenceComparison, ...] = ()
    timeline: tuple[RequestSpan, ...] = ()
    served: ServedRecord | None = None
    observed: Mapping[str, list[int]] = field(default_factory=dict)  # lengths vLLM reported
    roofline: RooflineRecord | None = None
    workload_salt: str | None = None  # mixed into every prompt and picture of the attempt
    caches: CacheUse | None = None  # what the caches served inside the timed windows
    cut: str | None = None  # a point Ctrl-C stopped after some timed iterations: how many

    def __post_init__(self) -> None:
        missing = [k for k in ("input_len", "max_output_len", "batch_size") if k not in self.params]
        if missing:
            raise ResultsError(f"a perf point's params lack {', '.join(missing)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "vendor": self.vendor.to_dict(),
            "standard": None if self.standard is None else self.standard.to_dict(),
            "schedule": self.schedule.to_dict(),
            "references": [r.to_dict() for r in self.references],
            "timeline": [span.to_dict() for span in self.timeline],
            "served": None if self.served is None else self.served.to_dict(),
            "observed": dict(self.observed),
            "roofline": None if self.roofline is None else self.roofline.to_dict(),
            "workload_salt": self.workload_salt,
            "caches": None if self.caches is None else self.caches.to_dict(),
            "cut": self.cut,
        }

    @classmethod
    def of(cls, point: PerfPointRecord | Mapping[str, Any]) -> PerfPointRecord:
        if isinstance(point, PerfPointRecord):
            return point
        point = mapping(point)
        return cls(
            params=dict(mapping(point.get("params"))),
            vendor=VendorColumns.of(point.get("vendor")),
            standard=StandardColumns.of(point.get("standard")),
            schedule=ScheduleRecord.of(point.get("schedule")),
            references=tuple(ReferenceComparison.of(r) for r in point.get("references") or ()),
            timeline=tuple(RequestSpan.of(s) for s in point.get("timeline") or ()),
            served=ServedRecord.of(point.get("served")),
            observed=dict(mapping(point.get("observed"))),
            roofline=RooflineRecord.of(point.get("roofline")),
            workload_salt=point.get("workload_salt"),
            caches=CacheUse.of(point.get("caches")),
            cut=point.get("cut"),
        )

    @property
    def input_len(self) -> int:
        return int(self.params["input_len"])

    @property
    def max_output_len(self) -> int:
        return int(self.params["max_output_len"])

    @property
    def batch_size(self) -> int:
        """Requests per timed iteration (a load point: its number of requests)."""
        return int(self.params["batch_size"])

    @property
    def input_vision_shape(self) -> list[list[int]] | None:
        shape = self.params.get("input_vision_shape")
        return None if shape is None else [[int(h), int(w)] for h, w in shape]

    @property
    def num_crops(self) -> int | None:
        return self.params.get("num_crops")

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


@dataclass(frozen=True)
class PerfSection:
    """The ``perf`` section: the device the numbers are for, the points measured, and how a
    server the kit did not start counted the run's images."""

    device: str | None
    points: tuple[PerfPointRecord, ...]
    server_count: ServerCount | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "points": [p.to_dict() for p in self.points],
            "server_count": None if self.server_count is None else self.server_count.to_dict(),
        }

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
        return cls(
            device=section.get("device") or None,
            points=tuple(points),
            server_count=ServerCount.of(section.get("server_count")),
        )


def perf_points(points: Sequence[PerfPointRecord | Mapping[str, Any]]) -> list[PerfPointRecord]:
    """Points as records, whether read from a file or just measured."""
    return [PerfPointRecord.of(p) for p in points]
