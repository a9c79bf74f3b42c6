"""A downloaded folder's ``manifest.json``, and the checks that compare the folder against it.

The download notebook (kit.download) writes the manifest: source, repository, revision, the
commit it resolved to, every file's size and sha256, and the Python files that vLLM executes
with trust_remote_code. Everything that later trusts a folder reads it through this module:
``python -m kit verify`` (:func:`verify_folder`), the engine's preflight
(:func:`check_remote_code`), and the provenance that every run records
(kit.runs.environment).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.files import file_digest, write_atomic
from kit.core.params import ParameterError

MANIFEST = "manifest.json"

MANIFEST_VERSION = 1


#: The config files whose ``auto_map`` entries name Python modules of the checkpoint.
AUTO_MAP_CONFIGS = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
)


class RemoteCodeChanged(ParameterError):
    """A model folder's Python files differ from those its manifest recorded."""


def local_files(folder: Path) -> list[str]:
    """Relative paths of files in ``folder``, hidden folders (.cache) and the manifest excluded."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if (
            path.is_file()
            and not any(p.startswith(".") for p in rel.parts)
            and rel.as_posix() != MANIFEST
        ):
            out.append(rel.as_posix())
    return sorted(out)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's download manifest, or None when there is none (or it is not the kit's)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kit_manifest") else None


def write_manifest(folder: Path, data: dict[str, Any]) -> Path:
    """Whole or not at all: a reader never sees half a manifest."""
    return write_atomic(folder / MANIFEST, jsonio.dumps(data, indent=2, sort_keys=False) + "\n")


def sizes_match(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Files of the manifest that are missing or have another size (cheap: no hashing)."""
    bad = []
    for path, entry in (manifest.get("files") or {}).items():
        local = folder / path
        if not local.is_file() or local.stat().st_size != entry.get("size"):
            bad.append(path)
    return bad


def hash_problems(folder: Path, manifest: dict[str, Any]) -> dict[str, str | None]:
    """{path: problem or None} for every file of the manifest (size, then sha256)."""
    out: dict[str, str | None] = {}
    for path, entry in (manifest.get("files") or {}).items():
        local = folder / path
        if not local.is_file():
            out[path] = "missing"
        elif local.stat().st_size != entry.get("size"):
            out[path] = f"size {local.stat().st_size}, the manifest records {entry.get('size')}"
        elif file_digest(local).sha256 != entry.get("sha256"):
            out[path] = "sha256 differs from the manifest (file changed or corrupted)"
        else:
            out[path] = None
    return out


def _json_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def auto_map_modules(folder: Path) -> dict[str, list[str]]:
    """Python files the config files' ``auto_map`` entries name: {file: [where named]}."""
    found: dict[str, list[str]] = {}
    for config in AUTO_MAP_CONFIGS:
        data = _json_file(Path(folder) / config) or {}
        for key, value in (data.get("auto_map") or {}).items():
            for ref in value if isinstance(value, list) else [value]:
                if not isinstance(ref, str) or "." not in ref:
                    continue
                module = ref.split("--", 1)[-1].rsplit(".", 1)[0]
                found.setdefault(f"{module.replace('.', '/')}.py", []).append(f"{config}:{key}")
    return found


def required_files_problems(folder: Path, kind: str, splits: list[str] | None = None) -> list[str]:
    """What is missing for the folder to be used: config, processor, tokenizer, weights, code."""
    folder = Path(folder)
    problems = []
    if kind == "dataset":
        for split in splits or []:
            if not list(folder.glob(f"*/{split}-*.parquet")) and not list(
                folder.glob(f"{split}-*.parquet")
            ):
                problems.append(f"no '{split}' parquet files (<Subject>/{split}-*.parquet)")
        return problems
    if _json_file(folder / "config.json") is None:
        problems.append("config.json is missing or not JSON")
    if not (folder / "preprocessor_config.json").is_file():
        problems.append("preprocessor_config.json (the image processor's settings) is missing")
    if not (folder / "tokenizer_config.json").is_file():
        problems.append("tokenizer_config.json is missing")
    if not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()):
        problems.append("the tokenizer (tokenizer.json or tokenizer.model) is missing")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = _json_file(index)
        if data is None or not isinstance(data.get("weight_map"), dict):
            problems.append("model.safetensors.index.json is not a valid index (no weight_map)")
        else:
            for shard in sorted(set(data["weight_map"].values())):
                if not (folder / shard).is_file():
                    problems.append(f"weight shard {shard} (named by the index) is missing")
    elif not (folder / "model.safetensors").is_file():
        problems.append("no weights: neither model.safetensors.index.json nor model.safetensors")
    for module, where in sorted(auto_map_modules(folder).items()):
        if not (folder / module).is_file():
            problems.append(f"{module} (named by {', '.join(where)}) is missing")
    return problems


