"""What a download has to do, decided before anything is written: nothing, or which files to fetch.

A folder whose ``manifest.json`` matches the request (source, repository, revision or its
commit, the dataset's splits) and whose files all have their recorded sizes is complete: the
source is not even asked. Otherwise the revision is resolved to the commit it points at and
every file is planned at that commit: files of the right size are kept (when the folder holds
an older commit, only those whose recorded sha256 is the one now published), files of the
older commit that are no longer listed are removed, a dataset must have parquet files for
every split asked, and free disk space is checked against what is still to fetch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kit.core.progress import human_bytes
from kit.download.hub_clients import (
    HEX,
    SOURCE_LABEL,
    DownloadError,
    RemoteFile,
    Snapshot,
    Target,
    client_for,
)
from kit.records.manifest import read_manifest, sizes_match

#: Extra free space asked for beyond the files themselves (temporary files, metadata).
DISK_MARGIN_BYTES = 64 * 2**20


class NotEnoughDiskSpace(DownloadError):
    """What is still to fetch does not fit on the target filesystem."""


def free_bytes(folder: Path) -> int:
    """Free space on the filesystem that will hold ``folder`` (which may not exist yet)."""
    probe = Path(folder).resolve()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def manifest_matches(manifest: dict | None, target: Target) -> bool:
    """Whether a folder's manifest is for this repo, source, revision and (datasets) splits."""
    if not manifest:
        return False
    if (manifest.get("source"), manifest.get("repo_id"), manifest.get("kind")) != (
        target.source,
        target.repo_id,
        target.kind,
    ):
        return False
    commit = (manifest.get("commit") or "").lower()
    asked = target.revision.lower()
    same = manifest.get("revision") == target.revision or (
        bool(commit) and HEX.fullmatch(asked) is not None and commit.startswith(asked)
    )
    if not same:
        return False
    return target.kind == "model" or set(target.splits) <= set(manifest.get("splits") or [])


@dataclass
class DownloadPlan:
    target: Target
    complete: bool  # complete per its manifest: nothing to look up or fetch
    manifest: dict | None = None  # the folder's manifest before this run
    snapshot: Snapshot | None = None
    selected: list[RemoteFile] = field(default_factory=list)
    to_fetch: list[RemoteFile] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # files of an older revision to remove
    free: int | None = None

    @property
    def total_bytes(self) -> int:
        if self.complete and self.manifest:
            return sum(e["size"] for e in self.manifest["files"].values())
        return sum(f.size for f in self.selected)

    @property
    def fetch_bytes(self) -> int:
        return sum(f.size for f in self.to_fetch)

    def row(self) -> dict[str, Any]:
        t = self.target
        if self.complete or self.snapshot is None:
            commit = (self.manifest or {}).get("commit")
            files = len((self.manifest or {}).get("files", {}))
        else:
            commit, files = self.snapshot.commit, len(self.selected)
        return {
            "what": t.kind,
            "source": SOURCE_LABEL[t.source],
            "repository": t.repo_id,
            "revision asked": t.revision,
            "commit": commit,
            "folder": str(t.folder),
            "files": files,
            "size": human_bytes(self.total_bytes),
            "to fetch": "nothing (complete per manifest.json)"
            if self.complete
            else f"{len(self.to_fetch)} files, {human_bytes(self.fetch_bytes)}",
            "free disk": human_bytes(self.free) if self.free is not None else None,
        }


def plan_target(target: Target, client=None) -> DownloadPlan:
    manifest = read_manifest(target.folder)
    if (
        manifest is not None
        and manifest_matches(manifest, target)
        and not sizes_match(target.folder, manifest)
    ):
        return DownloadPlan(target, complete=True, manifest=manifest)
    client = client or client_for(target)
    snapshot = client.resolve(target)
    selected = sorted((f for f in snapshot.files if target.select(f.path)), key=lambda f: f.path)
    if target.kind == "dataset":
        for split in target.splits:
            if not any(
                f.path.endswith(".parquet") and PurePosixPath(f.path).name.startswith(f"{split}-")
                for f in selected
            ):
                raise DownloadError(
                    f"Dataset {target.repo_id}@{snapshot.commit or target.revision} has no "
                    f"'{split}' parquet files (expected <Subject>/{split}-00000-of-00001.parquet). "
                    "Check dataset_id and dataset_splits."
                )
    if not selected:
        raise DownloadError(f"{target.repo_id}@{target.revision} lists no files to download.")
    older = None  # the manifest of an earlier commit of the same repository
    if manifest and (manifest.get("source"), manifest.get("repo_id")) == (
        target.source,
        target.repo_id,
    ):
        older = manifest if manifest.get("commit") != snapshot.commit else None
    to_fetch = [f for f in selected if not _reusable(target.folder, f, older)]
    wanted = {f.path for f in selected}
    stale = sorted(p for p in (older or {}).get("files", {}) if p not in wanted)
    free = free_bytes(target.folder)
    need = sum(f.size for f in to_fetch)
    if to_fetch and need + DISK_MARGIN_BYTES > free:
        raise NotEnoughDiskSpace(
            f"Not enough free disk space for {target.kind} {target.repo_id}: {len(to_fetch)} "
            f"files still to fetch need {human_bytes(need)} "
            f"(+{human_bytes(DISK_MARGIN_BYTES)} margin), but the filesystem holding "
            f"{target.folder} has {human_bytes(free)} free. Free some space, or "
            f"choose a folder on a larger disk with -p "
            f"{'model_dir' if target.kind == 'model' else 'dataset_dir'} /path/to/folder. "
            "Nothing was downloaded."
        )
    return DownloadPlan(target, False, manifest, snapshot, selected, to_fetch, stale, free)


def _reusable(folder: Path, file: RemoteFile, older: dict | None) -> bool:
    """A local file is kept when its size matches (the clients only move complete files into
    place; verification checks the hash) and, when the folder holds an older commit, its
    recorded sha256 is the one now published (small files without one are fetched again)."""
    local = folder / file.path
    if not (local.is_file() and local.stat().st_size == file.size):
        return False
    if older is None:
        return True
    entry = (older.get("files") or {}).get(file.path)
    return bool(entry and file.sha256 and entry.get("sha256") == file.sha256.lower())
