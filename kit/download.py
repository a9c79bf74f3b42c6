"""Pinned, verified snapshots of the model and of MMMU, from the Hugging Face Hub or ModelScope.

The vendor's instruction is "download everything at ModelScope LLM-Research/Phi-3.5-vision-instruct,
branch master, commit 1ce2adc1, into a folder Phi-3.5-vision-instruct". This module does that
with the sources' own clients (huggingface_hub, modelscope_hub) and adds what the instruction
leaves to luck:

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
  the time. Runs read that manifest into their results (kit.environment), and
  :func:`check_remote_code` lets the engine refuse a folder whose Python files changed;
- an unreachable source gives one clear message, including how to bring a copy from another
  machine and check it with ``python -m kit verify <folder>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from kit import __version__, jsonio
from kit.params import ParameterError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
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
SOURCE_LABEL = {"huggingface": "the Hugging Face Hub", "modelscope": "ModelScope"}
ENDPOINT_ENV = {"huggingface": "HF_ENDPOINT", "modelscope": "MODELSCOPE_ENDPOINT"}
API_TIMEOUT_S = float(os.environ.get("KIT_DOWNLOAD_TIMEOUT", "15"))
PROGRESS_INTERVAL_S = float(os.environ.get("KIT_PROGRESS_INTERVAL", "10"))
#: Extra free space asked for beyond the files themselves (temporary files, metadata).
DISK_MARGIN_BYTES = 64 * 2**20
HEX = re.compile(r"[0-9a-fA-F]{7,40}")


# --------------------------------------------------------------------------------------
# Errors: one clear message each, shown without a stack trace in notebooks and by the CLI
# --------------------------------------------------------------------------------------
class DownloadError(ParameterError):
    """A download problem the user can act on; the message says what and how."""

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not a traceback
        return [
            f"{type(self).__name__}: {line}" if i == 0 else line
            for i, line in enumerate(str(self).splitlines())
        ]


class SourceUnreachable(DownloadError):
    """The hub or ModelScope could not be reached (offline, DNS, proxy, outage)."""


class NotEnoughDiskSpace(DownloadError):
    """What is still to fetch does not fit on the target filesystem."""


class VerificationFailed(DownloadError):
    """Files are missing, or their size or hash differ from what the source publishes."""


class RemoteCodeChanged(ParameterError):
    """A model folder's Python files differ from those its manifest recorded."""


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


@dataclass
class Target:
    kind: str  # "model" or "dataset"
    source: str
    repo_id: str
    revision: str  # as asked (branch, tag or commit)
    folder: Path
    splits: list[str] = field(default_factory=list)  # datasets only
    endpoint: str | None = None

    def select(self, path: str) -> bool:
        """Whether a repository file belongs to this download."""
        if self.kind == "model":
            return True
        if path == "README.md":
            return True
        name = PurePosixPath(path).name
        return path.endswith(".parquet") and any(name.startswith(f"{s}-") for s in self.splits)

    @property
    def portable_folder(self) -> str:
        """The folder as given when relative (same layout elsewhere), else its name."""
        return self.folder.name if self.folder.is_absolute() else self.folder.as_posix()

    def cli_hint(self) -> str:
        """The download command that reproduces this target (for the offline message)."""
        args = ["python -m kit run download", f"-p source {self.source}", f"-p what {self.kind}"]
        if self.kind == "model":
            args += [f"-p model_id {self.repo_id}", f"-p revision {self.revision}"]
            args.append(f"-p model_dir {self.portable_folder}")
        else:
            args += [f"-p dataset_id {self.repo_id}", f"-p dataset_revision {self.revision}"]
            args += [
                f"-p dataset_splits {','.join(self.splits)}",
                f"-p dataset_dir {self.portable_folder}",
            ]
        return " ".join(args)


# --------------------------------------------------------------------------------------
# What a source publishes, and its clients
# --------------------------------------------------------------------------------------
@dataclass
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None  # published sha256 (hub LFS files, ModelScope)
    git_sha1: str | None = None  # published git blob id (hub, non-LFS files)

    @property
    def published(self) -> str | None:
        if self.sha256:
            return "sha256"
        if self.git_sha1:
            return "git-blob-sha1"
        return None


@dataclass
class Snapshot:
    commit: str | None  # the commit the revision resolved to, as the source reports it
    files: list[RemoteFile]
    endpoint: str


def client_for(target: Target):
    if target.source == "huggingface":
        return HubClient(target.endpoint)
    return ModelScopeClient(target.endpoint)


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


