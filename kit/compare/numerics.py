"""Numerics verdicts between compared runs: each numerics run checked against a reference
(its results.json ``numerics`` section), with the reference named by its label where it is
one of the compared runs.

A numerics run records its reference by the reference's run folder name (or a path, or
"transformers ..."; kit.records.numerics.NumericsComparison.reference), so a reference run
among the compared runs is found by its folder. Only results.json is read: this module
never imports kit.numerics (layer 6, above compare).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.compare.inputs import run_label
from kit.records.compare import NumericsRow
from kit.records.numerics import NUMERICS_FILE, VERDICTS
from kit.records.results import RunRecord

DIVERGED = "diverged"


def reference_run(reference: str, runs: Sequence[RunRecord]) -> RunRecord | None:
    """The compared run ``reference`` names: by its folder name, or a path to its folder or
    to its numerics.jsonl; None where it is none of them (a file elsewhere, transformers)."""
    path = Path(reference)
    name = path.parent.name if path.name == NUMERICS_FILE else path.name
    if not name:
        return None
    return next((run for run in runs if run.path is not None and run.folder.name == name), None)


def numerics_rows(runs: Sequence[RunRecord], label_by: str = "device") -> list[NumericsRow]:
    """One row per compared run that was checked against a reference, in the runs' order."""
    rows = []
    for run in runs:
        comparison = run.numerics
        if comparison is None:
            continue
        reference = reference_run(comparison.reference, [r for r in runs if r is not run])
        rows.append(
            NumericsRow(
                label=run_label(run, label_by),
                run=run.folder.name,
                reference=comparison.reference
                if reference is None
                else run_label(reference, label_by),
                reference_run=None if reference is None else reference.folder.name,
                verdict=comparison.verdict,
                counts=dict(comparison.counts),
                positions=comparison.positions,
                mean_abs_delta=comparison.mean_abs_delta,
                max_abs_delta=comparison.max_abs_delta,
                diverged=tuple(p.id for p in comparison.prompts if p.verdict == DIVERGED),
            )
        )
    return rows


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.4g}"


def counts_text(counts: dict[str, int] | Any) -> str:
    """``14 close, 2 identical``: the verdicts best first, then any other word recorded."""
    order = [*VERDICTS, *(word for word in counts if word not in VERDICTS)]
    return ", ".join(f"{counts[word]} {word}" for word in order if counts.get(word)) or "none"


def table_rows(rows: Sequence[NumericsRow]) -> list[dict[str, Any]]:
    """The rows as the report shows them (the display escapes every cell)."""
    return [
        {
            "label": row.label,
            "run": row.run,
            "reference": row.reference
            if row.reference_run is None
            else f"{row.reference} ({row.reference_run})",
            "verdict": row.verdict,
            "prompts": counts_text(row.counts),
            "teacher-forced positions": row.positions,
            "mean |Δ logprob|": _number(row.mean_abs_delta),
            "max |Δ logprob|": _number(row.max_abs_delta),
            "diverged": ", ".join(row.diverged) or "none",
        }
        for row in rows
    ]
