"""The two sources of snapshots, the Hugging Face Hub and ModelScope, through their own clients.

For one :class:`Target` (a repository at a revision, into a folder) a client says what the
source publishes at the commit the revision resolves to (:class:`Snapshot`: every file's
size, and its sha256 or git blob id), and fetches one file of it. Whatever goes wrong in
the client libraries comes back as a :class:`DownloadError` whose message says what to do;
an unreachable source also says how to bring a copy from another machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kit.core.params import ParameterError
from kit.download.progress import FileProgress
from kit.records.manifest import local_files

SOURCE_LABEL = {"huggingface": "the Hugging Face Hub", "modelscope": "ModelScope"}

ENDPOINT_ENV = {"huggingface": "HF_ENDPOINT", "modelscope": "MODELSCOPE_ENDPOINT"}

API_TIMEOUT_S = float(os.environ.get("KIT_DOWNLOAD_TIMEOUT", "15"))


#: A commit id, full or abbreviated (a revision that matches it is taken as a pin).
HEX = re.compile(r"[0-9a-fA-F]{7,40}")


class DownloadError(ParameterError):
    """A download problem the user can act on; the message says what and how."""

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not a traceback
        return [
            f"{type(self).__name__}: {line}" if i == 0 else line
            for i, line in enumerate(str(self).splitlines())
        ]


class SourceUnreachable(DownloadError):
    """The hub or ModelScope could not be reached (offline, DNS, proxy, outage)."""


class VerificationFailed(DownloadError):
    """Files are missing, or their size or hash differ from what the source publishes."""


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

    def fetch(self, target: Target, snapshot: Snapshot, file: RemoteFile, progress: FileProgress):
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
        self.endpoint = str(config.endpoint)  # HubConfig fills in its default endpoint
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

    def fetch(self, target: Target, snapshot: Snapshot, file: RemoteFile, progress: FileProgress):
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
