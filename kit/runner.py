"""``python -m kit run NOTEBOOK``: check parameters, execute with papermill, render, record.

Parameters merge as papermill merges them (``-f`` < ``-y`` < ``-p`` < ``-r``), then are
checked against the notebook's parameter dataclass and pre-flighted (model folder, images,
engine arguments) before a run folder is made or an engine is started.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kit import NOTEBOOKS_DIR, jsonio, run
from kit.params import ParameterError, build
from kit.progress import format_duration

# notebook name -> its parameter dataclass
SCHEMAS = {
    "demo": "kit.demo:DemoParams",
    "download": "kit.download:DownloadParams",
    "mmmu": "kit.mmmu_run:MMMUParams",
    "perf": "kit.perf_params:PerfParams",
    "compare": "kit.compare:CompareParams",
    "reproduce": "kit.reproduce:ReproduceParams",
}


@dataclass
class RunRequest:
    notebook: str
    files: list[str] = field(default_factory=list)
    yaml_strings: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    raw_params: list[tuple[str, str]] = field(default_factory=list)
    resume: Path | None = None  # an earlier run folder to continue in place


@dataclass
class RunOutcome:
    folder: Path
    status: str
    notebook: Path
    report: Path | None
    results: Path
    error: str | None = None
    interrupted: int | None = None  # the signal that stopped the run


def schema_for(notebook: str) -> type:
    if notebook not in SCHEMAS:
        available = ", ".join(sorted(SCHEMAS))
        raise ParameterError(f"Unknown notebook {notebook!r}. Available: {available}.")
    module, _, name = SCHEMAS[notebook].partition(":")
    return getattr(importlib.import_module(module), name)


def load_yaml_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ParameterError(f"Parameter file {path!r} does not exist (option -f).")
    data = yaml.load(file.read_text(), Loader=_loader()) or {}
    if not isinstance(data, dict):
        raise ParameterError(f"Parameter file {path!r} must hold a mapping of name: value.")
    return data


def merge_parameters(request: RunRequest) -> dict[str, Any]:
    from papermill.cli import _resolve_type

    merged: dict[str, Any] = {}
    for path in request.files:
        merged.update(load_yaml_file(path))
    for text in request.yaml_strings:
        merged.update(yaml.load(text, Loader=_loader()) or {})
    for name, value in request.params:
        merged[name] = _resolve_type(value)
    for name, value in request.raw_params:
        merged[name] = value
    return merged


def preflight(notebook: str, values: dict[str, Any]):
    """Everything that can be checked without an engine: types, names, files, engine_args."""
    params = build(schema_for(notebook), values)
    # vLLM, imported by the checks, warns before it configures its logging: the run's
    # engine.log gets those lines; the terminal should not
    vllm_logger = logging.getLogger("vllm")
    if not vllm_logger.handlers:
        vllm_logger.addHandler(logging.NullHandler())
    preflight_hook = getattr(params, "preflight", None)
    if preflight_hook is not None:
        preflight_hook()
    return params


def resume_values(folder: Path, notebook: str) -> dict[str, Any]:
    """The parameters an earlier run folder was started with."""
    saved = folder / "parameters.yaml"
    if not saved.is_file():
        raise ParameterError(
            f"--resume {str(folder)!r}: no parameters.yaml there, so it is not a run folder "
            f"made by 'python -m kit run {notebook}'."
        )
    return yaml.load(saved.read_text(), Loader=_loader()) or {}


def keep_previous_attempt(folder: Path, notebook: str) -> None:
    """Move an interrupted attempt's notebook and report aside instead of overwriting them."""
    attempt = 1
    while (folder / f"{notebook}.attempt-{attempt}.ipynb").exists():
        attempt += 1
    for name, suffix in ((notebook, ".ipynb"), ("report", ".html")):
        current = folder / f"{name}{suffix}"
        if current.exists():
            current.rename(folder / f"{name}.attempt-{attempt}{suffix}")