def remote_code(folder: Path) -> list[dict[str, Any]]:
    """The folder's Python files with their sha256, as the manifest records them."""
    folder = Path(folder)
    named = auto_map_modules(folder)
    out = []
    for rel in local_files(folder):
        if rel.endswith(".py"):
            path = folder / rel
            out.append(
                {
                    "path": rel,
                    "size": path.stat().st_size,
                    "sha256": file_digest(path).sha256,
                    "named_by": ", ".join(named.get(rel, [])) or None,
                }
            )
    return out


def remote_code_changes(model_dir: str | Path) -> list[dict[str, Any]]:
    """How a model folder's Python files differ from its manifest: added, removed, modified.

    Empty when nothing changed, and for folders without a download manifest (the embedded
    tiny model, a hub id): there is no record to judge them against.
    """
    folder = Path(model_dir)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("kind") != "model":
        return []
    recorded = {e["path"]: e["sha256"] for e in manifest.get("remote_code") or []}
    present = {e["path"]: e["sha256"] for e in remote_code(folder)}
    changes = []
    for path in sorted(set(recorded) | set(present)):
        if path not in present:
            changes.append({"path": path, "change": "removed"})
        elif path not in recorded:
            changes.append({"path": path, "change": "added", "sha256": present[path]})
        elif present[path] != recorded[path]:
            changes.append(
                {
                    "path": path,
                    "change": "modified",
                    "sha256": present[path],
                    "recorded_sha256": recorded[path],
                }
            )
    return changes


def check_remote_code(
    model_dir: str | Path,
    allow_changed: bool = False,
    opt_in: str = "-p allow_changed_remote_code true",
) -> list[dict[str, Any]]:
    """For engine preflight: refuse a model folder whose Python files differ from its manifest.

    Returns :func:`remote_code_changes`; raises :class:`RemoteCodeChanged` when there are
    changes and ``allow_changed`` is false.
    """
    changes = remote_code_changes(model_dir)
    if changes and not allow_changed:
        lines = "\n".join(f"  {c['change']}: {c['path']}" for c in changes)
        raise RemoteCodeChanged(
            f"The Python files in {model_dir} differ from its {MANIFEST} (vLLM executes them "
            f"with trust_remote_code):\n{lines}\nRestore them by running the download notebook "
            f"again for this folder (it re-fetches files that do not match), check with "
            f"'python -m kit verify {model_dir}', or, if the change is yours and intended, "
            f"opt in with {opt_in}."
        )
    return changes


@dataclass
class VerifyReport:
    folder: Path
    manifest: dict[str, Any] | None
    problems: list[str]
    files: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_folder(folder: str | Path) -> VerifyReport:
    """Every file against the manifest (size and sha256), plus what a usable folder needs."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return VerifyReport(folder, None, [f"{folder} is not a folder"])
    manifest = read_manifest(folder)
    if manifest is None:
        kind = "model" if (folder / "config.json").is_file() else "dataset"
        problems = [
            f"no {MANIFEST}: sizes and hashes cannot be checked. Copy the folder together with "
            "the manifest.json the download notebook wrote, or download it with "
            "python -m kit run download"
        ]
        if kind == "model":
            problems += required_files_problems(folder, kind)
        return VerifyReport(folder, None, problems)
    problems = [f"{p}: {why}" for p, why in hash_problems(folder, manifest).items() if why]
    kind = manifest.get("kind", "model")
    problems += required_files_problems(folder, kind, manifest.get("splits") or [])
    if kind == "model":
        for change in remote_code_changes(folder):
            problems.append(f"{change['path']}: Python file {change['change']} since the download")
    files = manifest.get("files") or {}
    return VerifyReport(
        folder, manifest, problems, len(files), sum(e["size"] for e in files.values())
    )
