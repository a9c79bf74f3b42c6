"""The ``environment`` section of results.json: provenance. Versions (kit, git, Python,
packages), the accelerator, and exactly which model files ran (their download manifest or
the kit's build of them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kit.records.base import known_fields, mapping


@dataclass(frozen=True)
class ModelRecord:
    """Which model files ran (kit.runs.environment.model_provenance)."""

    path: str | None = None
    source: str | None = None  # "hub id (not a local folder)" when it was not a folder
    config_sha256: str | None = None
    architectures: list[str] | None = None
    download_manifest: dict[str, Any] | None = None  # manifest.json, files left out
    smoke: dict[str, Any] | None = None  # a folder the kit built: builder version and seed
    remote_code_changes: list[dict[str, Any]] | None = None  # run anyway, as asked

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in known_fields(type(self), vars(self)).items() if v is not None}

    @classmethod
    def of(cls, section: Any) -> ModelRecord:
        return cls(**known_fields(cls, mapping(section)))

    @property
    def built_by_kit(self) -> bool:
        """A folder the kit built itself (its revision is the build, not a download)."""
        return self.revision.startswith(("smoke ", "smoke-"))

    @property
    def revision(self) -> str:
        """The download manifest's resolved commit, else the kit's build, else the config
        hash, else "unknown"."""
        manifest = self.download_manifest or {}
        for key in ("resolved_revision", "commit", "resolved_commit", "sha"):
            if manifest.get(key):
                return f"{manifest.get('repo_id', '')}@{str(manifest[key])[:12]}".lstrip("@")
        if self.smoke:  # the Phi3V tiny model's builds name no family (older runs too)
            family = self.smoke.get("family")
            name = f"smoke-{family}" if family else "smoke"
            return f"{name} v{self.smoke.get('builder_version')} seed {self.smoke.get('seed')}"
        if self.config_sha256:
            return f"config {self.config_sha256[:12]}"
        return "unknown"


@dataclass(frozen=True)
class EnvironmentRecord:
    """Provenance, captured when the engine starts (or when the run ends without one)."""

    kit_version: str | None = None
    git: Mapping[str, Any] = field(default_factory=dict)  # commit and whether it was dirty
    python: str | None = None
    platform: str | None = None
    packages: Mapping[str, str | None] = field(default_factory=dict)
    accelerator: Mapping[str, Any] = field(default_factory=dict)
    model: ModelRecord | None = None  # None: the run used no model

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kit_version": self.kit_version,
            "git": dict(self.git),
            "python": self.python,
            "platform": self.platform,
            "packages": dict(self.packages),
            "accelerator": dict(self.accelerator),
        }
        if self.model is not None:
            out["model"] = self.model.to_dict()
        return out

    @classmethod
    def of(cls, section: Any) -> EnvironmentRecord:
        section = mapping(section)
        values = known_fields(cls, section)
        model = section.get("model")
        values["model"] = None if model is None else ModelRecord.of(model)
        return cls(**values)

    def with_remote_code_changes(self, changes: list[dict[str, Any]]) -> EnvironmentRecord:
        """The record of a run that executes changed remote code, as the user allowed."""
        model = self.model or ModelRecord()
        return replace(self, model=replace(model, remote_code_changes=list(changes)))

    @property
    def model_files(self) -> ModelRecord:
        """The model's provenance (empty when the run used no model)."""
        return self.model or ModelRecord()

    @property
    def accelerator_name(self) -> str | None:
        return self.accelerator.get("name") or self.accelerator.get("device") or None

    @property
    def kit_major(self) -> str:
        """The kit's major version: runs of different majors may measure differently."""
        return str(self.kit_version if self.kit_version is not None else "?").split(".")[0]