class Interrupted(Exception):
    """The user stopped a run (Ctrl-C is SIGINT; SIGTERM comes from kill or a scheduler)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@dataclass
class InterruptState:
    signum: int | None = None


@contextlib.contextmanager
def stop_cleanly_on_signals(results: Path):
    """SIGINT and SIGTERM stop the notebook where it is, and the run ends as "interrupted".

    The signal is passed on to the kernel as SIGINT, so the running cell raises
    KeyboardInterrupt there; papermill then saves the notebook, shuts the kernel (and the
    engine in it) down and returns. Raising in this process instead would land wherever
    papermill happens to be (a logging call swallowed it). Before the kernel has opened its
    run record, or on a second signal, it stops at once.
    """
    state = InterruptState()

    def handler(signum, frame):
        first = state.signum is None
        state.signum = signum
        kernel = kernel_identity(results)
        if first and kernel and run.process_alive(kernel):
            os.kill(int(kernel["pid"]), signal.SIGINT)
        else:
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def kernel_identity(results: Path) -> dict[str, Any] | None:
    """The kernel process named in a run record, if the record exists yet."""
    try:
        return json.loads(results.read_text()).get("process")
    except (OSError, ValueError):
        return None


def section_titles(source: Path) -> dict[int, str]:
    """Papermill's cell numbers (from 1, its injected-parameters cell included) -> the
    heading of the notebook section the cell belongs to."""
    import nbformat

    cells = nbformat.read(str(source), as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    if tagged:  # papermill inserts its injected-parameters cell right after this one
        cells = cells[: tagged[0] + 1] + [cells[tagged[0]]] + cells[tagged[0] + 1 :]
    titles, current = {}, "Start"
    for number, cell in enumerate(cells, start=1):
        if cell.cell_type == "markdown":
            headings = [ln for ln in cell.source.splitlines() if ln.startswith("#")]
            if headings:
                current = headings[0].lstrip("#").strip()
        titles[number] = current
    return titles


class SectionLog(logging.Handler):
    """Turns papermill's "Executing Cell N" log into one line per notebook section, with
    the time since the run started. The rest of papermill's log repeats the cells' output,
    which reaches the terminal once, through ``stdout_file``/``stderr_file``."""

    CELL = re.compile(r"Executing Cell (\d+)")

    def __init__(self, titles: dict[int, str], started: float):
        super().__init__(logging.INFO)
        self.titles, self.started, self.last = titles, started, None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = self.CELL.match(message)
        if match:
            title = self.titles.get(int(match.group(1)))
            if title and title != self.last:
                self.last = title
                elapsed = format_duration(time.monotonic() - self.started)
                print(f"[{elapsed}] {title}", flush=True)


@contextlib.contextmanager
def section_progress(source: Path, started: float):
    logger = logging.getLogger("papermill")
    handler = SectionLog(section_titles(source), started)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


def check_resume(folder: Path, params: Any) -> None:
    """Refuse a --resume whose parameters would change the answers, before touching files."""
    hook = getattr(params, "check_resume", None)
    if hook is not None:
        hook(folder)


def execute(request: RunRequest) -> RunOutcome:
    if request.resume is not None:
        values = {**resume_values(request.resume, request.notebook), **merge_parameters(request)}
    else:
        values = merge_parameters(request)
    params = preflight(request.notebook, values)
    run.check_outputs_writable()
    if request.resume is not None:
        check_resume(request.resume, params)
        run.check_writable(
            request.resume, "--resume: the run folder", "Resume from a copy you can write to."
        )
        folder = request.resume
        keep_previous_attempt(folder, request.notebook)
    else:
        folder = run.new_run_dir(request.notebook)
    source = NOTEBOOKS_DIR / f"{request.notebook}.ipynb"
    executed = folder / f"{request.notebook}.ipynb"
    results = folder / run.RESULTS_FILE
    (folder / "parameters.yaml").write_text(yaml.safe_dump(values, sort_keys=True))
    print(f"run folder: {folder}", flush=True)
    os.environ["KIT_RUN_DIR"] = str(folder)
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"  # the kernel is this environment's python3
    import papermill

    error = None
    started = time.monotonic()
    with stop_cleanly_on_signals(results) as signals, section_progress(source, started):
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=values,
                kernel_name="python3",
                progress_bar=False,
                log_output=True,  # papermill then logs "Executing Cell N": see SectionLog
                stdout_file=sys.stdout,  # the notebook's own progress lines
                stderr_file=sys.stderr,
                # ipykernel warns about TCP on loopback at every start; errors still show
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except Interrupted:
            pass
        except papermill.PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
        except Exception as exc:  # kernel died, could not start, ...
            error = f"{type(exc).__name__}: {exc}"
        finally:
            os.environ.pop("KIT_RUN_DIR", None)
            stopped = stop_leftovers(results)
    interrupted = signals.signum
    if interrupted is not None:
        name = signal.Signals(interrupted).name
        error = f"interrupted by {name}: what the run had saved until then is kept"
    document = _settle_results(
        results, request.notebook, values, error, time.monotonic() - started, interrupted
    )
    if stopped:  # say so in the record: the engine did not end by itself
        document["stopped_processes"] = stopped
        jsonio.write_json(results, document)
    report = None
    if executed.is_file():
        from kit.report import render_html, render_markdown

        report = render_html(executed, folder / "report.html", document)
        render_markdown(executed, folder / "report.md", document)
    from kit.index import write_index

    write_index(folder.parent)
    status = document["status"]
    return RunOutcome(folder, status, executed, report, results, error, interrupted)


def stop_leftovers(results: Path) -> list[int]:
    """Stop what the run record names and papermill left alive: the kernel and its children,
    and the engine processes the kernel started (which outlive a kernel that was killed)."""
    try:
        document = json.loads(results.read_text())
    except (OSError, ValueError):
        return []
    stopped = []
    for identity in [document.get("process") or {}, *document.get("engine_processes", [])]:
        if identity and identity.get("pid") != os.getpid() and run.process_alive(identity):
            stopped += run.stop_process_tree(int(identity["pid"]))
    return stopped


def _settle_results(
    path: Path,
    notebook: str,
    values: dict,
    error: str | None,
    seconds: float,
    interrupted: int | None = None,
) -> dict[str, Any]:
    """Make results.json say how the run ended, keeping what the notebook already saved."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):  # the notebook failed before opening its run record
        document = {
            "schema_version": run.SCHEMA_VERSION,
            "notebook": notebook,
            "parameters": values,
            "environment": {},
        }
    if interrupted is not None:
        document["status"], document["error"] = "interrupted", error
    elif error is not None:
        document["status"], document["error"] = "failed", error
    elif document.get("status") != "ok":
        document["status"] = "failed"
        document["error"] = "the notebook ended without finishing its run record"
    if document["status"] != "ok" or not document.get("finished_at"):
        document["finished_at"] = datetime.now(UTC).isoformat()
    document.setdefault("duration_s", round(seconds, 3))
    jsonio.write_json(path, document)
    return document


def _loader():
    from papermill.iorw import NoDatesSafeLoader

    return NoDatesSafeLoader


def main_run(request: RunRequest) -> int:
    try:
        outcome = execute(request)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if outcome.interrupted is not None:
        print(
            f"interrupted ({signal.Signals(outcome.interrupted).name}): what was saved is "
            f"kept in {outcome.folder}" + (f"; report: {outcome.report}" if outcome.report else ""),
            file=sys.stderr,
        )
        return 128 + outcome.interrupted
    print(f"status: {outcome.status}")
    if outcome.report:
        print(f"report: {outcome.report}")
    print(f"results: {outcome.results}")
    if outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)
        return 1
    return 0
