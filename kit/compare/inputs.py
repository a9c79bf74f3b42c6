"""The runs a comparison reads: run folders, globs or results.json files, and those left out.

Runs are read from their ``results.json`` only, so files copied from other machines compare
like local runs. Failed runs, unreadable files and notebooks other than perf, mmmu, demo and
numerics are listed with the reason, never used as numbers.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError
from kit.core.paths import REPO_ROOT
from kit.records.base import ResultsError
from kit.records.results import RESULTS_FILE, RunRecord, read_run

#: The notebooks whose runs a comparison reads (numerics: its verdict against a reference).
COMPARED_NOTEBOOKS = ("perf", "mmmu", "demo", "numerics")


@dataclass
class LoadedRuns:
    runs: list[RunRecord]
    excluded: list[dict[str, str]]  # path and reason

    @property
    def usable(self) -> list[dict[str, Any]]:
        """The usable runs' documents as read (compare() takes these or the records)."""
        return [run.document for run in self.runs]


def expand(patterns: list[str]) -> list[Path]:
    """Run folders or results.json files matched by ``patterns`` (cwd first, then the repo)."""
    found: list[Path] = []
    for pattern in patterns:
        matches = []
        for base in (Path.cwd(), REPO_ROOT):
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            matches = sorted(glob.glob(full))
            if matches:
                break
        for match in map(Path, matches):
            if match.is_dir() and (match / RESULTS_FILE).is_file():
                found.append(match / RESULTS_FILE)
            elif match.is_file() and match.suffix == ".json":
                found.append(match)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def load_runs(patterns: list[str]) -> LoadedRuns:
    paths = expand(patterns)
    if not paths:
        raise ParameterError(
            f"Parameter 'runs': no run folder or results.json matches {patterns}. Give run "
            "folders (outputs/<run>), globs such as 'outputs/*perf*', or results.json files "
            "copied from other machines."
        )
    usable: list[RunRecord] = []
    excluded: list[dict[str, str]] = []
    for path in paths:
        try:
            run = read_run(path)
        except ResultsError as exc:
            excluded.append({"path": str(path), "reason": str(exc)})
            continue
        if run.status != "ok":
            reason = f"run {run.status}: {run.error or 'no error recorded'}"
            excluded.append({"path": str(path), "reason": reason})
            continue
        if run.notebook not in COMPARED_NOTEBOOKS:
            excluded.append({"path": str(path), "reason": "not a perf, mmmu, demo or numerics run"})
            continue
        usable.append(run)
    if not usable:
        raise ParameterError(
            f"Parameter 'runs': none of the {len(paths)} matched runs can be compared: "
            + "; ".join(f"{e['path']}: {e['reason']}" for e in excluded)
        )
    return LoadedRuns(usable, excluded)


def run_label(run: RunRecord, label_by: str) -> str:
    if label_by == "device":
        return run.device
    if label_by == "label":
        return run.label or run.device
    if label_by in run.parameters:
        return f"{label_by}={run.parameters[label_by]}"
    raise ParameterError(
        f"Parameter 'label_by': {label_by!r} is neither 'device', 'label' nor a parameter of "
        f"the runs (they have: {', '.join(sorted(run.parameters))})."
    )
