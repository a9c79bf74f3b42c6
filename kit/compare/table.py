"""Comparing runs across devices: the vendor-style table with a baseline and ratios.

Every run contributes its perf points, MMMU accuracy and demo timing; the vendor's rows for a
device (params/references.yaml) can stand in as the baseline. Rows whose conditions differ
from the baseline's (model revision, dtype, num_crops, image shape, kit major version,
backend, scheduling, weights, how a batch was scheduled) are flagged rather than silently
mixed, and random weights are always named, since such a row is a speed and memory figure
only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.compare.inputs import run_label
from kit.compare.numerics import numerics_rows
from kit.core.devices import same_device
from kit.core.params import ParameterError
from kit.records.caches import served_from_cache
from kit.records.compare import CompareRecord, NumericsRow
from kit.records.perf import PerfPointRecord, point_label
from kit.records.references import References, load_references
from kit.records.results import RunRecord, as_run_record

COMPARABLE_KEYS = (
    "model revision",
    "dtype",
    "num_crops",
    "image shape",
    "kit major",
    "backend",
    "scheduling",
    "weights",
    "batch",
)


def conditions(run: RunRecord, point: PerfPointRecord | None = None) -> dict[str, Any]:
    """What must match for two numbers to be comparable."""
    shape = None if point is None else point.input_vision_shape
    engine = run.engine
    return {
        "model revision": run.model_revision,
        "dtype": run.parameters.get("dtype"),
        "num_crops": run.parameters.get("num_crops"),
        "image shape": None if shape is None else str(shape),
        "kit major": run.environment.kit_major,
        "backend": engine.backend if engine else None,  # a served model adds HTTP to latency
        "scheduling": engine.scheduling if engine else None,
        "weights": engine.weights if engine else None,
        "batch": batch_condition(point),
        "caches": cache_condition(run, point),
    }


CACHED = "served from cache: not a cold measurement"


def cache_condition(run: RunRecord, point: PerfPointRecord | None) -> str | None:
    """CACHED where vLLM's caches served the timed requests of a perf point (or of the
    demo's request), else None."""
    caches = point.caches if point is not None else (run.demo.caches if run.demo else None)
    return CACHED if served_from_cache(caches) else None


def batch_condition(point: PerfPointRecord | Mapping[str, Any] | None) -> str | None:
    """How a perf point's batches were scheduled: 'as the token budget allows' (as the vendor's
    vLLM 0.6), 'staggered' beyond it, or None (a single request, not a perf point, or not
    recorded)."""
    if point is None:
        return None
    point = PerfPointRecord.of(point)
    schedule = point.schedule
    if point.batch_size <= 1 or not schedule.verdict_known:
        return None
    return "staggered" if schedule.staggered_beyond_budget else BATCH_AS_BUDGET


BATCH_AS_BUDGET = "as the token budget allows"


@dataclass
class Entry:
    """One comparable number set: a run's perf point, MMMU result or demo answer."""

    label: str
    kind: str  # perf, mmmu, demo
    scenario: str
    metrics: dict[str, float | None]
    conditions: dict[str, Any]
    source: str  # run folder or "reference"
    sweep_key: tuple[int, int] | None = None  # (batch_size, max_output_len) for sweep lines
    input_len: int | None = None


def entries_of(run: RunRecord, label_by: str) -> list[Entry]:
    label = run_label(run, label_by)
    source = str(run.folder)
    out = []
    for point in run.perf_points():
        out.append(
            Entry(
                label=label,
                kind="perf",
                scenario=point.label,
                metrics=point.vendor.metrics(),
                conditions=conditions(run, point),
                source=source,
                sweep_key=(point.batch_size, point.max_output_len),
                input_len=point.input_len,
            )
        )
    if run.mmmu is not None:
        out.append(
            Entry(
                label=label,
                kind="mmmu",
                scenario=f"MMMU {run.parameters.get('split', 'validation')}",
                metrics={"accuracy": run.mmmu.official.acc},
                conditions=conditions(run),
                source=source,
            )
        )
    if run.demo is not None:
        out.append(
            Entry(
                label=label,
                kind="demo",
                scenario="demo",
                metrics={
                    "ttft_ms": run.demo.ttft_ms,
                    "output_tokens_per_s": run.demo.output_tokens_per_s,
                },
                conditions=conditions(run),
                source=source,
            )
        )
    return out


