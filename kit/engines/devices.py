"""The device an engine runs on, and the one place device-dependent engine defaults are chosen.

``cuda`` when torch sees a GPU, else ``cpu``; ``KIT_DEVICE`` overrides the guess for vendor
builds. Everything else an engine takes is explicit in kit.engines.params.EngineParams, so a
run's configuration never depends on the machine except through :func:`device_defaults`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceDefaults:
    device: str  # "cuda" or "cpu"
    gpu_memory_utilization: float
    enforce_eager: bool
    environment: dict[str, str]


def detect_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``. Vendor builds may override via KIT_DEVICE."""
    forced = os.environ.get("KIT_DEVICE")
    if forced:
        return forced
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_defaults(device: str | None = None) -> DeviceDefaults:
    """The one place where device-dependent engine defaults are chosen."""
    device = device or detect_device()
    if device == "cpu":
        # On CPU the utilization is the RAM share for the KV cache, measured against NUMA
        # node 0: 0.92 fails at start-up, 0.3 works (docs/methodology.md, section 9). vLLM keeps
        # one core for itself unless told otherwise; both cores are ~1.6x faster.
        return DeviceDefaults(
            device="cpu",
            gpu_memory_utilization=0.3,
            enforce_eager=True,
            environment={"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"},
        )
    return DeviceDefaults(
        device=device, gpu_memory_utilization=0.9, enforce_eager=False, environment={}
    )
