"""The ``download`` section of results.json: for each snapshot fetched (the model, the MMMU
dataset), what was asked and what it resolved to, what was fetched or kept, whether hashes
were checked, and the Python files vLLM will run from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.core.progress import format_duration, human_bytes
from kit.records.base import known_fields, mapping


@dataclass(frozen=True)
class DownloadResult:
    kind: str  # "model" or "dataset"
    source: str  # "huggingface" or "modelscope"
    repo_id: str
    revision: str  # as asked
    commit: str | None  # as resolved
    folder: str
    files: int
    bytes: int
    fetched_files: int
    fetched_bytes: int
    kept_files: int
    verified: bool  # sizes and sha256 checked against what the source publishes
    seconds: float
    manifest: str
    remote_code: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> DownloadResult:
        values: dict[str, Any] = {
            "kind": "?", "source": "?", "repo_id": "?", "revision": "?", "commit": None,
            "folder": "?", "files": 0, "bytes": 0, "fetched_files": 0, "fetched_bytes": 0,
            "kept_files": 0, "verified": False, "seconds": 0.0, "manifest": "?",
            "remote_code": [],
        }  # fmt: skip
        return cls(**{**values, **known_fields(cls, mapping(section))})

    def row(self) -> dict[str, Any]:
        return {
            "what": self.kind,
            "repository": self.repo_id,
            "revision asked": self.revision,
            "commit": self.commit,
            "files": self.files,
            "size": human_bytes(self.bytes),
            "fetched": f"{self.fetched_files} files, {human_bytes(self.fetched_bytes)}",
            "kept": self.kept_files,
            "hashes checked": "yes" if self.verified else "no (verify: false)",
            "time": format_duration(self.seconds),
            "manifest": self.manifest,
        }


@dataclass(frozen=True)
class DownloadSection:
    """The section is a list, one entry per snapshot."""

    results: Sequence[DownloadResult]

    def to_dict(self) -> list[dict[str, Any]]:
        return [result.to_dict() for result in self.results]

    @classmethod
    def of(cls, section: Any) -> DownloadSection | None:
        if not isinstance(section, list):
            return None
        return cls(tuple(DownloadResult.of(entry) for entry in section))