def reference_entries(refs: References, device: str) -> list[Entry]:
    """The vendor's rows for ``device`` as entries (conditions as the vendor ran them)."""
    vendor_conditions = {
        "model revision": "vendor",
        "dtype": "bfloat16",
        "num_crops": 4,
        "image shape": str([[1024, 1024]]),
        "kit major": None,
        "scheduling": "vendor",
        "weights": "checkpoint",
        "batch": None,
    }
    out = []
    for row in refs.perf:
        if same_device(row.device, device):
            batch = BATCH_AS_BUDGET if row.num_prompts > 1 else None
            out.append(
                Entry(
                    label=f"{row.device} (vendor)",
                    kind="perf",
                    scenario=point_label(row.input_len, row.output_len, row.num_prompts),
                    metrics=row.metrics(),
                    conditions={**vendor_conditions, "batch": batch},
                    source="reference",
                )
            )
    for acc in refs.mmmu:
        if same_device(acc.device, device):
            out.append(
                Entry(
                    label=f"{acc.device} (vendor)",
                    kind="mmmu",
                    scenario="MMMU validation",
                    metrics={"accuracy": acc.accuracy},
                    conditions=vendor_conditions,
                    source="reference",
                )
            )
    return out


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    baseline: str
    excluded: list[dict[str, str]]
    entries: list[Entry]
    numerics: list[NumericsRow] = field(default_factory=list)  # runs checked against a reference

    def record(self) -> CompareRecord:
        """The ``compare`` section of the comparison's own results.json."""
        return CompareRecord(self.baseline, self.rows, self.excluded, self.numerics)


def compare(
    runs: Sequence[RunRecord | Mapping[str, Any]],
    baseline: str = "",
    label_by: str = "device",
    refs: References | None = None,
    excluded: list[dict[str, str]] | None = None,
) -> Comparison:
    """One row per (label, scenario) with the baseline's values, ratios and flags, and the
    numerics verdict of every run checked against a reference; ``runs`` are records or the
    documents ``LoadedRuns.usable`` holds."""
    records = [as_run_record(run) for run in runs]
    entries = [e for run in records for e in entries_of(run, label_by)]
    refs = refs if refs is not None else load_references()
    baseline_entries, baseline_label = _resolve_baseline(baseline, entries, records, refs, label_by)
    by_scenario = {(e.kind, e.scenario): e for e in baseline_entries}
    rows = []
    for entry in baseline_entries + [e for e in entries if e not in baseline_entries]:
        base = by_scenario.get((entry.kind, entry.scenario))
        row: dict[str, Any] = {"label": entry.label, "kind": entry.kind, "scenario": entry.scenario}
        row["backend"] = entry.conditions.get("backend") or ""
        row.update(entry.metrics)
        if base is not None and base is not entry:
            for key, value in entry.metrics.items():
                ref = base.metrics.get(key)
                row[f"{key} / baseline"] = (
                    None if value is None or not ref else round(float(value) / float(ref), 3)
                )
            row["flags"] = flags(entry.conditions, base.conditions)
        else:
            own = "baseline" if base is entry else "no baseline for this scenario"
            row["flags"] = "; ".join(filter(None, [own, entry.conditions.get("caches")]))
        rows.append(row)
    numerics = numerics_rows(records, label_by)
    return Comparison(rows, baseline_label, list(excluded or []), entries, numerics)


def flags(conditions_: dict[str, Any], baseline: dict[str, Any]) -> str:
    """Which conditions differ from the baseline's ('' when all match); random weights are
    always named, since such a row is a speed and memory figure only."""
    differing = [
        f"{key}: {conditions_.get(key)} vs {baseline.get(key)}"
        for key in COMPARABLE_KEYS
        if baseline.get(key) is not None and conditions_.get(key) != baseline.get(key)
    ]
    text = "not comparable: " + "; ".join(differing) if differing else ""
    named = any(d.startswith("weights") for d in differing)
    if conditions_.get("weights") == "dummy" and not named:
        text = "; ".join(filter(None, [text, "weights: dummy (random), speed and memory only"]))
    if conditions_.get("caches"):
        text = "; ".join(filter(None, [text, conditions_["caches"]]))
    return text


def _resolve_baseline(
    baseline: str,
    entries: list[Entry],
    runs: list[RunRecord],
    refs: References,
    label_by: str,
) -> tuple[list[Entry], str]:
    if not baseline:  # the first run with numbers (a numerics run has none of these)
        first = next((own for run in runs if (own := entries_of(run, label_by))), [])
        return first, first[0].label if first else ""
    for run in runs:  # a run folder or results file
        path = run.path
        if path is not None and baseline in (str(path), str(path.parent), path.parent.name):
            own = entries_of(run, label_by)
            return own, own[0].label if own else baseline
    labelled = [e for e in entries if e.label == baseline]
    if labelled:
        return labelled, baseline
    reference = reference_entries(refs, baseline)
    if reference:
        return reference, reference[0].label
    known = sorted({e.label for e in entries} | {r.device for r in refs.perf})
    raise ParameterError(
        f"Parameter 'baseline': {baseline!r} is not a compared run, a label ({', '.join(known)}) "
        "nor a reference device in params/references.yaml."
    )
