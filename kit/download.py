"""Pinned, verified snapshots of the model and of MMMU, from the Hugging Face Hub or ModelScope.

The vendor's instruction is "download everything at ModelScope LLM-Research/Phi-3.5-vision-instruct,
branch master, commit 1ce2adc1, into a folder Phi-3.5-vision-instruct". This module does that
with the sources' own clients (kit.hub_clients: huggingface_hub, modelscope_hub) and adds what
the instruction leaves to luck:

- the revision (branch, tag or commit) is resolved to the commit it points at, and every file
  is fetched at that commit;
- a folder that is already complete (its ``manifest.json`` matches the request and every file
  has its recorded size) is not fetched again, not even looked up online; files of the right
  size are kept, others are fetched again; progress is printed per file and overall;
- free disk space is checked against what is still to fetch before anything is written;
- after the download, sizes and hashes are checked against what the source publishes (LFS
  sha256 and git blob ids on the hub, Sha256 on ModelScope), the files a model needs are
  checked for (config, processor, tokenizer, every shard the index names, the Python modules
  ``auto_map`` names), and ``manifest.json`` records source, repo, revision, commit, every
  file's size and sha256, the Python files (vLLM executes them with trust_remote_code) and
  the time. kit.manifest reads and checks that manifest for everyone else: runs quote it in
  their results (kit.environment), the engine refuses a folder whose Python files changed;
- an unreachable source gives one clear message, including how to bring a copy from another
  machine and check it with ``python -m kit verify <folder>`` (:func:`verify_main`).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from kit import __version__
from kit.hub_clients import (
    HEX,
    SOURCE_LABEL,
    DownloadError,
    RemoteFile,
    Snapshot,
    Target,
    VerificationFailed,
    client_for,
)
from kit.manifest import (
    MANIFEST,
    MANIFEST_VERSION,
    file_digest,
    hash_problems,
    read_manifest,
    remote_code,
    required_files_problems,
    sizes_match,
    verify_folder,
    write_manifest,
)
from kit.params import ParameterError

SOURCES = ("huggingface", "modelscope")
WHAT = ("model", "dataset", "both")
SPLITS = ("dev", "validation", "test")

#: Phi-3.5-vision-instruct per source: (repo id, pinned revision).
#: ModelScope: the vendor's pin (branch master, commit 1ce2adc1). Hub: the commit that
#: public transformers caches of microsoft/Phi-3.5-vision-instruct record as _commit_hash.
PINNED_MODEL = {
    "huggingface": (
        "microsoft/Phi-3.5-vision-instruct",
        "4a0d683eba9f1d0cbfb6151705d1ee73c25a80ca",
    ),
    "modelscope": ("LLM-Research/Phi-3.5-vision-instruct", "1ce2adc1"),
}
#: MMMU/MMMU on the hub: a commit of the dataset repo with the 900-question validation split.
#: No pin is known for a ModelScope mirror: its branch is resolved and the commit recorded.
PINNED_DATASET = {
    "huggingface": "98e6ac0cb9b7b2cd2c991b85a50762edc4aedc68",
    "modelscope": "master",
}
DEFAULT_BRANCH = {"huggingface": "main", "modelscope": "master"}
PROGRESS_INTERVAL_S = float(os.environ.get("KIT_PROGRESS_INTERVAL", "10"))
#: Extra free space asked for beyond the files themselves (temporary files, metadata).
DISK_MARGIN_BYTES = 64 * 2**20


# --------------------------------------------------------------------------------------
# Errors beyond the clients' (kit.hub_clients): one clear message each
# --------------------------------------------------------------------------------------
class NotEnoughDiskSpace(DownloadError):
    """What is still to fetch does not fit on the target filesystem."""


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------
@dataclass
class DownloadParams:
    source: str = "huggingface"  # "huggingface" or "modelscope"
    model_id: str = ""  # "": Phi-3.5-vision-instruct on the chosen source
    revision: str = ""  # branch, tag or commit; "": the pinned commit for the chosen source
    model_dir: str = "models/Phi-3.5-vision-instruct"
    dataset_id: str = "MMMU/MMMU"
    dataset_revision: str = ""  # "": the pinned commit (hub); ModelScope: master, recorded
    dataset_dir: str = "data/MMMU"
    dataset_splits: list[str] = field(default_factory=lambda: ["validation"])
    what: str = "both"  # "model", "dataset" or "both"
    verify: bool = True  # check sizes and sha256 against the source after downloading
    endpoint: str = ""  # "": the client default (or HF_ENDPOINT / MODELSCOPE_ENDPOINT)
    label: str = ""  # free text that names this run in the run index

    def check(self) -> None:
        self.source = self.source.strip().lower()
        if self.source not in SOURCES:
            raise ParameterError(
                f"Parameter 'source' must be one of {', '.join(SOURCES)}, got {self.source!r}."
            )
        self.what = self.what.strip().lower()
        if self.what not in WHAT:
            raise ParameterError(
                f"Parameter 'what' must be one of {', '.join(WHAT)}, got {self.what!r}."
            )
        splits = list(dict.fromkeys(s.strip() for s in self.dataset_splits if s.strip()))
        bad = [s for s in splits if s not in SPLITS]
        if bad or not splits:
            raise ParameterError(
                f"Parameter 'dataset_splits' must list MMMU splits among {', '.join(SPLITS)} "
                f"(got {self.dataset_splits!r}). Fix: -p dataset_splits validation,dev"
            )
        self.dataset_splits = splits
        for name in ("model_id", "revision", "dataset_id", "dataset_revision", "endpoint"):
            setattr(self, name, getattr(self, name).strip())
        for name in ("model_dir", "dataset_dir"):
            if not getattr(self, name).strip():
                raise ParameterError(f"Parameter {name!r} is empty: give the folder to write.")
        if self.what == "both" and _resolved(self.model_dir) == _resolved(self.dataset_dir):
            raise ParameterError(
                "Parameters 'model_dir' and 'dataset_dir' name the same folder; each needs "
                "its own (each gets its own manifest.json)."
            )
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ParameterError(
                f"Parameter 'endpoint' must be a URL starting with http:// or https://, got "
                f"{self.endpoint!r}. Leave it empty for the source's default."
            )

    def targets(self) -> list[Target]:
        out = []
        if self.what in ("model", "both"):
            repo_id, pinned = PINNED_MODEL[self.source]
            out.append(
                Target(
                    kind="model",
                    source=self.source,
                    repo_id=self.model_id or repo_id,
                    revision=self.revision
                    or (pinned if self.model_id in ("", repo_id) else DEFAULT_BRANCH[self.source]),
                    folder=Path(self.model_dir).expanduser(),
                    endpoint=self.endpoint or None,
                )
            )
        if self.what in ("dataset", "both"):
            out.append(
                Target(
                    kind="dataset",
                    source=self.source,
                    repo_id=self.dataset_id,
                    revision=self.dataset_revision or PINNED_DATASET[self.source],
                    folder=Path(self.dataset_dir).expanduser(),
                    splits=list(self.dataset_splits),
                    endpoint=self.endpoint or None,
                )
            )
        return out

    def preflight(self) -> None:
        """Before the notebook runs: the source answers, the revision exists, the files fit."""
        plan_all(self)


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()


# --------------------------------------------------------------------------------------
# Progress: one line per file, and a throttled line with file and overall totals
# --------------------------------------------------------------------------------------
def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    def __init__(
        self,
        label: str,
        files: int,
        total_bytes: int,
        out: Callable[[str], None] = print,
        interval: float | None = None,
    ):
        self.label, self.files, self.total = label, files, total_bytes
        self.out = out
        self.interval = PROGRESS_INTERVAL_S if interval is None else interval
        self.done = 0  # bytes of finished files (fetched or kept)
        self.current = 0  # bytes of the file in flight
        self.index = 0
        self.path = ""
        self.size = 0
        self.started = time.monotonic()
        self.file_started = self.started
        self.fetched_bytes = 0
        self._last = self.started
        self._lock = threading.Lock()

    def _say(self, text: str) -> None:
        self.out(f"[{self.label}] {text}")

    def keep(self, path: str, size: int) -> None:
        self.index += 1
        self.done += size
        self._say(f"{self.index}/{self.files} {path}: already complete ({human(size)}), kept")

    def start(self, path: str, size: int) -> None:
        self.index += 1
        self.path, self.size, self.current = path, size, 0
        self.file_started = time.monotonic()
        self._say(f"{self.index}/{self.files} {path}: fetching {human(size)}")

    def advance(self, n: float) -> None:
        with self._lock:  # ModelScope reports ranged parts from several threads
            self.current = max(0, self.current + int(n or 0))
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
        self.report(now)

    def report(self, now: float | None = None) -> None:
        now = now or time.monotonic()
        overall = self.done + self.current
        rate = (self.fetched_bytes + self.current) / max(now - self.started, 1e-6)
        eta = (self.total - overall) / rate if rate > 0 else 0
        pct = 100 * self.current / self.size if self.size else 100
        tot = 100 * overall / self.total if self.total else 100
        self._say(
            f"{self.index}/{self.files} {self.path}: {human(self.current)} / {human(self.size)} "
            f"({pct:.0f}%) | overall {human(overall)} / {human(self.total)} ({tot:.0f}%) | "
            f"{human(rate)}/s | ETA {_duration(eta)}"
        )

    def finish(self) -> None:
        seconds = time.monotonic() - self.file_started
        self.done += self.size
        self.fetched_bytes += self.size
        self.current = 0
        rate = f", {human(self.size / seconds)}/s" if seconds >= 1 else ""
        self._say(f"{self.index}/{self.files} {self.path}: done in {_duration(seconds)}{rate}")

    def bar_class(self) -> type:
        """A tqdm stand-in for huggingface_hub (``tqdm_class``) feeding this progress."""
        progress = self

        class FileBar:
            def __init__(self, *args, total=None, initial=0, **kwargs):
                self.n, self.total = initial or 0, total
                if initial:
                    progress.advance(initial)

            def update(self, n=1):
                self.n += n or 0
                progress.advance(n)

            def update_transfer(self, n=1):  # network bytes (Xet); disk bytes count
                pass

            def set_postfix_str(self, *args, **kwargs):
                pass

            set_transfer_postfix_str = set_postfix_str
            refresh = clear = close = set_postfix_str

            @property
            def format_dict(self):
                return {}

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        return FileBar

    def callback_class(self) -> type:
        """A ModelScope ProgressCallback subclass feeding this progress."""
        from modelscope_hub._download import ProgressCallback

        progress = self

        class Callback(ProgressCallback):
            def update(self, size: int) -> None:
                progress.advance(size)

        return Callback


# --------------------------------------------------------------------------------------
# Local folder state
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# Plan: is the folder complete? else resolve, select, check disk space
# --------------------------------------------------------------------------------------
@dataclass
class Plan:
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
        commit = (self.manifest or {}).get("commit") if self.complete else self.snapshot.commit
        files = len(self.manifest["files"]) if self.complete else len(self.selected)
        return {
            "what": t.kind,
            "source": SOURCE_LABEL[t.source],
            "repository": t.repo_id,
            "revision asked": t.revision,
            "commit": commit,
            "folder": str(t.folder),
            "files": files,
            "size": human(self.total_bytes),
            "to fetch": "nothing (complete per manifest.json)"
            if self.complete
            else f"{len(self.to_fetch)} files, {human(self.fetch_bytes)}",
            "free disk": human(self.free) if self.free is not None else None,
        }


def plan_target(target: Target, client=None) -> Plan:
    manifest = read_manifest(target.folder)
    if manifest_matches(manifest, target) and not sizes_match(target.folder, manifest):
        return Plan(target, complete=True, manifest=manifest)
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
    same_repo = bool(manifest) and (manifest.get("source"), manifest.get("repo_id")) == (
        target.source,
        target.repo_id,
    )
    older = manifest if same_repo and manifest.get("commit") != snapshot.commit else None
    to_fetch = [f for f in selected if not _reusable(target.folder, f, older)]
    wanted = {f.path for f in selected}
    stale = sorted(p for p in (older or {}).get("files", {}) if p not in wanted)
    free = free_bytes(target.folder)
    need = sum(f.size for f in to_fetch)
    if to_fetch and need + DISK_MARGIN_BYTES > free:
        raise NotEnoughDiskSpace(
            f"Not enough free disk space for {target.kind} {target.repo_id}: {len(to_fetch)} "
            f"files still to fetch need {human(need)} (+{human(DISK_MARGIN_BYTES)} margin), but "
            f"the filesystem holding {target.folder} has {human(free)} free. Free some space, or "
            f"choose a folder on a larger disk with -p "
            f"{'model_dir' if target.kind == 'model' else 'dataset_dir'} /path/to/folder. "
            "Nothing was downloaded."
        )
    return Plan(target, False, manifest, snapshot, selected, to_fetch, stale, free)


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


def plan_all(params: DownloadParams) -> list[Plan]:
    return [plan_target(target) for target in params.targets()]


# --------------------------------------------------------------------------------------
# Fetch, verify, record
# --------------------------------------------------------------------------------------
@dataclass
class TargetResult:
    kind: str
    source: str
    repo_id: str
    revision: str
    commit: str | None
    folder: str
    files: int
    bytes: int
    fetched_files: int
    fetched_bytes: int
    kept_files: int
    verified: bool
    seconds: float
    manifest: str
    remote_code: list[dict]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        return {
            "what": self.kind,
            "repository": self.repo_id,
            "revision asked": self.revision,
            "commit": self.commit,
            "files": self.files,
            "size": human(self.bytes),
            "fetched": f"{self.fetched_files} files, {human(self.fetched_bytes)}",
            "kept": self.kept_files,
            "hashes checked": "yes" if self.verified else "no (verify: false)",
            "time": _duration(self.seconds),
            "manifest": self.manifest,
        }


def fetch_all(plans: list[Plan], verify: bool = True, out: Callable = print) -> list[TargetResult]:
    return [fetch_target(plan, verify=verify, out=out) for plan in plans]


def fetch_target(
    plan: Plan, verify: bool = True, out: Callable = print, client=None
) -> TargetResult:
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
    progress = Progress(target.kind, len(plan.selected), plan.total_bytes, out)
    fetched = _fetch_files(client, plan, progress, plan.to_fetch, plan.selected)
    out(
        f"[{target.kind}] {len(plan.to_fetch)} fetched ({human(plan.fetch_bytes)}), "
        f"{len(plan.selected) - len(plan.to_fetch)} kept, "
        f"in {_duration(time.monotonic() - started)}"
    )
    entries, problems = _check_files(folder, plan.selected, verify, out, target.kind)
    if problems:  # one more try for files that arrived wrong, then give up
        retry = [f for f in plan.selected if f.path in problems]
        for f in retry:
            (folder / f.path).unlink(missing_ok=True)
        out(f"[{target.kind}] fetching again: {', '.join(sorted(problems))}")
        retry_progress = Progress(target.kind, len(retry), sum(f.size for f in retry), out)
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
    path = write_manifest(folder, manifest)
    out(f"[{target.kind}] wrote {path}")
    return TargetResult(
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
        manifest=str(path),
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
    client, plan: Plan, progress: Progress, files: list[RemoteFile], listed: list[RemoteFile]
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
                f"git blob id {digest.git_blob_sha1[:12]}..., "
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
    from kit.environment import package_versions

    names = ("huggingface_hub",) if source == "huggingface" else ("modelscope", "modelscope-hub")
    return {"kit": __version__, **package_versions(names)}


def _result_from_manifest(
    manifest: dict, target: Target, verified: bool, started: float, fetched: int, nbytes: int
) -> TargetResult:
    files = manifest.get("files") or {}
    return TargetResult(
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


# --------------------------------------------------------------------------------------
# On-demand verification: python -m kit verify <folder>
# --------------------------------------------------------------------------------------
def verify_main(args) -> int:
    folder: Path = args.folder
    print(f"verifying {folder} ...", flush=True)
    report = verify_folder(folder)
    m = report.manifest or {}
    if m:
        print(
            f"{m.get('kind')} {m.get('repo_id')} from "
            f"{SOURCE_LABEL.get(m.get('source'), m.get('source'))}"
            f", revision {m.get('revision')} -> commit {m.get('commit')}, downloaded "
            f"{m.get('downloaded_at')}"
        )
        for entry in m.get("remote_code") or []:
            print(f"  python file {entry['path']}  sha256 {entry['sha256']}")
    if report.ok:
        print(f"OK: {report.files} files, {human(report.bytes)}: sizes and sha256 match {MANIFEST}")
        return 0
    print(f"FAILED: {len(report.problems)} problem(s) in {folder}:", file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    print(
        "Fix: run the download notebook again for this folder (it keeps good files and fetches "
        "the others), or copy the folder again from a machine where it verifies.",
        file=sys.stderr,
    )
    return 1


# --------------------------------------------------------------------------------------
# Notebook helpers
# --------------------------------------------------------------------------------------
def remote_code_rows(results: list[TargetResult]) -> list[dict]:
    return [
        {"file": e["path"], "size": e["size"], "sha256": e["sha256"], "named by": e["named_by"]}
        for r in results
        for e in r.remote_code
    ]
