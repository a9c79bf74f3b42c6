"""results.json: where it lies, its schema version, its envelope, and reading it back.

Every notebook writes one results.json; reports, the run index, compare and reproduce read
it back only through kit.records, so each field is named in one place, and a file written
by an older kit reads as "not recorded" where it lacks something instead of failing. Each
section has one class (kit.records.engine, .environment, .perf, .mmmu, .demo, .compare,
.download, .reproduce, .numerics) used to write it and to read it; this module owns the envelope
(who ran what, how it ended) and the file itself.

Schema versions: 2 (this kit) adds the numbers behind every reproduce verdict and records
an infinite parameter (``request_rate``) as ``"inf"`` where 1 wrote null; version 1 files
are read as well. Nothing here imports vLLM or an engine: it works wherever a results.json
was copied to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kit.core import jsonio
from kit.records.base import ResultsError, mapping
from kit.records.compare import CompareRecord
from kit.records.demo import DemoRecord
from kit.records.download import DownloadSection
from kit.records.engine import EngineRecord
from kit.records.environment import EnvironmentRecord
from kit.records.mmmu import MMMURecord
from kit.records.numerics import NumericsComparison, NumericsRunRecord
from kit.records.perf import PerfPointRecord, PerfSection
from kit.records.reproduce import ReproduceRecord

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
RESULTS_FILE = "results.json"
PATH_KEY = "_path"  # in memory only: where a document was read from (never written)
# A run is "running" while its notebook works, then "ok", "failed", or "interrupted" (stopped
# by Ctrl-C / SIGTERM, or its process found gone while the record still said "running").
STATUSES = ("running", "ok", "failed", "interrupted")


class Section(Protocol):
    """A results.json section record."""

    def to_dict(self) -> Any: ...


# ----------------------------------------------------------------------------------------
# The file
# ----------------------------------------------------------------------------------------


def results_file(path: Path) -> Path:
    """A run folder's results.json, or ``path`` itself when it is a file."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() else path


def check_schema(document: Mapping[str, Any], where: str) -> None:
    """Refuse a document of a schema version this kit cannot read, saying which side to
    update."""
    version = document.get("schema_version")
    if version in READABLE_VERSIONS:
        return
    newer = isinstance(version, int) and version > SCHEMA_VERSION
    readable = " or ".join(map(str, READABLE_VERSIONS))
    raise ResultsError(
        f"{where}: schema_version {version!r}, this kit reads {readable}. "
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


def running_process(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The process a record still ``running`` names (kit.core.processes.process_identity),
    or None: finished, or a record that names no process the kit could check."""
    if not document or document.get("status") != "running":
        return None
    identity = document.get("process")
    return identity if isinstance(identity, dict) and identity else None


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


# ----------------------------------------------------------------------------------------
# The envelope
# ----------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A section as JSON: its record's ``to_dict()``, or the value itself."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def envelope(
    *,
    notebook: str,
    status: str,
    parameters: Mapping[str, Any],
    sections: Mapping[str, Any] | None = None,
    environment: EnvironmentRecord | Mapping[str, Any] | None = None,
    error: str | None = None,
    label: str = "",
    started_at: str | None = None,
    finished_at: str | None = None,
    duration_s: float | None = None,
    process: Mapping[str, Any] | None = None,
    engine_processes: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The one shape of a results.json document: who ran what and how it ended, then the
    notebook's sections (records or plain values), the environment and the error."""
    return {
        "schema_version": SCHEMA_VERSION,
        "notebook": notebook,
        "status": status,
        "label": label,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_s": duration_s,
        "process": None if process is None else dict(process),
        "engine_processes": [dict(p) for p in engine_processes or ()],
        "parameters": dict(parameters),
        **{key: plain(value) for key, value in (sections or {}).items()},
        "environment": plain(environment) if environment is not None else {},
        "error": error,
    }


@dataclass(frozen=True)
class RunRecord:
    """One results.json: who ran what, how it ended, and its sections (None when absent)."""

    schema_version: Any
    notebook: str
    status: str  # one of STATUSES
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
    compare: CompareRecord | None = None
    download: DownloadSection | None = None
    reproduce: ReproduceRecord | None = None
    numerics_run: NumericsRunRecord | None = None
    numerics: NumericsComparison | None = None  # the run against its reference
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
            compare=CompareRecord.of(document.get("compare")),
            download=DownloadSection.of(document.get("download")),
            reproduce=ReproduceRecord.of(document.get("reproduce")),
            numerics_run=NumericsRunRecord.of(document.get("numerics_run")),
            numerics=NumericsComparison.of(document.get("numerics")),
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
        return self.environment.model_files.revision

    def perf_points(self) -> list[PerfPointRecord]:
        """The measured perf points (empty for other notebooks)."""
        return list(self.perf.points) if self.perf else []
