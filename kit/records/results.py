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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.records.base import ResultsError, known_fields, mapping
from kit.records.demo import DemoRecord
from kit.records.mmmu import MMMURecord
from kit.records.perf import PerfPointRecord, PerfSection

SCHEMA_VERSION = 1


RESULTS_FILE = "results.json"


PATH_KEY = "_path"  # in memory only: where a document was read from (never written)


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


def read_document(path: Path) -> dict[str, Any] | None:
    """results.json as written, for the kit's own bookkeeping (its status, its process):
    None when it is missing, unreadable or not a JSON object. No schema check."""
    try:
        data = json.loads(results_file(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_document(path: Path, document: Mapping[str, Any]) -> Path:
    """Write a results document as strict JSON (kit.core.jsonio)."""
    return jsonio.write_json(results_file(path), dict(document))


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


@dataclass(frozen=True)
class EngineRecord:
    """The configuration vLLM actually ran with (kit.engine.engine_config); older files may
    lack any of it. ``config`` holds every recorded key, these fields the ones readers use."""

    backend: str = "offline"  # "offline" (vllm.LLM in the kernel) or "server" (over HTTP)
    endpoint: str | None = None  # server: its address, never with credentials
    served_model: str | None = None  # server: the model name it serves
    server_version: str | None = None  # server: the vLLM version it reports
    output_length_control: str | None = None  # server: how output lengths were forced
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
        section = mapping(section)
        if not section:
            return None
        return cls(**{**known_fields(cls, section), "config": dict(section)})


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
        return cls(**known_fields(cls, mapping(section)))

    @property
    def built_by_kit(self) -> bool:
        """A folder the kit built itself (its revision is the build, not a download)."""
        return self.revision.startswith("smoke ")

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
        section = mapping(section)
        return cls(
            kit_version=section.get("kit_version"),
            accelerator=dict(mapping(section.get("accelerator"))),
            model=ModelRecord.of(section.get("model")),
            packages=dict(mapping(section.get("packages"))),
            git=dict(mapping(section.get("git"))),
            raw=dict(section),
        )

    @property
    def accelerator_name(self) -> str | None:
        return self.accelerator.get("name") or self.accelerator.get("device") or None

    @property
    def kit_major(self) -> str:
        """The kit's major version: runs of different majors may measure differently."""
        return str(self.kit_version if "kit_version" in self.raw else "?").split(".")[0]


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
        parameters = dict(mapping(document.get("parameters")))
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
