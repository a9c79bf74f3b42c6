"""Checkpoints the kit builds itself (the tiny model, a weightless full-size folder), kept
in the kit's cache: built once in a staging folder under a lock, moved in place, and
rebuilt when a file, the builder's version or a source file it copies has changed."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.files import check_writable, file_digest, locked, write_atomic

BUILD_MANIFEST = "kit-smoke.json"  # in every folder the kit built: identity and file hashes


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, jsonio.dumps(data, indent=2, sort_keys=True) + "\n")


def save_random_model(
    dest: Path, model_class: Any, config: Any, seed: int, family: str, builder_version: int
) -> None:
    """Seeded random float32 weights by transformers' own model class (fp32 on CPU, as the
    Phi3V tiny model's note says), and the folder's family marker."""
    import torch

    config.dtype = torch.float32
    torch.manual_seed(seed)
    model_class(config).save_pretrained(dest)
    write_json(dest / "kit-family.json", {"family": family, "builder_version": builder_version})


def read_build_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a folder the kit built (None for any other folder)."""
    try:
        data = json.loads((Path(folder) / BUILD_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_build_manifest(dest: Path, identity: Mapping[str, Any]) -> None:
    files = sorted(p.name for p in dest.iterdir() if p.is_file())
    write_json(
        dest / BUILD_MANIFEST,
        {**identity, "files": {name: file_digest(dest / name).sha256 for name in files}},
    )


def is_valid(
    folder: Path, identity: Mapping[str, Any], sources: Mapping[str, Path] | None = None
) -> bool:
    """Reusable when its manifest has this ``identity``, every file has its recorded hash,
    and each file copied from the kit (``sources``: name in the folder -> source file)
    still equals its source."""
    manifest = read_build_manifest(folder)
    if manifest is None or any(manifest.get(k) != v for k, v in identity.items()):
        return False
    recorded = manifest.get("files", {})
    for name, source in (sources or {}).items():
        if recorded.get(name) != file_digest(source).sha256:
            return False  # the kit's copy changed since this folder was built
    return all(
        (folder / name).is_file() and file_digest(folder / name).sha256 == digest
        for name, digest in recorded.items()
    )


def ensure_built(
    target: Path,
    build: Callable[[Path], None],
    identity: Mapping[str, Any],
    sources: Mapping[str, Path] | None = None,
) -> Path:
    """``target``, built first (in a staging folder, moved in place, once, under a lock)
    unless it is valid already."""
    if is_valid(target, identity, sources):
        return target
    check_writable(
        target.parent,
        "The kit's cache folder",
        "Set KIT_CACHE_DIR to a folder you can write to (e.g. "
        "KIT_CACHE_DIR=$HOME/.cache/vlm-repro-kit); the tiny model is built there once.",
    )
    with locked(target.parent / f".{target.name}.lock"):
        if is_valid(target, identity, sources):  # another process built it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            build(staging)
            write_build_manifest(staging, identity)
            staging.chmod(0o755)
            for path in staging.iterdir():
                path.chmod(0o644)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
