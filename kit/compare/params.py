"""Comparing runs across devices: the vendor-style table with a baseline and ratios.

Runs are read from their ``results.json`` only, so files copied from other machines
compare like local runs. Failed runs and unreadable files are listed, never used as
numbers; rows whose conditions differ from the baseline's (model revision, dtype,
num_crops, image shape, kit major version) are flagged rather than silently mixed.
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
