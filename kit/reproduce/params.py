"""What a reproduction is asked to run: its parameters and the plan of its children.

The document (docs/vendor-reference.md) makes claims in four sections: the model revision,
a demo answer, an MMMU accuracy and a performance table. The model is checked in the
kernel; demo, MMMU and each perf row are ordinary ``kit run`` children started with the
files and values planned here, every child's parameters pre-flighted before the first one
starts. With ``numerics_reference`` (a numerics run made on the reference device), one
more child, ``kit run numerics``, checks this device's token-level numerics against it,
beside the demo's text comparison (docs/numerics.md).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.core.params import ParameterError
from kit.core.paths import REPO_ROOT
from kit.demo.params import DemoParams
from kit.mmmu.params import MMMUParams
from kit.models.registry import TINY_MODEL
from kit.numerics.params import NumericsParams
from kit.perf.params import PerfParams
from kit.records.numerics import NUMERICS_FILE
from kit.reproduce.model_check import model_kind
from kit.runs.parameters import RunRequest, merge_parameters, read_parameters
from kit.runs.parameters import preflight as child_preflight

#: The document's sections, in its order; "model" is checked in the kernel, the others are
#: child runs of the notebook of the same name.
SECTIONS = ("model", "demo", "mmmu", "perf")
#: The sections run as child notebooks: the document's, and numerics, which no claim of the
#: document makes; it runs when ``numerics_reference`` names a reference run to check
#: against (not through ``sections``).
NUMERICS = "numerics"
CHILD_SECTIONS = ("demo", NUMERICS, "mmmu", "perf")
#: The notebook each child section runs, by its parameter dataclass.
CHILD_SCHEMAS: dict[str, type] = {
    "demo": DemoParams,
    NUMERICS: NumericsParams,
    "mmmu": MMMUParams,
    "perf": PerfParams,
}


@dataclass
class ReproduceParams:
    model: str = TINY_MODEL  # passed to every child: a named model, a folder, a hub id
    dataset: str = "fixture"  # the MMMU child's dataset
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    demo_params: list[str] = field(default_factory=lambda: ["params/smoke-demo.yaml"])
    mmmu_params: list[str] = field(default_factory=lambda: ["params/smoke-mmmu.yaml"])
    perf_params: list[str] = field(default_factory=lambda: ["params/smoke-perf.yaml"])
    numerics_reference: str = ""  # a numerics run folder (or numerics.jsonl) of the reference
    numerics_params: list[str] = field(default_factory=lambda: ["params/smoke-numerics.yaml"])
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
            if name == NUMERICS:
                raise ParameterError(
                    "Parameter 'sections': numerics is not a section of the document; it runs "
                    "when 'numerics_reference' names the reference device's numerics run "
                    "(-p numerics_reference outputs/<its folder>)."
                )
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
        for name in PARAMS_FILES:
            for path in getattr(self, name):
                resolve_params_file(path, name)
        self.numerics_reference = self.numerics_reference.strip()
        if self.numerics_reference:
            resolve_numerics_reference(self.numerics_reference)
        if "perf" in self.sections and not self.perf_params:
            raise ParameterError(
                "Parameter 'perf_params' is empty but 'sections' includes perf: give the "
                "perf rows' parameter files (params/perf-phi35v-8192x1.yaml, ...)."
            )

    def preflight(self) -> None:
        """Every child's parameters, checked as ``kit run`` would check them, before the
        first child starts (a bad perf row must not surface after an hour of MMMU)."""

        if "model" in self.sections:
            model_kind(self.model)  # a missing folder is refused here
        for plan in plan_children(self):
            if plan.notebook is None:
                continue
            try:
                child_preflight(CHILD_SCHEMAS[plan.notebook], merge_parameters(plan.request()))
            except ParameterError as exc:
                raise ParameterError(
                    f"Reproduce section {plan.key!r} ({plan.describe()}): {exc}"
                ) from None

    def check_resume(self, folder: Path) -> None:
        """A resumed reproduction must ask the same questions its finished children
        answered: only ``tolerance`` and ``label`` may change."""
        before = read_parameters(folder)
        if before is None:
            return
        changed: list[str] = [
            name
            for name in ("model", "dataset", "sections", "overrides", "perf_iterations")
            if name in before and before[name] != getattr(self, name)
        ]
        for name in PARAMS_FILES:
            if name in before and _resolved(before[name], name) != _resolved(
                getattr(self, name), name
            ):
                changed.append(name)
        if "numerics_reference" in before and _reference_key(
            before["numerics_reference"]
        ) != _reference_key(self.numerics_reference):
            changed.append("numerics_reference")
        if changed:
            raise ParameterError(
                f"--resume {str(folder)!r}: {', '.join(changed)} differ from the run being "
                "resumed, so its finished children would answer other questions. Resume "
                "without changing them, or start a new run."
            )


#: The parameters that list -f files of a child section.
PARAMS_FILES = ("demo_params", "numerics_params", "mmmu_params", "perf_params")


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


def resolve_numerics_reference(value: str) -> Path:
    """The reference device's numerics run folder (or its numerics.jsonl) as given (from the
    working directory) or from the repository, made absolute for the child; ParameterError
    naming ``numerics_reference`` when it is neither (checked before anything runs)."""
    given = Path(value).expanduser()
    for base in (Path.cwd(), REPO_ROOT):
        candidate = given if given.is_absolute() else base / given
        if candidate.is_file() or (candidate / NUMERICS_FILE).is_file():
            return candidate.resolve()
        if candidate.is_dir():
            raise ParameterError(
                f"Parameter 'numerics_reference': {value!r} is a folder without "
                f"{NUMERICS_FILE}, so not a numerics run. Give the numerics run folder made on "
                "the reference device (python -m kit run numerics there), or its "
                f"{NUMERICS_FILE}."
            )
    raise ParameterError(
        f"Parameter 'numerics_reference': {value!r} does not exist (looked in the working "
        "directory and in the repository). Give the numerics run folder made on the "
        f"reference device, copied here ({NUMERICS_FILE} and results.json are enough), or "
        "leave it empty for no numerics check."
    )


def _reference_key(value: Any) -> str:
    """A numerics reference as a resume compares it: its numerics.jsonl's absolute path, a
    folder and its file being the same reference ("" for none)."""
    text = str(value or "").strip()
    if not text:
        return ""
    try:
        path = resolve_numerics_reference(text)
    except ParameterError:  # gone since: the text as given
        return text
    return str(path / NUMERICS_FILE if path.is_dir() else path)


@dataclass(frozen=True)
class ChildPlan:
    """One child: the notebook and what it is started with (``-f`` files, then ``-y``)."""

    key: str  # unique within the reproduction: model, demo, numerics, mmmu, perf:<file stem>
    section: str
    notebook: str | None  # None: checked in the kernel (the model)
    files: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

    def request(self, resume: Path | None = None) -> RunRequest:
        if self.notebook is None:
            raise ValueError(f"{self.key} is checked in the kernel, not run as a notebook")
        return RunRequest(
            notebook=self.notebook,
            schema=CHILD_SCHEMAS[self.notebook],
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
    """The children in the document's order, for the sections asked for; the numerics check
    against ``numerics_reference`` after the demo, whose text comparison it sits beside."""
    model = absolute_if_local(params.model)
    overrides = {k: dict(v) for k, v in params.overrides.items()}
    plans: list[ChildPlan] = []
    if "model" in params.sections:
        plans.append(ChildPlan("model", "model", None))
    if "demo" in params.sections:
        values = {"model": model, **overrides.get("demo", {})}
        files = tuple(_resolved(params.demo_params, "demo_params"))
        plans.append(ChildPlan("demo", "demo", "demo", files, values))
    if params.numerics_reference:
        reference = str(resolve_numerics_reference(params.numerics_reference))
        values = {"model": model, "reference": reference, **overrides.get(NUMERICS, {})}
        files = tuple(_resolved(params.numerics_params, "numerics_params"))
        plans.append(ChildPlan(NUMERICS, NUMERICS, NUMERICS, files, values))
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
