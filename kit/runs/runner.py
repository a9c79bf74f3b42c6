"""``python -m kit run NOTEBOOK``: check parameters, execute with papermill, render, record.

Parameters are merged and pre-flighted (kit.runs.parameters) before a run folder is made or an
engine is started. Whatever happens in the kernel, the run ends with a results.json that says
how it ended (ok, failed, interrupted), keeping what the notebook had saved; the processes the
run record names and papermill left alive are stopped and listed; the report is rendered from
what executed; and ``outputs/index.html`` is rewritten. ``--resume`` runs again in the same
folder, moving the earlier attempt's notebook and report aside.

Every file the run writes is written whole or not at all (kit.core.files.write_atomic),
papermill's saves of the executed notebook included. A write that fails (a full disk) ends
the run ``failed`` naming the file; when even results.json cannot be written, the terminal
says which files could not be written and what the folder keeps.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.core.files import check_writable, write_atomic, write_failure
from kit.core.params import ParameterError
from kit.core.paths import NOTEBOOKS_DIR
from kit.core.processes import process_alive, stop_process_tree
from kit.records.results import (
    RESULTS_FILE,
    envelope,
    read_document,
    running_process,
    write_document,
)
from kit.report.render import render_html, render_markdown
from kit.runs.index import write_index
from kit.runs.parameters import (
    RunRequest,
    check_resume,
    merge_parameters,
    preflight,
    resume_values,
    write_parameters,
)
from kit.runs.record import check_outputs_writable, new_run_dir
from kit.runs.sections import section_progress
from kit.runs.signals import Interrupted, stop_cleanly_on_signals


@dataclass
class RunOutcome:
    folder: Path
    status: str
    notebook: Path
    report: Path | None
    results: Path
    error: str | None = None
    interrupted: int | None = None  # the signal that stopped the run
    unwritten: list[str] = field(default_factory=list)  # files that could not be written, why


def keep_previous_attempt(folder: Path, notebook: str) -> None:
    """Move an earlier attempt's notebook and reports aside instead of overwriting them."""
    attempt = 1
    while (folder / f"{notebook}.attempt-{attempt}.ipynb").exists():
        attempt += 1
    for name, suffix in ((notebook, ".ipynb"), ("report", ".html")):
        current = folder / f"{name}{suffix}"
        if current.exists():
            current.rename(folder / f"{name}.attempt-{attempt}{suffix}")
    markdown, figures = folder / "report.md", folder / "report_files"
    kept = f"report.attempt-{attempt}"
    if markdown.exists():  # its figure links follow the folder they move to
        text = markdown.read_text(encoding="utf-8").replace("(report_files/", f"({kept}_files/")
        write_atomic(folder / f"{kept}.md", text)
        markdown.unlink()
    if figures.is_dir():
        figures.rename(folder / f"{kept}_files")


def refuse_live_run(folder: Path) -> None:
    """A --resume of a run whose process still runs would have two engines write one
    folder: refused, naming the process."""
    identity = running_process(read_document(folder))
    if identity is not None and process_alive(identity):
        raise ParameterError(
            f"--resume {str(folder)!r}: that run is still running (pid "
            f"{identity.get('pid')} on {identity.get('host')}). Let it finish, or stop it "
            "(Ctrl-C in its terminal), then resume."
        )


def execute(request: RunRequest) -> RunOutcome:
    given = merge_parameters(request)
    saved = resume_values(request.resume, request.notebook) if request.resume else {}
    values = {**saved, **given}
    if request.resume is not None:
        refuse_live_run(request.resume)
    params = preflight(request.schema, values)
    check_outputs_writable()
    if request.resume is not None:
        check_resume(request.resume, params, request.schema, saved, given)
        check_writable(
            request.resume, "--resume: the run folder", "Resume from a copy you can write to."
        )
        folder = request.resume
        keep_previous_attempt(folder, request.notebook)
    else:
        folder = new_run_dir(request.notebook)
    source = NOTEBOOKS_DIR / f"{request.notebook}.ipynb"
    executed = folder / f"{request.notebook}.ipynb"
    results = folder / RESULTS_FILE
    write_parameters(folder, values)
    save_notebooks_whole(folder)
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
                kernel_manager_class=kernel_logging_to(folder / "engine.log"),
            )
        except Interrupted:
            pass
        except papermill.PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
        except OSError as exc:  # papermill could not save the executed notebook
            error = _failure(exc, executed)
        except Exception as exc:  # kernel died, could not start, ...
            error = f"{type(exc).__name__}: {exc}"
        finally:
            os.environ.pop("KIT_RUN_DIR", None)
            stopped = stop_leftovers(results)
    interrupted = signals.signum
    if interrupted is not None:
        name = signal.Signals(interrupted).name
        error = f"interrupted by {name}: what the run had saved until then is kept"
    document = _settled(
        read_document(results),
        request.notebook,
        values,
        error,
        time.monotonic() - started,
        interrupted,
    )
    if stopped:  # say so in the record: the engine did not end by itself
        document["stopped_processes"] = stopped
    outcome = RunOutcome(
        folder, document["status"], executed, None, results, document.get("error"), interrupted
    )
    try:
        write_document(results, document)
    except OSError as exc:  # the terminal is all that is left to say how the run ended
        outcome.unwritten.append(write_failure(exc))
        return outcome
    try:
        if executed.is_file():
            outcome.report = render_html(executed, folder / "report.html", document)
            render_markdown(executed, folder / "report.md", document)
    except OSError as exc:
        outcome.unwritten.append(write_failure(exc))
    try:
        write_index(folder.parent)
    except OSError as exc:
        outcome.unwritten.append(write_failure(exc))
    return outcome


