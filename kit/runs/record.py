"""The run record a notebook keeps: where it writes, its parameters, results and status.

Where a notebook writes depends on how it was started:
- by ``python -m kit run``: the run folder that command made (``KIT_RUN_DIR``);
- by plain ``papermill in.ipynb out.ipynb``: next to ``out`` (``out.results.json``);
- interactively: a new folder ``outputs/<timestamp>-<notebook>-<id>/``.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.core.files import check_writable
from kit.core.params import collect
from kit.core.paths import OUTPUTS_DIR
from kit.core.processes import end_with_parent, engine_children, process_alive, process_identity
from kit.engines.logs import route_engine_logs
from kit.engines.registry import start_backend
from kit.records.environment import EnvironmentRecord
from kit.records.results import (
    RESULTS_FILE,
    Section,
    envelope,
    read_document,
    running_process,
    write_document,
)
from kit.runs.environment import capture


def new_run_dir(notebook: str, root: Path | None = None) -> Path:
    """A fresh folder ``<timestamp>-<notebook>-<id>``; never an existing one."""
    root = root or outputs_dir()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = root / f"{stamp}-{notebook}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def outputs_dir() -> Path:
    """``$KIT_OUTPUTS_DIR`` when set (tests use it), else the repo's ``outputs/``."""
    env = os.environ.get("KIT_OUTPUTS_DIR")
    return Path(env) if env else OUTPUTS_DIR


def check_outputs_writable() -> Path:
    return check_writable(
        outputs_dir(),
        "The outputs folder",
        "Run from a checkout you can write to, or set KIT_OUTPUTS_DIR to a writable folder "
        "(e.g. KIT_OUTPUTS_DIR=$HOME/kit-outputs).",
    )


def papermill_output_path() -> Path | None:
    """The output notebook of the ``papermill`` command that started this kernel, if any."""
    try:
        import psutil
        from papermill.cli import papermill as papermill_cli
    except ImportError:
        return None
    try:
        process = psutil.Process().parent()
        while process is not None:
            args = process.cmdline()
            for i, arg in enumerate(args):
                if Path(arg).name == "papermill" or (
                    arg == "-m" and args[i + 1 : i + 2] == ["papermill"]
                ):
                    rest = args[i + 2 :] if arg == "-m" else args[i + 1 :]
                    ctx = papermill_cli.make_context(
                        "papermill", list(rest), resilient_parsing=True
                    )
                    output = ctx.params.get("output_path")
                    if output and output != "-":
                        return (Path(process.cwd()) / output).resolve()
                    return None
            process = process.parent()
    except (psutil.Error, IndexError, ValueError):
        return None
    return None


@dataclass
class RunPaths:
    folder: Path
    results: Path
    engine_log: Path
    prefix: str = ""  # "out." when writing next to a papermill output notebook

    def artifact(self, name: str) -> Path:
        """Where a run's extra file goes (predictions.jsonl, figures, ...)."""
        return self.folder / f"{self.prefix}{name}"

    @classmethod
    def for_notebook(cls, notebook: str) -> RunPaths:
        env_dir = os.environ.get("KIT_RUN_DIR")
        if env_dir:
            folder = Path(env_dir)
            return cls(folder, folder / RESULTS_FILE, folder / "engine.log")
        output = papermill_output_path()
        if output is not None:
            stem = output.with_suffix("")
            return cls(
                output.parent,
                Path(f"{stem}.{RESULTS_FILE}"),
                Path(f"{stem}.engine.log"),
                prefix=f"{stem.name}.",
            )
        folder = new_run_dir(notebook)
        return cls(folder, folder / RESULTS_FILE, folder / "engine.log")


@dataclass
class Run:
    notebook: str
    params: Any
    paths: RunPaths
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    results: dict[str, Section | Any] = field(default_factory=dict)  # the notebook's sections
    environment: EnvironmentRecord | None = None
    engine_processes: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)

    def parameters(self) -> dict[str, Any]:
        """As recorded: infinity (request_rate: all at once) as "inf", which strict JSON can
        hold (it would be null) and the parameter checks read back as infinity."""
        return {
            name: "inf" if isinstance(value, float) and math.isinf(value) else value
            for name, value in asdict(self.params).items()
        }

    def record(self, key: str, value: Section | Any) -> None:
        """Store a result section (its record, kit.records) and save at once, so a later
        failure keeps it."""
        self.results[key] = value
        self.save("running")

    def start_engine(self, engine_params=None):
        """Start the run's backend (kit.engines.registry) with its parameters (or
        ``engine_params``): vLLM in this kernel, or a server; its output goes to engine.log."""

        engine = start_backend(engine_params or self.params, log_file=self.paths.engine_log)
        self.environment = capture(engine.device, engine.model_path)
        if engine.remote_code_changes:  # the user opted in: say so in every report
            self.environment = self.environment.with_remote_code_changes(engine.remote_code_changes)
        self.results["engine"] = engine.config
        self.engine_processes = engine_children()
        self.save("running")
        return engine

    def document(self, status: str, error: str | None = None) -> dict[str, Any]:
        return envelope(
            notebook=self.notebook,
            status=status,
            label=getattr(self.params, "label", ""),
            started_at=self.started_at,
            finished_at=datetime.now(UTC).isoformat() if status != "running" else None,
            duration_s=round(time.monotonic() - self._t0, 3),
            process=process_identity(),
            engine_processes=self.engine_processes,
            parameters=self.parameters(),
            sections=self.results,
            environment=self.environment,
            error=error,
        )

    def save(self, status: str, error: str | None = None) -> Path:
        return write_document(self.paths.results, self.document(status, error))

    def finish(self, model_path: str | Path | None = None) -> Path:
        """Save the record as ok. The environment is the one captured when the engine
        started, else captured now (with ``model_path``'s provenance: a model this run wrote
        without starting an engine, as the download notebook does)."""
        if self.environment is None:
            self.environment = capture(model_path=None if model_path is None else str(model_path))
        return self.save("ok")


def start(notebook: str, schema: type, namespace: dict[str, Any]) -> Run:
    """Validate the notebook's parameters and open its run record."""
    run_params = collect(schema, namespace)
    run = Run(notebook=notebook, params=run_params, paths=RunPaths.for_notebook(notebook))
    run.save("running")
    end_with_parent()

    route_engine_logs(run.paths.engine_log)  # vLLM may be imported before its engine starts
    return run


def mark_if_gone(path: Path) -> bool:
    """Turn a ``running`` record whose process is gone into ``interrupted``; True if it did."""
    document = read_document(path)
    if document is None:
        return False
    identity = running_process(document)
    if identity is None or process_alive(identity):
        return False
    last_written = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
    document["status"] = "interrupted"
    document["finished_at"] = document.get("finished_at") or last_written
    document["error"] = (
        f"interrupted: the process that ran it (pid {identity.get('pid')} on "
        f"{identity.get('host')}) ended without finishing the record (killed?); what it had "
        f"saved until {last_written} is kept"
    )
    write_document(path, document)
    return True
