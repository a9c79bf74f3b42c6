"""Running a reproduction: the vendor's whole document as child runs, each recorded as it ends.

The document (docs/vendor-reference.md) makes claims in four sections: the model revision,
a demo answer, an MMMU accuracy and a performance table, under a stated test environment.
``python -m kit run reproduce`` runs them in the document's order (the model check in the
kernel, then demo, MMMU and each perf row as ordinary ``kit run`` children, each in its own
run folder beside the parent's) and records every child as it ends (``children.json``).
This module is that running side; the plan of children is kit.reproduce.params, the verdict
rules kit.reproduce.verdicts, the report kit.reproduce.report.

A child that fails is recorded with its error and the next one runs; ``--resume`` on the
parent reruns only the children that are missing or did not end ``ok``, each in its own
folder (an MMMU child keeps the answers it saved). A reproduction with a failed child ends
failed, after its report is complete.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.files import NO_ROOM, write_failure
from kit.core.params import ParameterError
from kit.records.reproduce import ReproduceRecord
from kit.reproduce.children import CHILDREN_FILE, OK, ChildRecord, children_to_run, read_children
from kit.reproduce.model_check import check_model
from kit.reproduce.params import ChildPlan, ReproduceParams, plan_children
from kit.runs.environment import capture
from kit.runs.parameters import merge_parameters, read_parameters, write_parameters
from kit.runs.record import new_run_dir
from kit.runs.runner import execute


def now() -> str:
    return datetime.now(UTC).isoformat()


class Reproduction:
    """The children of one reproduce run: their plan, what earlier attempts finished, and
    running the rest. ``execute`` is kit.runs.runner.execute (tests pass a stand-in)."""

    def __init__(
        self,
        params: ReproduceParams,
        folder: Path,
        record: Callable[[str, Any], None] | None = None,
        execute: Callable | None = None,
        say: Callable[[str], None] = lambda text: print(text, flush=True),
    ):
        self.params, self.folder = params, Path(folder)
        self.plans = plan_children(params)
        self.file = self.folder / CHILDREN_FILE
        previous = read_children(self.file)
        self.records = {
            p.key: previous.get(p.key) or ChildRecord(p.key, p.section, p.notebook)
            for p in self.plans
        }
        self.to_run = children_to_run(self.plans, previous, self.folder)
        self.reused = [p.key for p in self.plans if p.key not in self.to_run]
        self._record, self._execute, self.say = record, execute, say

    @classmethod
    def open(cls, run: Any, **kwargs) -> Reproduction:
        """For the notebook: the run's folder and its ``record``."""
        return cls(run.params, run.paths.folder, record=run.record, **kwargs)

    # -- bookkeeping --------------------------------------------------------------------

    def save(self) -> None:
        data = {"children": [self.records[p.key].to_dict() for p in self.plans]}
        jsonio.write_json(self.file, data)
        if self._record is not None:
            self._record("reproduce", ReproduceRecord(data["children"], reused=self.reused))

    def plan_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "child": p.key,
                "runs as": p.describe(),
                "this attempt": "run" if p.key in self.to_run else "kept from an earlier attempt",
            }
            for p in self.plans
        ]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "child": r.key,
                "status": r.status,
                "run folder": r.folder or ("in this kernel" if r.notebook is None else "–"),
                "duration (s)": r.duration_s,
                "attempts": r.attempts,
                "error": r.error or "",
            }
            for r in (self.records[p.key] for p in self.plans)
        ]

    @property
    def failed(self) -> list[ChildRecord]:
        return [self.records[p.key] for p in self.plans if self.records[p.key].status != OK]

    # -- running ------------------------------------------------------------------------

    def run_children(self) -> None:
        """Run every child that is missing or did not finish, in order, saving after each.
        A child that fails is recorded and the next one runs; an interrupt stops here."""
        self.save()
        for plan in self.plans:
            if plan.key not in self.to_run:
                self.say(f"[reproduce] {plan.key}: kept ({self.records[plan.key].folder or 'ok'})")
                continue
            self.run_child(plan)
        clear_cell_output()  # the progress lines were for the terminal, not the report

    def run_child(self, plan: ChildPlan) -> ChildRecord:
        record = replace(
            self.records[plan.key],
            status="running",
            error=None,
            started_at=now(),
            finished_at=None,
            duration_s=None,
            attempts=self.records[plan.key].attempts + 1,
        )
        started = time.monotonic()
        try:
            if plan.notebook is None:
                record = self._check_model(record)
            else:
                record = self._run_notebook(plan, record)
        except ChildInterrupted:  # recorded and said where the child ended
            raise
        except KeyboardInterrupt:
            record = self._with_folder(record)
            self._finish(record, "interrupted", "interrupted: the reproduction stopped", started)
            raise
        except Exception as exc:  # a child's failure must not stop the next one
            record = self._with_folder(record)
            self._finish(record, "failed", f"{type(exc).__name__}: {exc}", started)
        return self.records[plan.key]

    def _with_folder(self, record: ChildRecord) -> ChildRecord:
        """``record`` naming the folder its child ran in, once that exists: a child stopped
        mid-run is resumed there (MMMU keeps its answers), never in a new folder."""
        return replace(record, folder=self.records[record.key].folder or record.folder)

    def _finish(
        self, record: ChildRecord, status: str, error: str | None, started: float
    ) -> ChildRecord:
        record = replace(
            record,
            status=status,
            error=error,
            finished_at=now(),
            duration_s=round(time.monotonic() - started, 3),
        )
        self.records[record.key] = record
        self.save()
        where = f" ({record.folder})" if record.folder else ""
        self.say(f"[reproduce] {record.key}: {status}{where}" + (f": {error}" if error else ""))
        return record

    def _check_model(self, record: ChildRecord) -> ChildRecord:
        started = time.monotonic()
        self.records[record.key] = record
        self.save()
        self.say(f"[reproduce] model: checking {self.params.model}")
        check = check_model(self.params.model, self.params.verify_hashes)
        return self._finish(replace(record, result=check.to_dict()), OK, None, started)

    def _run_notebook(self, plan: ChildPlan, record: ChildRecord) -> ChildRecord:
        started = time.monotonic()
        folder = self._child_folder(plan, record)
        record = replace(record, folder=os.path.relpath(folder, self.folder))
        self.records[plan.key] = record
        self.save()
        self.say(f"[reproduce] {plan.key}: running in {folder}")
        saved_env = os.environ.get("KIT_RUN_DIR")
        try:
            with (
                (folder / "kit-run.log").open("a") as log,
                contextlib.redirect_stdout(log),
                contextlib.redirect_stderr(log),
            ):
                outcome = (self._execute or execute)(plan.request(resume=folder))
        except ParameterError as exc:
            return self._finish(record, "failed", str(exc), started)
        except OSError as exc:  # a full disk fails this child, as any failure does
            if exc.errno not in NO_ROOM:
                raise
            return self._finish(record, "failed", write_failure(exc), started)
        finally:
            if saved_env is not None:
                os.environ["KIT_RUN_DIR"] = saved_env
        error = "; ".join(filter(None, [outcome.error, *outcome.unwritten])) or None
        if outcome.interrupted is not None:
            self._finish(record, "interrupted", error, started)
            raise ChildInterrupted
        status = "failed" if outcome.unwritten else outcome.status
        return self._finish(record, status, error, started)

    def _child_folder(self, plan: ChildPlan, record: ChildRecord) -> Path:
        """The folder an earlier attempt used (run again in place: kit run --resume), or a
        new one beside the parent's, holding the parameters it starts with."""

        if record.folder:
            earlier = (self.folder / record.folder).resolve()
            if read_parameters(earlier) is not None:
                return earlier
        request = plan.request()
        folder = new_run_dir(request.notebook, self.folder.parent)
        write_parameters(folder, merge_parameters(request))
        return folder

    def raise_if_failed(self, run: Any = None) -> None:
        """After the report is complete: a reproduction with a failed child ends failed
        (``run``'s record gets its environment first, as ``finish`` would give it)."""
        if self.failed:
            if run is not None:
                run.environment = capture()
                run.save("running")
            names = ", ".join(f"{r.key} ({r.status})" for r in self.failed)
            raise ChildrenFailed(
                f"{len(self.failed)} of {len(self.plans)} children did not finish: {names}. "
                "The report shows every section; rerun what is missing with "
                f"python -m kit run reproduce --resume {self.folder}"
            )


def clear_cell_output() -> None:
    """Clear the running cell's output when in a notebook kernel (nothing elsewhere)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import clear_output

        clear_output()


class ChildInterrupted(KeyboardInterrupt):
    """A child run ended interrupted (Ctrl-C reached it first): already recorded and said,
    it stops the reproduction as Ctrl-C would."""


class ChildrenFailed(RuntimeError):
    """Some children failed: the run ends failed, after its report is complete."""
