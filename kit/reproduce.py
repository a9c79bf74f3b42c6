"""The reproduce notebook: the vendor's whole document, run as child runs, with a verdict
beside every claim.

The document (docs/vendor-reference.md) makes claims in four sections: the model revision,
a demo answer, an MMMU accuracy and a performance table, under a stated test environment.
``python -m kit run reproduce`` runs them in the document's order (the model check in the
kernel, then demo, MMMU and each perf row as ordinary ``kit run`` children, each in its own
run folder beside the parent's) and records every child as it ends (``children.json``).
This module is that running side: the parameters, the plan of children, their records and
the model check. The verdict rules are kit.verdicts, the report kit.reproduce_report.

A child that fails is recorded with its error and the next one runs; ``--resume`` on the
parent reruns only the children that are missing or did not end ``ok``, each in its own
folder (an MMMU child keeps the answers it saved).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kit import REPO_ROOT, jsonio
from kit.params import ParameterError
from kit.verdicts import SMOKE

#: The document's sections, in its order; "model" is checked in the kernel, the others are
#: child runs of the notebook of the same name.
SECTIONS = ("model", "demo", "mmmu", "perf")
CHILD_SECTIONS = ("demo", "mmmu", "perf")
CHILDREN_FILE = "children.json"
OK = "ok"
DUMMY = "phi35v-dummy"


# ----------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------


@dataclass
class ReproduceParams:
    model: str = "smoke"  # passed to every child: "smoke", a checkpoint folder, a hub id
    dataset: str = "fixture"  # the MMMU child's dataset
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    demo_params: list[str] = field(default_factory=lambda: ["params/smoke-demo.yaml"])
    mmmu_params: list[str] = field(default_factory=lambda: ["params/smoke-mmmu.yaml"])
    perf_params: list[str] = field(default_factory=lambda: ["params/smoke-perf.yaml"])
    overrides: dict = field(default_factory=dict)  # section -> {parameter: value}
    perf_iterations: int = 3  # timed iterations of every perf child (the interval needs >= 2)
    tolerance: float = 0.1  # perf: "reproduced" when every column is within ± this share
    verify_hashes: bool = True  # model: sha256 of every file against its manifest
    label: str = ""

    def check(self) -> None:
        if not self.sections:
            raise ParameterError(
                f"Parameter 'sections' is empty: give some of {', '.join(SECTIONS)}."
            )
        for name in self.sections:
            if name not in SECTIONS:
                close = difflib.get_close_matches(name, SECTIONS, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ParameterError(
                    f"Parameter 'sections': unknown section {name!r}{hint}. The document's "
                    f"sections are {', '.join(SECTIONS)}; e.g. -p sections model,demo."
                )
        if not self.model.strip():
            raise ParameterError(
                "Parameter 'model' is empty: give the checkpoint folder (or smoke)."
            )
        if not 0 < self.tolerance < 1:
            raise ParameterError(
                f"Parameter 'tolerance' must be a share between 0 and 1 (0.1 = ±10%), got "
                f"{self.tolerance}."
            )
        if self.perf_iterations < 1:
            raise ParameterError(
                "Parameter 'perf_iterations' must be at least 1 (3 or more gives each perf "
                "column a 95% interval; 1 gives none)."
            )
        for section, values in self.overrides.items():
            if section not in CHILD_SECTIONS:
                raise ParameterError(
                    f"Parameter 'overrides': key {section!r} is not a child section; use "
                    f"{', '.join(CHILD_SECTIONS)}, e.g. -y 'overrides: {{perf: {{warmup: 0}}}}'."
                )
            if not isinstance(values, Mapping):
                raise ParameterError(
                    f"Parameter 'overrides': {section!r} must map parameter names to values, "
                    f"got {values!r}."
                )
        for name in ("demo_params", "mmmu_params", "perf_params"):
            for path in getattr(self, name):
                resolve_params_file(path, name)
        if "perf" in self.sections and not self.perf_params:
            raise ParameterError(
                "Parameter 'perf_params' is empty but 'sections' includes perf: give the "
                "perf rows' parameter files (params/perf-phi35v-8192x1.yaml, ...)."
            )

    def preflight(self) -> None:
        """Every child's parameters, checked as ``kit run`` would check them, before the
        first child starts (a bad perf row must not surface after an hour of MMMU)."""
        from kit.runner import merge_parameters
        from kit.runner import preflight as child_preflight

        if "model" in self.sections:
            model_kind(self.model)  # a missing folder is refused here
        for plan in plan_children(self):
            if plan.notebook is None:
                continue
            try:
                child_preflight(plan.notebook, merge_parameters(plan.request()))
            except ParameterError as exc:
                raise ParameterError(
                    f"Reproduce section {plan.key!r} ({plan.describe()}): {exc}"
                ) from None

    def check_resume(self, folder: Path) -> None:
        """A resumed reproduction must ask the same questions its finished children
        answered: only ``tolerance`` and ``label`` may change."""
        saved = folder / "parameters.yaml"
        if not saved.is_file():
            return
        before = yaml.safe_load(saved.read_text()) or {}
        changed = [
            name
            for name in ("model", "dataset", "sections", "overrides", "perf_iterations")
            if name in before and before[name] != getattr(self, name)
        ]
        for name in ("demo_params", "mmmu_params", "perf_params"):
            if name in before and _resolved(before[name], name) != _resolved(
                getattr(self, name), name
            ):
                changed.append(name)
        if changed:
            raise ParameterError(
                f"--resume {str(folder)!r}: {', '.join(changed)} differ from the run being "
                "resumed, so its finished children would answer other questions. Resume "
                "without changing them, or start a new run."
            )


def _resolved(paths: Sequence[str], parameter: str) -> list[str]:
    return [str(resolve_params_file(p, parameter)) for p in paths]


def resolve_params_file(path: str, parameter: str) -> Path:
    """A parameter file as given (from the working directory) or from the repository."""
    for base in (Path.cwd(), REPO_ROOT):
        candidate = Path(path) if Path(path).is_absolute() else base / path
        if candidate.is_file():
            return candidate.resolve()
    raise ParameterError(
        f"Parameter {parameter!r}: parameter file {path!r} does not exist (looked in the "
        f"working directory and in the repository). Fix the path, e.g. params/smoke-demo.yaml."
    )


def model_kind(model: str) -> str:
    """ "smoke", "dummy", "folder" or "hub id"; a path that is not a folder is refused."""
    from kit.engine import HUB_ID, is_weightless_folder

    if model == SMOKE:
        return "smoke"
    if model == DUMMY:
        return "dummy"
    path = Path(model).expanduser()
    if path.is_dir():
        return "dummy" if is_weightless_folder(str(path)) else "folder"
    if HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        return "hub id"
    raise ParameterError(
        f"Parameter 'model': folder {model!r} does not exist. Give the Phi-3.5-vision-instruct "
        "folder (python -m kit run download -f params/download-phi35v-modelscope.yaml makes "
        "one), or smoke for the kit's tiny model."
    )


# ----------------------------------------------------------------------------------------
# Planning the children
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildPlan:
    """One child: the notebook and what it is started with (``-f`` files, then ``-y``)."""

    key: str  # unique within the reproduction: model, demo, mmmu, perf:<file stem>
    section: str
    notebook: str | None  # None: checked in the kernel (the model)
    files: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

    def request(self, resume: Path | None = None):
        from kit.runner import RunRequest

        return RunRequest(
            notebook=self.notebook or "",
            files=list(self.files),
            yaml_strings=[yaml.safe_dump(self.values, sort_keys=True)] if self.values else [],
            resume=resume,
        )

    def describe(self) -> str:
        if self.notebook is None:
            return "model folder against its manifest, in this kernel"
        files = " ".join(f"-f {display_path(f)}" for f in self.files)
        values = " ".join(f"-y '{k}: {json.dumps(v)}'" for k, v in self.values.items())
        return " ".join(p for p in (f"kit run {self.notebook}", files, values) if p)


def display_path(path: str) -> str:
    """A path relative to the repository when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def absolute_if_local(value: str) -> str:
    """A folder given relative to the working directory, made absolute so a child started
    from another directory finds it; hub ids and kit names stay as they are."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def plan_children(params: ReproduceParams) -> list[ChildPlan]:
    """The children in the document's order, for the sections asked for."""
    model = absolute_if_local(params.model)
    overrides = {k: dict(v) for k, v in params.overrides.items()}
    plans: list[ChildPlan] = []
    if "model" in params.sections:
        plans.append(ChildPlan("model", "model", None))
    if "demo" in params.sections:
        values = {"model": model, **overrides.get("demo", {})}
        files = tuple(_resolved(params.demo_params, "demo_params"))
        plans.append(ChildPlan("demo", "demo", "demo", files, values))
    if "mmmu" in params.sections:
        values = {
            "model": model,
            "dataset": absolute_if_local(params.dataset),
            **overrides.get("mmmu", {}),
        }
        files = tuple(_resolved(params.mmmu_params, "mmmu_params"))
        plans.append(ChildPlan("mmmu", "mmmu", "mmmu", files, values))
    if "perf" in params.sections:
        paths = _resolved(params.perf_params, "perf_params")
        stems = [Path(p).stem for p in paths]
        for index, path in enumerate(paths):
            stem = stems[index]
            key = f"perf:{stem}" if stems.count(stem) == 1 else f"perf:{stem}-{index + 1}"
            values = {
                "model": model,
                "iterations": params.perf_iterations,
                **overrides.get("perf", {}),
            }
            plans.append(ChildPlan(key, "perf", "perf", (path,), values))
    return plans