class HubClient:
    """The Hugging Face Hub through huggingface_hub (HfApi + hf_hub_download)."""

    source = "huggingface"

    def __init__(self, endpoint: str | None = None):
        from huggingface_hub import constants

        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip(
            "/"
        )

    def resolve(self, target: Target) -> Snapshot:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.endpoint)
        info = api.model_info if target.kind == "model" else api.dataset_info
        try:
            data = info(
                target.repo_id, revision=target.revision, files_metadata=True, timeout=API_TIMEOUT_S
            )
        except Exception as exc:
            raise self.translate(exc, target, "look up") from None
        files = [
            RemoteFile(
                path=s.rfilename,
                size=int(s.size or 0),
                sha256=s.lfs.sha256 if s.lfs else None,
                git_sha1=None if s.lfs else s.blob_id,
            )
            for s in data.siblings or []
        ]
        return Snapshot(commit=data.sha, files=files, endpoint=self.endpoint)

    def fetch(self, target: Target, snapshot: Snapshot, file: RemoteFile, progress: Progress):
        from huggingface_hub import hf_hub_download

        try:
            hf_hub_download(
                target.repo_id,
                file.path,
                repo_type=target.kind,
                revision=snapshot.commit,
                local_dir=target.folder,
                endpoint=self.endpoint,
                etag_timeout=API_TIMEOUT_S,
                tqdm_class=progress.bar_class(),
            )
        except Exception as exc:
            raise self.translate(exc, target, "download from") from None

    def translate(self, exc: Exception, target: Target, action: str) -> Exception:
        import httpx2
        from huggingface_hub import errors

        label = SOURCE_LABEL[self.source]
        if isinstance(exc, errors.RevisionNotFoundError):
            return DownloadError(
                f"Revision {target.revision!r} does not exist in {target.kind} {target.repo_id} on "
                f"{label}. Give a branch, a tag or a full 40-character commit "
                f"(parameter {'revision' if target.kind == 'model' else 'dataset_revision'})."
            )
        if isinstance(exc, errors.GatedRepoError):
            return DownloadError(
                f"{target.repo_id} on {label} is gated: accept its terms on the website, then log "
                "in on this machine (hf auth login, or set HF_TOKEN) and run again."
            )
        if isinstance(exc, errors.RepositoryNotFoundError):
            return DownloadError(
                f"{target.kind.capitalize()} {target.repo_id} was not found on {label} "
                f"({self.endpoint}), or it is private. Check the id "
                f"(parameter {'model_id' if target.kind == 'model' else 'dataset_id'})."
            )
        unreachable = (
            errors.OfflineModeIsEnabled,
            errors.LocalEntryNotFoundError,
            errors.FileMetadataError,
            httpx2.TransportError,
            ConnectionError,
            TimeoutError,
        )
        if isinstance(exc, unreachable) or (
            isinstance(exc, errors.HfHubHTTPError)
            and exc.response is not None
            and exc.response.status_code in (408, 429, 500, 502, 503, 504)
        ):
            return SourceUnreachable(unreachable_message(target, self.endpoint, exc, action))
        if isinstance(exc, errors.HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "an error"
            return DownloadError(
                f"{label} ({self.endpoint}) answered HTTP {status} for {target.repo_id}: "
                f"{_short_reason(exc)}. If the repository needs a login: hf auth login, or set "
                "HF_TOKEN."
            )
        if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
            return VerificationFailed(
                f"{target.repo_id}: a file arrived with the wrong size ({_short_reason(exc)}). "
                "Run again: complete files are kept and only this one is fetched again."
            )
        return exc


class ModelScopeClient:
    """ModelScope through modelscope_hub (shipped with modelscope >= 1.40)."""

    source = "modelscope"

    def __init__(self, endpoint: str | None = None):
        try:
            from modelscope_hub import HubApi, HubConfig
        except ImportError as exc:
            raise DownloadError(
                "source: modelscope needs the ModelScope client: pip install 'modelscope>=1.40' "
                f"(it ships modelscope_hub). Import failed: {exc}"
            ) from None
        config = HubConfig(endpoint=endpoint or os.environ.get("MODELSCOPE_ENDPOINT") or None)
        self.endpoint = config.endpoint
        self.api = HubApi(config)

    def resolve(self, target: Target) -> Snapshot:
        segment = "models" if target.kind == "model" else "datasets"
        route = "repo/files" if target.kind == "model" else "repo/tree"
        params: dict[str, Any] = {"Revision": target.revision, "Recursive": "True"}
        if target.kind == "dataset":
            params.update(PageNumber=1, PageSize=1)
        try:
            # One single-attempt listing answers "reachable?" fast and names the commit the
            # revision resolved to (LatestCommitter); the public listing API drops that field.
            response = self.api.legacy._request(
                "GET", f"{segment}/{target.repo_id}/{route}", params=params, single_attempt=True
            )
            data = response.json().get("Data") or {}
            committer = data.get("LatestCommitter") or {} if isinstance(data, dict) else {}
            commit = committer.get("Id") or committer.get("ShortId") or None
            listing_revision = commit if commit and len(commit) == 40 else target.revision
            entries = self.api.list_repo_files(
                target.repo_id, target.kind, revision=listing_revision, recursive=True
            )
        except Exception as exc:
            raise self.translate(exc, target, "look up") from None
        if commit and HEX.fullmatch(target.revision):
            asked = target.revision.lower()
            if not (commit.lower().startswith(asked) or asked.startswith(commit.lower())):
                raise DownloadError(
                    f"ModelScope resolved revision {target.revision!r} of {target.repo_id} to "
                    f"commit {commit}, which is not that commit. Check the revision."
                )
        files = [
            RemoteFile(path=f.path, size=int(f.size or 0), sha256=(f.sha256 or None))
            for f in entries
            if not f.is_dir and f.path
        ]
        return Snapshot(commit=commit, files=files, endpoint=self.endpoint)

    def fetch(self, target: Target, snapshot: Snapshot, file: RemoteFile, progress: Progress):
        commit = snapshot.commit
        revision = commit if commit and len(commit) == 40 else target.revision
        try:
            # ModelScope's client draws its own tqdm bars on stderr; the kit prints its own lines.
            with contextlib.redirect_stderr(io.StringIO()):
                self.api.downloader.download_file(
                    repo_id=target.repo_id,
                    repo_type=target.kind,
                    file_path=file.path,
                    revision=revision,
                    local_dir=target.folder,
                    cache_dir=target.folder / ".cache" / "modelscope",
                    expected_sha256=file.sha256,
                    file_size=file.size,
                    progress_callbacks=[progress.callback_class()],
                )
        except Exception as exc:
            raise self.translate(exc, target, "download from") from None

    def translate(self, exc: Exception, target: Target, action: str) -> Exception:
        from modelscope_hub import errors

        label = SOURCE_LABEL[self.source]
        if isinstance(exc, errors.FileIntegrityError):
            return VerificationFailed(
                f"{target.repo_id}: ModelScope kept serving a file whose size or sha256 differs "
                f"from its listing: {_short_reason(exc)}. Nothing wrong was kept; run again later."
            )
        if isinstance(exc, errors.NotExistError):
            if target.kind == "dataset":
                hint = (
                    " If MMMU has another id on ModelScope, pass it with -p dataset_id, or fetch "
                    "MMMU from the Hugging Face Hub (-f params/download-mmmu.yaml)."
                )
            elif HEX.fullmatch(target.revision):
                hint = (
                    " If ModelScope does not take this commit id, pass the branch it is on "
                    "(the vendor's 1ce2adc1 is on master: -p revision master) and compare the "
                    "commit the manifest records."
                )
            else:
                hint = " Check model_id and revision."
            return DownloadError(
                f"{target.kind.capitalize()} {target.repo_id} at revision {target.revision!r} was "
                f"not found on {label} ({self.endpoint}).{hint}"
            )
        if isinstance(exc, errors.AuthenticationError | errors.PermissionDeniedError):
            return DownloadError(
                f"{label} refused access to {target.repo_id} ({_short_reason(exc)}). Log in "
                "(modelscope login, or set MODELSCOPE_API_TOKEN) and run again."
            )
        if isinstance(exc, errors.NetworkError | errors.ServerError | errors.RateLimitError) or (
            isinstance(exc, ConnectionError | TimeoutError)
        ):
            return SourceUnreachable(unreachable_message(target, self.endpoint, exc, action))
        return exc


def unreachable_message(target: Target, endpoint: str, exc: BaseException, action: str) -> str:
    label = SOURCE_LABEL[target.source]
    folder = target.folder
    kept = (
        f"Files already in {folder} are kept; running again continues from there.\n"
        if local_files(folder)
        else ""
    )
    return (
        f"Could not {action} {label} at {endpoint} for {target.kind} {target.repo_id} "
        f"(revision {target.revision}): {_short_reason(exc)}\n"
        f"{kept}"
        f"If this machine cannot reach {label}, bring a copy from one that can:\n"
        f"  1. there:  {target.cli_hint()}\n"
        f"  2. copy the whole folder {target.portable_folder}/ (manifest.json included)\n"
        f"     to {folder} here, e.g. with rsync -a or scp -r\n"
        f"  3. here:   python -m kit verify {folder}\n"
        "Behind a proxy, set HTTPS_PROXY; to use a mirror, pass -p endpoint URL "
        f"(or set {ENDPOINT_ENV[target.source]})."
    )


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
def sha256_file(path: Path, git_sha1: bool = False) -> tuple[str, str | None]:
    """sha256 of a file, and its git blob id when asked (one read)."""
    digest = hashlib.sha256()
    git = hashlib.sha1(b"blob %d\0" % path.stat().st_size) if git_sha1 else None
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            if git is not None:
                git.update(block)
    return digest.hexdigest(), (git.hexdigest() if git is not None else None)


def local_files(folder: Path) -> list[str]:
    """Relative paths of files in ``folder``, hidden folders (.cache) and the manifest excluded."""
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


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kit_manifest") else None


def write_manifest(folder: Path, data: dict) -> Path:
    path = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(jsonio.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


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


def sizes_match(folder: Path, manifest: dict) -> list[str]:
    """Files of the manifest that are missing or have another size (cheap: no hashing)."""
    bad = []
    for path, entry in (manifest.get("files") or {}).items():
        local = folder / path
        if not local.is_file() or local.stat().st_size != entry.get("size"):
            bad.append(path)
    return bad


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
        damaged = [p for p, bad in _hash_problems(target.folder, plan.manifest).items() if bad]
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
        sha256, git_sha1 = sha256_file(local, git_sha1=bool(file.git_sha1))
        if verify and file.sha256 and sha256 != file.sha256.lower():
            problems[file.path] = (
                f"sha256 {sha256[:12]}..., the source publishes {file.sha256[:12]}..."
            )
            continue
        if verify and file.git_sha1 and git_sha1 != file.git_sha1.lower():
            problems[file.path] = (
                f"git blob id {git_sha1[:12]}..., the source lists {file.git_sha1[:12]}..."
            )
            continue
        entries[file.path] = {
            "size": size,
            "sha256": sha256,
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
# What a usable folder holds; remote code
# --------------------------------------------------------------------------------------
def _json_file(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def auto_map_modules(folder: Path) -> dict[str, list[str]]:
    """Python files the config files' ``auto_map`` entries name: {file: [where named]}."""
    found: dict[str, list[str]] = {}
    for config in (
        "config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "tokenizer_config.json",
    ):
        data = _json_file(folder / config) or {}
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


def remote_code(folder: Path) -> list[dict]:
    """The folder's Python files (vLLM runs them with trust_remote_code) with their sha256."""
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
                    "sha256": sha256_file(path)[0],
                    "named_by": ", ".join(named.get(rel, [])) or None,
                }
            )
    return out


def remote_code_changes(model_dir: str | Path) -> list[dict] | None:
    """Differences between a model folder's Python files and its manifest (None: no manifest)."""
    folder = Path(model_dir)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("kind") != "model":
        return None
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
) -> list[dict]:
    """For engine preflight: refuse a model folder whose Python files differ from its manifest.

    Returns the changes (empty when none, or when the folder has no download manifest, e.g.
    the embedded tiny model). Raises :class:`RemoteCodeChanged` when there are changes and
    ``allow_changed`` is false.
    """
    changes = remote_code_changes(model_dir) or []
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


# --------------------------------------------------------------------------------------
# On-demand verification: python -m kit verify <folder>
# --------------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    folder: Path
    manifest: dict | None
    problems: list[str]
    files: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _hash_problems(folder: Path, manifest: dict) -> dict[str, str | None]:
    """{path: problem or None} for every file of the manifest (size, then sha256)."""
    out: dict[str, str | None] = {}
    for path, entry in (manifest.get("files") or {}).items():
        local = folder / path
        if not local.is_file():
            out[path] = "missing"
        elif local.stat().st_size != entry.get("size"):
            out[path] = f"size {local.stat().st_size}, the manifest records {entry.get('size')}"
        elif sha256_file(local)[0] != entry.get("sha256"):
            out[path] = "sha256 differs from the manifest (file changed or corrupted)"
        else:
            out[path] = None
    return out


def verify_folder(folder: str | Path) -> VerifyReport:
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
    problems = [f"{p}: {why}" for p, why in _hash_problems(folder, manifest).items() if why]
    kind = manifest.get("kind", "model")
    problems += required_files_problems(folder, kind, manifest.get("splits") or [])
    if kind == "model":
        for change in remote_code_changes(folder) or []:
            problems.append(f"{change['path']}: Python file {change['change']} since the download")
    files = manifest.get("files") or {}
    return VerifyReport(
        folder, manifest, problems, len(files), sum(e["size"] for e in files.values())
    )


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
