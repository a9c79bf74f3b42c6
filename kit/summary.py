"""What a run is, in one line: device, model revision, status and its headline numbers.

Shared by the report header, the run index and the comparison notebook, all of which
read ``results.json`` (never the notebook) so runs copied from other machines work too.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.run import RESULTS_FILE, SCHEMA_VERSION


class ResultsError(ValueError):
    """A results.json that cannot be used (missing, unreadable, other schema)."""


def load_results(path: Path) -> dict[str, Any]:
    """Read a run folder's results.json (or the file itself) and check its schema version."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise ResultsError(f"{file}: cannot be read ({exc.strerror})") from exc
    except ValueError as exc:
        raise ResultsError(f"{file}: not valid JSON ({exc})") from exc
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise ResultsError(
            f"{file}: schema_version {version!r}, this kit reads {SCHEMA_VERSION}. "
            + (
                "It was written by a newer kit: update this checkout (git pull) to read it."
                if newer
                else "It was written by an older or different tool: re-run it with this kit."
            )
        )
    data["_path"] = str(file)
    return data


def model_revision(results: dict[str, Any]) -> str:
    """The download manifest's resolved commit, else the tiny model's build, else config hash."""
    model = results.get("environment", {}).get("model", {}) or {}
    manifest = model.get("download_manifest") or {}
    for key in ("resolved_revision", "commit", "resolved_commit", "sha"):
        if manifest.get(key):
            return f"{manifest.get('repo_id', '')}@{str(manifest[key])[:12]}".lstrip("@")
    if model.get("smoke"):
        return f"smoke v{model['smoke'].get('builder_version')} seed {model['smoke'].get('seed')}"
    if model.get("config_sha256"):
        return f"config {model['config_sha256'][:12]}"
    return "unknown"


def device_name(results: dict[str, Any]) -> str:
    perf = results.get("perf") or {}
    if perf.get("device"):
        return str(perf["device"])
    accel = results.get("environment", {}).get("accelerator", {}) or {}
    return str(accel.get("name") or accel.get("device") or "unknown")


def engine_line(results: dict[str, Any]) -> str:
    """vLLM version, scheduling mode and devices used, in one line ('' before engine start)."""
    engine = results.get("engine") or {}
    if not engine:
        return ""
    devices = engine.get("devices") or 1
    return (
        f"vLLM {engine.get('vllm_version', '?')}, scheduling {engine.get('scheduling', '?')}, "
        f"{devices} device{'s' if devices != 1 else ''}"
    )


def weights_line(results: dict[str, Any]) -> str:
    engine = results.get("engine") or {}
    return engine.get("weights_note") or engine.get("weights") or ""


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a reader looks for first, per notebook; for a run that did not
    finish, the numbers it saved and why it stopped."""
    status = results.get("status")
    if status == "running":
        return {}
    if status == "failed":
        return {"error": results.get("error") or status}
    numbers = headline_numbers(results)
    if status == "interrupted":
        return {**numbers, "note": results.get("error") or status}
    return numbers


def headline_numbers(results: dict[str, Any]) -> dict[str, Any]:
    if "demo" in results:
        demo = results["demo"]
        return {
            "TTFT (ms)": demo.get("ttft_ms"),
            "output tokens": demo.get("num_output_tokens"),
            "output tokens/s": demo.get("output_tokens_per_s"),
        }
    if "perf" in results:
        out = {}
        for point in results["perf"].get("points", []):
            p, v = point["params"], point["vendor"]
            key = f"{p['input_len']}x{p['batch_size']}->{p['max_output_len']}"
            out[f"{key} TTFT (ms)"] = v.get("ttft_ms")
            out[f"{key} TPS"] = v.get("tps")
        return out
    if "mmmu" in results:
        mmmu = results["mmmu"]
        overall = mmmu.get("overall", {})
        return {"MMMU accuracy": overall.get("acc"), "questions": overall.get("n")}
    return {}


def reproduce_command(results: dict[str, Any]) -> str:
    """The papermill command that re-runs this notebook with exactly these parameters."""
    notebook = results.get("notebook", "notebook")
    parts = ["papermill", f"notebooks/{notebook}.ipynb", f"{notebook}-rerun.ipynb"]
    for name, value in (results.get("parameters") or {}).items():
        parts += ["-y", f"{name}: {json.dumps(value)}"]
    return " ".join(shlex.quote(p) for p in parts)


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

    @classmethod
    def of(cls, results: dict[str, Any]) -> RunSummary:
        params = results.get("parameters") or {}
        return cls(
            folder=str(Path(results.get("_path", ".")).parent),
            notebook=str(results.get("notebook", "?")),
            status=str(results.get("status", "?")),
            label=str(results.get("label") or params.get("label") or ""),
            started_at=str(results.get("started_at") or ""),
            device=device_name(results),
            model=str(params.get("model", "?")),
            revision=model_revision(results),
            headline=headline(results),
            engine=engine_line(results),
            weights=weights_line(results),
        )
