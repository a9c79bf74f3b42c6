"""The compare notebook's parameters: which runs, the baseline, and how rows are labelled.

``preflight`` loads the runs, so a pattern that matches nothing comparable stops the run
before a folder is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kit.compare.inputs import load_runs
from kit.core.params import ParameterError


@dataclass
class CompareParams:
    runs: list[str] = field(default_factory=lambda: ["outputs/*"])
    baseline: str = ""
    label_by: str = "device"
    label: str = ""

    def check(self) -> None:
        if not self.runs:
            raise ParameterError("Parameter 'runs' is empty: give run folders, globs or files.")

    def preflight(self) -> None:
        load_runs(self.runs)
