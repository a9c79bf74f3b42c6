"""What a run is, in one line: device, model revision, status and its headline numbers.

Shared by the report header, the run index and the comparison notebook, all of which
read ``results.json`` (never the notebook; through kit.records.results) so runs copied from
other machines work too.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.records.results import RunRecord, as_run_record

Results = RunRecord | Mapping[str, Any]  # a record, or a results.json document in memory


def engine_line(results: Results) -> str:
    """vLLM version, scheduling mode and devices used, in one line ('' before engine start)."""
    engine = as_run_record(results).engine
    if engine is None:
        return ""
    devices = engine.devices or 1
    return (
        f"vLLM {engine.vllm_version or '?'}, scheduling {engine.scheduling or '?'}, "
        f"{devices} device{'s' if devices != 1 else ''}"
    )


def output_lengths_line(results: Results) -> str:
    """Said when a server refused vLLM's ignore_eos/min_tokens: output lengths are then what
    the model chose, not what was asked ('' otherwise)."""
    engine = as_run_record(results).engine
    control = (engine.output_length_control or "") if engine else ""
    return control if control.startswith("not honoured") else ""


def weights_line(results: Results) -> str:
    engine = as_run_record(results).engine
    return (engine.weights_note or engine.weights or "") if engine else ""


def headline(results: Results) -> dict[str, Any]:
    """The few numbers a reader looks for first, per notebook; for a run that did not
    finish, the numbers it saved and why it stopped."""
    run = as_run_record(results)
    if run.status == "running":
        return {}
    if run.status == "failed":
        return {"error": run.error or run.status}
    numbers = headline_numbers(run)
    if run.status == "interrupted":
        return {**numbers, "note": run.error or run.status}
    return numbers


def headline_numbers(results: Results) -> dict[str, Any]:
    run = as_run_record(results)
    if run.demo is not None:
        return {
            "TTFT (ms)": run.demo.ttft_ms,
            "output tokens": run.demo.num_output_tokens,
            "output tokens/s": run.demo.output_tokens_per_s,
        }
    if run.perf is not None:
        out = {}
        for point in run.perf.points:
            out[f"{point.label} TTFT (ms)"] = point.vendor.ttft_ms
            out[f"{point.label} TPS"] = point.vendor.tps
        return out
    if run.mmmu is not None:
        return {"MMMU accuracy": run.mmmu.official.acc, "questions": run.mmmu.official.n}
    if run.numerics is not None:
        return {
            "numerics verdict": run.numerics.verdict,
            "against": run.numerics.reference,
            "max |Δ logprob|": run.numerics.max_abs_delta,
        }
    if run.numerics_run is not None:
        return {"prompts": run.numerics_run.prompts, "tokens": run.numerics_run.generated_tokens}
    counts = run.reproduce.verdict_counts if run.reproduce else None
    if counts:
        return {f"verdicts: {name}": n for name, n in counts.items()}
    return {}


def reproduce_command(results: Results) -> str:
    """The papermill command that re-runs this notebook with exactly these parameters."""
    run = as_run_record(results)
    notebook = run.notebook if run.notebook != "?" else "notebook"
    parts = ["papermill", f"notebooks/{notebook}.ipynb", f"{notebook}-rerun.ipynb"]
    for name, value in run.parameters.items():
        parts += ["-y", f"{name}: {yaml_value(value)}"]
    return " ".join(shlex.quote(p) for p in parts)


def yaml_value(value: Any) -> str:
    """``value`` as JSON that YAML reads back unchanged: characters beyond printable ASCII
    as YAML escapes, since YAML reads JSON's surrogate pairs (an emoji) as two characters
    (and raw, a DEL is refused and a NEL read as a line break)."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(c if ord(c) < 0x7F else f"\\U{ord(c):08x}" for c in text)


@dataclass
class RunSummary:
    folder: str
    notebook: str
    status: str
    label: str
    started_at: str
    device: str
    model: str
    revision: str
    headline: dict[str, Any] = field(default_factory=dict)
    engine: str = ""
    weights: str = ""
    output_lengths: str = ""

    @classmethod
    def of(cls, results: Results) -> RunSummary:
        run = as_run_record(results)
        return cls(
            folder=str(run.folder),
            notebook=run.notebook,
            status=run.status,
            label=run.label,
            started_at=run.started_at,
            device=run.device,
            model=str(run.parameters.get("model", "?")),
            revision=run.model_revision,
            headline=headline(run),
            engine=engine_line(run),
            weights=weights_line(run),
            output_lengths=output_lengths_line(run),
        )
