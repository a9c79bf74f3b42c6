"""The document's first claim, checked in the kernel: which model revision a folder holds
(its download manifest) and whether its files are intact, without network."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError
from kit.models.checkpoint import is_hub_id, is_weightless_folder
from kit.models.registry import TINY_MODEL, named_model
from kit.records.manifest import read_manifest, sizes_match, verify_folder

#: How a kit-built model is recorded, by its weights (kit.models.family.NamedModel).
KIND_OF_NAMED = {"random": "smoke", "dummy": "dummy"}


def model_kind(model: str) -> str:
    """ "smoke" (the tiny model), "dummy" (no weights), "folder" or "hub id"; a path that is
    not a folder is refused."""
    named = named_model(model)
    if named is not None:
        return KIND_OF_NAMED[named.weights]
    path = Path(model).expanduser()
    if path.is_dir():
        return "dummy" if is_weightless_folder(path) else "folder"
    if is_hub_id(model):
        return "hub id"
    raise ParameterError(
        f"Parameter 'model': folder {model!r} does not exist. Give the Phi-3.5-vision-instruct "
        "folder (python -m kit run download -f params/download-phi35v-modelscope.yaml makes "
        f"one), or {TINY_MODEL} for the kit's tiny model."
    )


@dataclass(frozen=True)
class ModelCheck:
    """What the model folder says about its revision, and whether its files are intact."""

    model: str
    kind: str  # smoke, dummy, folder, hub id
    path: str | None = None
    manifest: dict[str, Any] | None = None  # source, repo_id, revision, commit, downloaded_at
    hashed: bool = False  # every file's sha256 compared with the manifest
    problems: tuple[str, ...] = ()
    files: int = 0
    bytes: int = 0

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ModelCheck:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["problems"] = tuple(values.get("problems") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": list(self.problems)}


MANIFEST_KEYS = ("source", "repo_id", "revision", "commit", "downloaded_at", "verified")


def check_model(model: str, verify_hashes: bool = True) -> ModelCheck:
    """The manifest of a model folder and, with ``verify_hashes``, every file against it
    (kit.records.manifest.verify_folder: no network)."""

    kind = model_kind(model)
    if kind == "hub id" or named_model(model) is not None:
        return ModelCheck(model, kind)
    folder = Path(model).expanduser().resolve()
    manifest = read_manifest(folder)
    summary = None if manifest is None else {k: manifest.get(k) for k in MANIFEST_KEYS}
    if manifest is None:
        return ModelCheck(model, kind, str(folder))
    files = manifest.get("files") or {}
    if verify_hashes:
        problems = tuple(verify_folder(folder).problems)
    else:
        problems = tuple(f"{p}: missing or another size" for p in sizes_match(folder, manifest))
    return ModelCheck(
        model,
        kind,
        str(folder),
        summary,
        verify_hashes,
        problems,
        len(files),
        sum(int(e.get("size") or 0) for e in files.values()),
    )
