"""Fetching a planned snapshot, checking it against its source, and writing its ``manifest.json``.

The vendor's instruction is "download everything at ModelScope
LLM-Research/Phi-3.5-vision-instruct, branch master, commit 1ce2adc1, into a folder
Phi-3.5-vision-instruct". This module does the fetching with the sources' own clients
(kit.download.hub_clients) and adds what the instruction leaves to luck:

- a folder already complete per its manifest is not fetched again; with ``verify`` every
  file's sha256 is checked first and only damaged files are fetched again;
- a local file of the wrong size is removed before fetching, since the clients would trust it;
- after the download, sizes and hashes are checked against what the source publishes; files
  that arrive wrong are fetched once more, then removed, and the run fails without a
  manifest;
- the files a model needs are checked for (config, processor, tokenizer, every shard the
  index names, the Python modules ``auto_map`` names);
- ``manifest.json`` records source, repo, revision, commit, every file's size and sha256, the
  Python files (vLLM executes them with trust_remote_code), the tools' versions and the
  time. kit.records.manifest reads and checks it for everyone else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kit import __version__
from kit.core.files import file_digest
from kit.core.progress import format_duration, human_bytes
from kit.download.hub_clients import (
    HEX,
    SOURCE_LABEL,
    RemoteFile,
    Snapshot,
    Target,
    VerificationFailed,
    client_for,
)
from kit.download.plan import DownloadPlan, plan_target
from kit.download.progress import FileProgress
from kit.records.download import DownloadResult
from kit.records.manifest import (
    MANIFEST,
    MANIFEST_VERSION,
    hash_problems,
    remote_code,
    required_files_problems,
    write_manifest,
)
from kit.runs.environment import package_versions


def fetch_all(
    plans: list[DownloadPlan], verify: bool = True, out: Callable = print
) -> list[DownloadResult]:
    return [fetch_target(plan, verify=verify, out=out) for plan in plans]


def fetch_target(
    plan: DownloadPlan, verify: bool = True, out: Callable = print, client=None
) -> DownloadResult:
    target = plan.target
    started = time.monotonic()
    if plan.complete:
        assert plan.manifest is not None
        if not verify:
            out(f"[{target.kind}] {target.folder}: complete per {MANIFEST}, nothing fetched")
            return _result_from_manifest(plan.manifest, target, False, started, 0, 0)
        out(
            f"[{target.kind}] {target.folder}: complete per {MANIFEST}; "
            "checking the sha256 of every file"
        )
        damaged = [p for p, bad in hash_problems(target.folder, plan.manifest).items() if bad]
        if not damaged:
            out(f"[{target.kind}] all {len(plan.manifest['files'])} files match, nothing fetched")
            return _result_from_manifest(plan.manifest, target, True, started, 0, 0)
        out(f"[{target.kind}] damaged on disk, fetching again: {', '.join(damaged)}")
        for path in damaged:
            (target.folder / path).unlink(missing_ok=True)
        plan = plan_target(target, client)
    client = client or client_for(target)
    snapshot = plan.snapshot
    assert snapshot is not None
    folder = target.folder
    folder.mkdir(parents=True, exist_ok=True)
    if plan.to_fetch or plan.stale:
        (folder / MANIFEST).unlink(missing_ok=True)  # the folder is about to change
    for path in plan.stale:
        (folder / path).unlink(missing_ok=True)
    if target.source == "huggingface":
        _remove_dead_partials(folder)
    progress = FileProgress(target.kind, len(plan.selected), plan.total_bytes, out)
    fetched = _fetch_files(client, plan, progress, plan.to_fetch, plan.selected)
    out(
        f"[{target.kind}] {len(plan.to_fetch)} fetched ({human_bytes(plan.fetch_bytes)}), "
        f"{len(plan.selected) - len(plan.to_fetch)} kept, "
        f"in {format_duration(time.monotonic() - started)}"
    )
    entries, problems = _check_files(folder, plan.selected, verify, out, target.kind)
    if problems:  # one more try for files that arrived wrong, then give up
        retry = [f for f in plan.selected if f.path in problems]
        for f in retry:
            (folder / f.path).unlink(missing_ok=True)
        out(f"[{target.kind}] fetching again: {', '.join(sorted(problems))}")
        retry_progress = FileProgress(target.kind, len(retry), sum(f.size for f in retry), out)
        fetched += _fetch_files(client, plan, retry_progress, retry, retry)
        more, problems = _check_files(folder, retry, verify, out, target.kind)
        entries.update(more)
    if problems:
        for path in problems:
            (folder / path).unlink(missing_ok=True)
        raise VerificationFailed(
            f"{target.repo_id}@{snapshot.commit}: these files do not match what "
            f"{SOURCE_LABEL[target.source]} publishes, even after fetching them again:\n"
            + "\n".join(f"  {p}: {why}" for p, why in sorted(problems.items()))
            + "\nThey were removed; no manifest was written. Run again later, or try another "
            "endpoint (-p endpoint URL)."
        )
    missing = required_files_problems(folder, target.kind, target.splits)
    if missing:
        raise VerificationFailed(
            f"{target.repo_id}@{snapshot.commit} downloaded, but the folder is not usable:\n"
            + "\n".join(f"  {m}" for m in missing)
            + "\nCheck the repository id and revision."
        )
    if plan.manifest and manifest_matches_repo(plan.manifest, target, snapshot.commit):
        splits = sorted(set(target.splits) | set(plan.manifest.get("splits") or []))
        for path, entry in (plan.manifest.get("files") or {}).items():
            if path not in entries and (folder / path).is_file():
                entries[path] = entry  # earlier splits of the same commit stay listed
    else:
        splits = list(target.splits)
    manifest = build_manifest(target, snapshot, entries, splits, verify)
    manifest_path = write_manifest(folder, manifest)
    out(f"[{target.kind}] wrote {manifest_path}")
    return DownloadResult(
        kind=target.kind,
        source=target.source,
        repo_id=target.repo_id,
        revision=target.revision,
        commit=snapshot.commit,
        folder=str(folder),
        files=len(entries),
        bytes=sum(e["size"] for e in entries.values()),
        fetched_files=len(fetched),
        fetched_bytes=sum(f.size for f in fetched),
        kept_files=len(plan.selected) - len(plan.to_fetch),
        verified=verify,
        seconds=round(time.monotonic() - started, 3),
        manifest=str(manifest_path),
        remote_code=manifest["remote_code"],
        notes=_notes(target, snapshot),
    )


def manifest_matches_repo(manifest: dict, target: Target, commit: str | None) -> bool:
    return (manifest.get("source"), manifest.get("repo_id"), manifest.get("commit")) == (
        target.source,
        target.repo_id,
        commit,
    )


def _notes(target: Target, snapshot: Snapshot) -> list[str]:
    notes = []
    if not HEX.fullmatch(target.revision):
        notes.append(
            f"revision {target.revision!r} is a branch or tag: it resolved to commit "
            f"{snapshot.commit}; pass that commit to pin it"
        )
    if snapshot.commit and len(snapshot.commit) < 40:
        notes.append(f"{SOURCE_LABEL[target.source]} reported only a short commit id")
    if not snapshot.commit:
        notes.append(f"{SOURCE_LABEL[target.source]} did not report the commit")
    return notes


def _fetch_files(
    client,
    plan: DownloadPlan,
    progress: FileProgress,
    files: list[RemoteFile],
    listed: list[RemoteFile],
) -> list[RemoteFile]:
    """Fetch ``files``; the other ``listed`` ones are reported as kept."""
    fetched = []
    wanted = {f.path for f in files}
    for file in listed:
        if file.path not in wanted:
            progress.keep(file.path, file.size)
            continue
        local = plan.target.folder / file.path
        if local.exists() and local.stat().st_size != file.size:
            local.unlink()  # truncated or stale: the clients would trust it otherwise
        progress.start(file.path, file.size)
        client.fetch(plan.target, plan.snapshot, file, progress)
        progress.finish()
        fetched.append(file)
    return fetched


def _remove_dead_partials(folder: Path) -> None:
    """huggingface_hub names partial files per process and cannot resume them: drop leftovers."""
    downloads = folder / ".cache" / "huggingface" / "download"
    if downloads.is_dir():
        for partial in downloads.rglob("*.incomplete"):
            partial.unlink(missing_ok=True)


def _check_files(
    folder: Path, files: list[RemoteFile], verify: bool, out: Callable, label: str
) -> tuple[dict[str, dict], dict[str, str]]:
    """Manifest entries for ``files``, and {path: problem} for those that do not match."""
    entries: dict[str, dict] = {}
    problems: dict[str, str] = {}
    if verify:
        out(f"[{label}] checking sizes and hashes of {len(files)} files")
    for file in files:
        local = folder / file.path
        if not local.is_file():
            problems[file.path] = "missing"
            continue
        size = local.stat().st_size
        if size != file.size:
            problems[file.path] = f"size {size}, the source lists {file.size}"
            continue
        if not verify and file.sha256:  # large files: record the published hash unchecked
            entries[file.path] = {
                "size": size,
                "sha256": file.sha256,
                "checked": False,
                "published": file.published,
            }
            continue
        digest = file_digest(local, git_blob=bool(file.git_sha1))
        if verify and file.sha256 and digest.sha256 != file.sha256.lower():
            problems[file.path] = (
                f"sha256 {digest.sha256[:12]}..., the source publishes {file.sha256[:12]}..."
            )
            continue
        if verify and file.git_sha1 and digest.git_blob_sha1 != file.git_sha1.lower():
            problems[file.path] = (
                f"git blob id {(digest.git_blob_sha1 or '?')[:12]}..., "
                f"the source lists {file.git_sha1[:12]}..."
            )
            continue
        entries[file.path] = {
            "size": size,
            "sha256": digest.sha256,
            "checked": bool(verify and file.published),
            "published": file.published,
        }
    return entries, problems


def build_manifest(
    target: Target, snapshot: Snapshot, entries: dict[str, dict], splits: list[str], verified: bool
) -> dict:
    return {
        "kit_manifest": MANIFEST_VERSION,
        "kind": target.kind,
        "source": target.source,
        "endpoint": snapshot.endpoint,
        "repo_id": target.repo_id,
        "revision": target.revision,
        "commit": snapshot.commit,
        "splits": splits if target.kind == "dataset" else None,
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "verified": verified,
        "file_count": len(entries),
        "total_bytes": sum(e["size"] for e in entries.values()),
        "tool": _tool_versions(target.source),
        "remote_code": remote_code(target.folder) if target.kind == "model" else [],
        "files": dict(sorted(entries.items())),
    }


def _tool_versions(source: str) -> dict[str, str | None]:
    names = ("huggingface_hub",) if source == "huggingface" else ("modelscope", "modelscope-hub")
    return {"kit": __version__, **package_versions(names)}


def _result_from_manifest(
    manifest: dict, target: Target, verified: bool, started: float, fetched: int, nbytes: int
) -> DownloadResult:
    files = manifest.get("files") or {}
    return DownloadResult(
        kind=target.kind,
        source=target.source,
        repo_id=target.repo_id,
        revision=target.revision,
        commit=manifest.get("commit"),
        folder=str(target.folder),
        files=len(files),
        bytes=sum(e["size"] for e in files.values()),
        fetched_files=fetched,
        fetched_bytes=nbytes,
        kept_files=len(files),
        verified=verified,
        seconds=round(time.monotonic() - started, 3),
        manifest=str(target.folder / MANIFEST),
        remote_code=manifest.get("remote_code") or [],
        notes=[f"complete since {manifest.get('downloaded_at')}; nothing fetched"],
    )


def remote_code_rows(results: list[DownloadResult]) -> list[dict]:
    return [
        {"file": e["path"], "size": e["size"], "sha256": e["sha256"], "named by": e["named_by"]}
        for r in results
        for e in r.remote_code
    ]