# ----------------------------------------------------------------------------------------
# What each child did (children.json)
# ----------------------------------------------------------------------------------------


@dataclass
class ChildRecord:
    """A child's outcome, saved as soon as it changes so a killed parent keeps it."""

    key: str
    section: str
    notebook: str | None
    status: str = "pending"  # pending, running, ok, failed, interrupted
    folder: str | None = None  # relative to the parent's run folder (../<child folder>)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None  # an in-kernel check keeps its result here

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ChildRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_children(path: Path) -> dict[str, ChildRecord]:
    """An earlier attempt's children (empty when there is none or it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for item in data.get("children") or []:
        if isinstance(item, Mapping) and item.get("key"):
            out[str(item["key"])] = ChildRecord.of(item)
    return out


def child_finished(record: ChildRecord | None, parent: Path) -> bool:
    """Whether a child needs no rerun: it ended ok, and (for a run folder) its own
    results.json still says so."""
    if record is None or record.status != OK:
        return False
    if record.notebook is None:
        return record.result is not None
    if not record.folder:
        return False
    try:
        document = json.loads((parent / record.folder / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return document.get("status") == OK


def children_to_run(
    plans: Sequence[ChildPlan], previous: Mapping[str, ChildRecord], parent: Path
) -> list[str]:
    """Keys of the children that are missing or did not finish ok (pure but for reading
    the children's results.json)."""
    return [p.key for p in plans if not child_finished(previous.get(p.key), parent)]


# ----------------------------------------------------------------------------------------
# The model: its folder against its manifest, in the kernel
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCheck:
    """What the model folder says about its revision, and whether its files are intact."""

    model: str
    kind: str  # smoke, dummy, folder, hub id
    path: str | None = None
    manifest: dict[str, Any] | None = None  # source, repo_id, revision, commit, downloaded_at
    hashed: bool = False  # every file's sha256 compared with the manifest
    problems: tuple[str, ...] = ()
    files: int = 0
    bytes: int = 0

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ModelCheck:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["problems"] = tuple(values.get("problems") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": list(self.problems)}


MANIFEST_KEYS = ("source", "repo_id", "revision", "commit", "downloaded_at", "verified")


def check_model(model: str, verify_hashes: bool = True) -> ModelCheck:
    """The manifest of a model folder and, with ``verify_hashes``, every file against it
    (kit.manifest.verify_folder: no network)."""
    from kit.manifest import read_manifest, sizes_match, verify_folder

    kind = model_kind(model)
    if kind in ("smoke", "hub id") or model == DUMMY:
        return ModelCheck(model, kind)
    folder = Path(model).expanduser().resolve()
    manifest = read_manifest(folder)
    summary = None if manifest is None else {k: manifest.get(k) for k in MANIFEST_KEYS}
    if manifest is None:
        return ModelCheck(model, kind, str(folder))
    files = manifest.get("files") or {}
    if verify_hashes:
        problems = tuple(verify_folder(folder).problems)
    else:
        problems = tuple(f"{p}: missing or another size" for p in sizes_match(folder, manifest))
    return ModelCheck(
        model,
        kind,
        str(folder),
        summary,
        verify_hashes,
        problems,
        len(files),
        sum(int(e.get("size") or 0) for e in files.values()),
    )


# ----------------------------------------------------------------------------------------
# Running the children
# ----------------------------------------------------------------------------------------


def now() -> str:
    return datetime.now(UTC).isoformat()


class Reproduction:
    """The children of one reproduce run: their plan, what earlier attempts finished, and
    running the rest. ``execute`` is kit.runner.execute (tests pass a stand-in)."""

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
            self._record("reproduce", {"children": data["children"], "reused": self.reused})

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
        except KeyboardInterrupt:
            self._finish(record, "interrupted", "interrupted: the reproduction stopped", started)
            raise
        except Exception as exc:  # a child's failure must not stop the next one
            self._finish(record, "failed", f"{type(exc).__name__}: {exc}", started)
        return self.records[plan.key]

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
        from kit.runner import execute

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
        finally:
            if saved_env is not None:
                os.environ["KIT_RUN_DIR"] = saved_env
        if outcome.interrupted is not None:
            self._finish(record, "interrupted", outcome.error, started)
            raise KeyboardInterrupt
        return self._finish(record, outcome.status, outcome.error, started)

    def _child_folder(self, plan: ChildPlan, record: ChildRecord) -> Path:
        """The folder an earlier attempt used (run again in place: kit run --resume), or a
        new one beside the parent's, holding the parameters it starts with."""
        from kit import run as run_module
        from kit.runner import merge_parameters

        if record.folder:
            earlier = (self.folder / record.folder).resolve()
            if (earlier / "parameters.yaml").is_file():
                return earlier
        folder = run_module.new_run_dir(plan.notebook, self.folder.parent)
        values = merge_parameters(plan.request())
        (folder / "parameters.yaml").write_text(yaml.safe_dump(values, sort_keys=True))
        return folder

    def raise_if_failed(self, run: Any = None) -> None:
        """After the report is complete: a reproduction with a failed child ends failed
        (``run``'s record gets its environment first, as ``finish`` would give it)."""
        if self.failed:
            if run is not None:
                from kit import environment

                run.environment = environment.capture()
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


class ChildrenFailed(RuntimeError):
    """Some children failed: the run ends failed, after its report is complete."""
