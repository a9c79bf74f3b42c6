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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kit.references import PERF_METRICS

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
PATH_KEY = "_path"  # in memory only: where a document was read from (never written)


class ResultsError(ValueError):
    """A results.json that cannot be used (missing, unreadable, other schema, malformed)."""


def _mapping(value: Any) -> Mapping[str, Any]:
    """A section as a mapping; anything else (missing, null, a stray value) as empty."""
    return value if isinstance(value, Mapping) else {}


def _known(cls: type, section: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``section`` that name fields of ``cls`` (the rest stays in the raw dict)."""
    return {f.name: section[f.name] for f in fields(cls) if f.name in section}


# ----------------------------------------------------------------------------------------
# Reading a file
# ----------------------------------------------------------------------------------------


def results_file(path: Path) -> Path:
    """A run folder's results.json, or ``path`` itself when it is a file."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() else path


def check_schema(document: Mapping[str, Any], where: str) -> None:
    """Refuse a document of another schema version, saying which side to update."""
    version = document.get("schema_version")
    if version == SCHEMA_VERSION:
        return
    newer = isinstance(version, int) and version > SCHEMA_VERSION
    raise ResultsError(
        f"{where}: schema_version {version!r}, this kit reads {SCHEMA_VERSION}. "
        + (
            "It was written by a newer kit: update this checkout (git pull) to read it."
            if newer
            else "It was written by an older or different tool: re-run it with this kit."
        )
    )


def load_document(path: Path) -> dict[str, Any]:
    """A run folder's results.json (or the file itself) as written, schema checked, with
    where it was read from under ``PATH_KEY``."""
    file = results_file(path)
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise ResultsError(f"{file}: cannot be read ({exc.strerror})") from exc
    except ValueError as exc:
        raise ResultsError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{file}: holds {type(data).__name__}, not a results object")
    check_schema(data, str(file))
    data[PATH_KEY] = str(file)
    return data


def read_run(path: Path) -> RunRecord:
    """A run folder or results.json file as a RunRecord; ResultsError if it cannot be used."""
    document = load_document(path)
    try:
        return RunRecord.of(document)
    except ResultsError as exc:
        raise ResultsError(f"{document[PATH_KEY]}: {exc}") from None


def as_run_record(run: RunRecord | Mapping[str, Any]) -> RunRecord:
    """A RunRecord from a record or a document already in memory (not schema checked)."""
    return run if isinstance(run, RunRecord) else RunRecord.of(run)


# ----------------------------------------------------------------------------------------
# The envelope: engine and environment
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineRecord:
    """The configuration vLLM actually ran with (kit.engine.engine_config); older files may
    lack any of it. ``config`` holds every recorded key, these fields the ones readers use."""

    backend: str = "offline"  # "offline" (vllm.LLM in the kernel) or "server" (over HTTP)
    endpoint: str | None = None  # server: its address, never with credentials
    served_model: str | None = None  # server: the model name it serves
    server_version: str | None = None  # server: the vLLM version it reports
    scheduling: str | None = None  # "vendor" or "vllm" (docs/methodology.md)
    scheduling_means: str | None = None
    vllm_version: str | None = None
    weights: str | None = None  # "checkpoint" or "dummy"
    weights_note: str | None = None
    version_note: str | None = None
    devices: int | None = None
    dtype: str | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    chunked_prefill: bool | None = None
    engine_core: str | None = None
    block_size: int | None = None
    kv_cache_tokens: int | None = None
    prefix_caching: bool | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    data_parallel_size: int | None = None
    config: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, section: Any) -> EngineRecord | None:
        """None before the engine started (or in files older than the section)."""
        section = _mapping(section)
        if not section:
            return None
        return cls(**{**_known(cls, section), "config": dict(section)})


@dataclass(frozen=True)
class ModelRecord:
    """Which model files ran (kit.environment.model_provenance)."""

    path: str | None = None
    config_sha256: str | None = None
    download_manifest: dict[str, Any] | None = None
    smoke: dict[str, Any] | None = None  # the kit's tiny model: builder version and seed
    remote_code_changes: Any = None

    @classmethod
    def of(cls, section: Any) -> ModelRecord:
        return cls(**_known(cls, _mapping(section)))

    @property
    def revision(self) -> str:
        """The download manifest's resolved commit, else the tiny model's build, else the
        config hash, else "unknown"."""
        manifest = self.download_manifest or {}
        for key in ("resolved_revision", "commit", "resolved_commit", "sha"):
            if manifest.get(key):
                return f"{manifest.get('repo_id', '')}@{str(manifest[key])[:12]}".lstrip("@")
        if self.smoke:
            return f"smoke v{self.smoke.get('builder_version')} seed {self.smoke.get('seed')}"
        if self.config_sha256:
            return f"config {self.config_sha256[:12]}"
        return "unknown"