def save_notebooks_whole(folder: Path) -> None:
    """papermill saves the executed notebook after every cell by rewriting it in place, so a
    full disk left a torn copy (invalid JSON) where the last good one was. Its saves into
    ``folder`` go beside the notebook and are renamed over it instead (papermill picks an
    I/O handler by the path's prefix)."""
    from papermill.iorw import LocalHandler, papermill_io

    class WholeSaves(LocalHandler):
        def write(self, buf: str, path: str) -> None:
            write_atomic(Path(path), buf)

    papermill_io.register(f"{folder}{os.sep}", WholeSaves())


def _failure(exc: OSError, executed: Path) -> str:
    if exc.filename == str(executed):
        kept = "its last complete save is kept" if executed.is_file() else "it was never saved"
        return f"{write_failure(exc)}; {kept}"
    return f"{type(exc).__name__}: {exc}"


def kernel_logging_to(log_file: Path) -> type:
    """A kernel manager whose kernel writes its own stderr to ``log_file``: ipykernel's log
    (jupyter_client interrupts every kernel it shuts down, and one busy then logs
    "KeyboardInterrupt caught in kernel"), asyncio's shutdown warnings, and C-level writes
    outside the engine's start. The cells' output still reaches the notebook, and the
    terminal through papermill, as before."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelLoggingToFile(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with log_file.open("ab") as log:  # the kernel holds its own copy of the fd
                await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": log})

    return KernelLoggingToFile


def stop_leftovers(results: Path) -> list[int]:
    """Stop what the run record names and papermill left alive: the kernel and its children,
    and the engine processes the kernel started (which outlive a kernel that was killed)."""
    document = read_document(results)
    if document is None:
        return []
    stopped = []
    for identity in [document.get("process") or {}, *document.get("engine_processes", [])]:
        if identity and identity.get("pid") != os.getpid() and process_alive(identity):
            stopped += stop_process_tree(int(identity["pid"]))
    return stopped


def _settled(
    document: dict[str, Any] | None,
    notebook: str,
    values: dict,
    error: str | None,
    seconds: float,
    interrupted: int | None = None,
) -> dict[str, Any]:
    """The run record saying how the run ended, keeping what the notebook already saved."""
    if document is None:  # the notebook failed before opening its run record
        document = envelope(
            notebook=notebook,
            status="failed",
            parameters=values,
            label=str(values.get("label") or ""),
            duration_s=round(seconds, 3),
        )
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
    return document


def kept_files(folder: Path) -> str:
    """What a folder holds, as the terminal names it when the record could not be written."""
    names = sorted(
        p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name[0] != "."
    )
    if RESULTS_FILE in names:
        saved = read_document(folder / RESULTS_FILE) or {}
        status = saved.get("status", "unreadable")
        names[names.index(RESULTS_FILE)] = f"{RESULTS_FILE} (as last saved: {status})"
    return ", ".join(names) or "nothing"


def main_run(request: RunRequest) -> int:
    try:
        outcome = execute(request)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for failure in outcome.unwritten:
        print(f"error: {failure}.", file=sys.stderr)
    if outcome.interrupted is not None:
        print(
            f"interrupted ({signal.Signals(outcome.interrupted).name}): what was saved is "
            f"kept in {outcome.folder}" + (f"; report: {outcome.report}" if outcome.report else ""),
            file=sys.stderr,
        )
        return 128 + outcome.interrupted
    if outcome.unwritten:
        print(
            f"the run ended {outcome.status}"
            + (f" ({outcome.error})" if outcome.error else "")
            + f". Kept in {outcome.folder}: {kept_files(outcome.folder)}.",
            file=sys.stderr,
        )
        return 1
    print(f"status: {outcome.status}")
    if outcome.report:
        print(f"report: {outcome.report}")
    print(f"results: {outcome.results}")
    if outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)
        return 1
    return 0