@dataclass(frozen=True)
class EnvironmentRecord:
    """Provenance (kit.environment.capture): versions, accelerator, model files."""

    kit_version: str | None = None
    accelerator: dict[str, Any] = field(default_factory=dict)
    model: ModelRecord = field(default_factory=ModelRecord)
    packages: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, section: Any) -> EnvironmentRecord:
        section = _mapping(section)
        return cls(
            kit_version=section.get("kit_version"),
            accelerator=dict(_mapping(section.get("accelerator"))),
            model=ModelRecord.of(section.get("model")),
            packages=dict(_mapping(section.get("packages"))),
            git=dict(_mapping(section.get("git"))),
            raw=dict(section),
        )

    @property
    def accelerator_name(self) -> str | None:
        return self.accelerator.get("name") or self.accelerator.get("device") or None

    @property
    def kit_major(self) -> str:
        """The kit's major version: runs of different majors may measure differently."""
        return str(self.kit_version if "kit_version" in self.raw else "?").split(".")[0]


# ----------------------------------------------------------------------------------------
# perf
# ----------------------------------------------------------------------------------------


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
        return cls(**_known(cls, _mapping(section)))


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
        section = _mapping(section)
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
        section = _mapping(section)
        batches = section.get("iterations")  # the per-batch list replaces the summary's count
        return cls(
            **{k: v for k, v in _known(cls, section).items() if k != "batches"},
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
        section = _mapping(section)
        ratios = _mapping(section.get("ratios"))
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
        section = _mapping(section)
        return cls(**_known(cls, section)) if section else None


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
        section = _mapping(section)
        if not section:
            return None
        shape = dict(_mapping(section.get("shape")))
        plain = {
            k: v
            for k, v in _known(cls, section).items()
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
        return span if isinstance(span, RequestSpan) else cls(**_known(cls, _mapping(span)))


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
        point = _mapping(point)
        params = _mapping(point.get("params"))
        missing = [k for k in ("input_len", "max_output_len", "batch_size") if k not in params]
        if missing:
            raise ResultsError(f"a perf point's params lack {', '.join(missing)}")
        vendor = _mapping(point.get("vendor"))
        return cls(
            input_len=params["input_len"],
            max_output_len=params["max_output_len"],
            batch_size=params["batch_size"],
            input_vision_shape=params.get("input_vision_shape"),
            num_crops=params.get("num_crops"),
            params=dict(params),
            vendor={k: vendor.get(k) for k in PERF_METRICS},
            vendor_per_iteration={
                k: tuple(_mapping(vendor.get("per_iteration")).get(k) or ()) for k in PERF_METRICS
            },
            standard=StandardRecord.of(point.get("standard")),
            schedule=ScheduleRecord.of(point.get("schedule")),
            references=tuple(ReferenceComparison.of(r) for r in point.get("references") or ()),
            roofline=RooflineRecord.of(point.get("roofline")),
            timeline=tuple(RequestSpan.of(s) for s in point.get("timeline") or ()),
            observed=dict(_mapping(point.get("observed"))),
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
    point = _mapping(point)
    return _mapping(point.get("params")).get("batch_size", 1), ScheduleRecord.of(
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
        section = _mapping(section)
        points = []
        for index, point in enumerate(section.get("points") or ()):
            try:
                points.append(PerfPointRecord.of(point))
            except ResultsError as exc:
                raise ResultsError(f"perf.points[{index}]: {exc}") from None
        return cls(device=section.get("device") or None, points=tuple(points))


# ----------------------------------------------------------------------------------------
# mmmu and demo
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    """An MMMU accuracy: acc rounded to 3 decimals over n questions (docs/mmmu.md)."""

    acc: float | None = None
    n: int | None = None
    correct: int | None = None

    @classmethod
    def of(cls, section: Any) -> Accuracy | None:
        section = _mapping(section)
        return cls(**_known(cls, section)) if section else None


@dataclass(frozen=True)
class MMMURecord:
    """The ``mmmu`` section (kit.mmmu_report.mmmu_section): the official Overall (the
    headline; the section's top-level ``overall``), the vendor-strict Overall beside it, and
    the published references each compared with one of them."""

    official: Accuracy
    vendor_strict: Accuracy | None  # None in files older than the vendor-strict scoring
    differing_questions: int | None  # questions the two scorings judge differently
    references: tuple[dict[str, Any], ...]
    parameters: dict[str, Any]  # what was scored
    counts: dict[str, Any]
    section: dict[str, Any] = field(repr=False)  # everything, groups and subjects included

    @classmethod
    def of(cls, section: Any) -> MMMURecord | None:
        section = _mapping(section)
        if not section:
            return None
        scoring = _mapping(section.get("scoring"))
        official = Accuracy.of(section.get("overall")) or Accuracy.of(
            _mapping(scoring.get("official")).get("overall")
        )
        return cls(
            official=official or Accuracy(),
            vendor_strict=Accuracy.of(_mapping(scoring.get("vendor_strict")).get("overall")),
            differing_questions=scoring.get("differing_questions"),
            references=tuple(section.get("references") or ()),
            parameters=dict(_mapping(section.get("parameters"))),
            counts=dict(_mapping(section.get("counts"))),
            section=dict(section),
        )


@dataclass(frozen=True)
class DemoRecord:
    """The ``demo`` section (kit.demo.DemoResult): one request's answer and timing."""

    ttft_ms: float | None = None
    decode_ms: float | None = None
    e2e_ms: float | None = None
    wall_ms: float | None = None
    num_prompt_tokens: int | None = None
    expected_prompt_tokens: int | None = None
    num_output_tokens: int | None = None
    output_tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
    finish_reason: str | None = None
    generated_text: str | None = None
    warmup_requests: int | None = None
    section: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, section: Any) -> DemoRecord | None:
        section = _mapping(section)
        if not section:
            return None
        return cls(**{**_known(cls, section), "section": dict(section)})


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One results.json: who ran what, how it ended, and its sections (None when absent)."""

    schema_version: Any
    notebook: str
    status: str  # running, ok, failed, interrupted (kit.run.STATUSES)
    label: str
    started_at: str
    finished_at: str | None
    duration_s: float | None
    error: str | None
    parameters: dict[str, Any]
    engine: EngineRecord | None
    environment: EnvironmentRecord
    perf: PerfSection | None
    mmmu: MMMURecord | None
    demo: DemoRecord | None
    path: Path | None = None  # the results.json it was read from
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> RunRecord:
        """Read a document already in memory (the schema version is not checked here:
        ``read_run`` does that for files)."""
        parameters = dict(_mapping(document.get("parameters")))
        path = document.get(PATH_KEY)
        return cls(
            schema_version=document.get("schema_version"),
            notebook=str(document.get("notebook") or "?"),
            status=str(document.get("status") or "?"),
            label=str(document.get("label") or parameters.get("label") or ""),
            started_at=str(document.get("started_at") or ""),
            finished_at=document.get("finished_at"),
            duration_s=document.get("duration_s"),
            error=document.get("error"),
            parameters=parameters,
            engine=EngineRecord.of(document.get("engine")),
            environment=EnvironmentRecord.of(document.get("environment")),
            perf=PerfSection.of(document.get("perf")),
            mmmu=MMMURecord.of(document.get("mmmu")),
            demo=DemoRecord.of(document.get("demo")),
            path=Path(path) if path else None,
            document=dict(document),
        )

    @property
    def folder(self) -> Path:
        """The run folder (the results file's folder; "." for a document never on disk)."""
        return self.path.parent if self.path else Path(".")

    @property
    def device(self) -> str:
        """The device the numbers are for: the perf run's own name for it, else the
        accelerator the environment found."""
        if self.perf and self.perf.device:
            return str(self.perf.device)
        return str(self.environment.accelerator_name or "unknown")

    @property
    def model_revision(self) -> str:
        return self.environment.model.revision

    def perf_points(self) -> list[PerfPointRecord]:
        """The measured perf points (empty for other notebooks)."""
        return list(self.perf.points) if self.perf else []


def perf_points(points: Sequence[PerfPointRecord | Mapping[str, Any]]) -> list[PerfPointRecord]:
    """Points as records, whether read from a file or just built by kit.perf_run."""
    return [PerfPointRecord.of(p) for p in points]
