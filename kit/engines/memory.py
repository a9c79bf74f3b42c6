"""Whether a model fits the memory vLLM will give it, decided before an engine starts.

On CPU, vLLM's worker takes ``gpu_memory_utilization`` x the RAM of NUMA node 0 (clamped to
the container's limit); the weights and vLLM's own runtime come out of that share, and the
KV cache is what is left. A share smaller than the weights fails minutes later inside vLLM
with "Reduce CPU memory used by other processes", which names neither the weights nor the
setting that would fit. The kit knows the weight bytes from config.json, so it says both
first. (On a GPU the check needs the device's memory, which asking for would initialise CUDA
in the process that forks vLLM: it is left to vLLM there.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import psutil

GIB = 1 << 30
# vLLM 0.32's CPU worker reported 0.84 GiB "consumed by non-kv usages" for the tiny model:
# its runtime, before any weight. A share below half of that certainly fails (the refusal);
# the setting suggested leaves room for all of it, rounded up.
RUNTIME_AT_LEAST = GIB // 2
RUNTIME_BYTES = 1 * GIB
NODE0_MEMINFO = Path("/sys/devices/system/node/node0/meminfo")
CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")


@dataclass(frozen=True)
class NodeMemory:
    total: int  # bytes vLLM takes its share of
    available: int  # bytes free to take now


def node_memory() -> NodeMemory:
    """Node 0's memory as vLLM's CPU worker counts it (free + file cache + reclaimable)."""
    if NODE0_MEMINFO.is_file():
        info = {}
        for line in NODE0_MEMINFO.read_text().splitlines():  # "Node 0 MemTotal: 97421888 kB"
            parts = line.split()
            if len(parts) >= 4 and parts[3].isdigit():
                info[parts[2].rstrip(":")] = int(parts[3]) * 1024
        total = info["MemTotal"]
        available = sum(
            info.get(k, 0) for k in ("MemFree", "Active(file)", "Inactive(file)", "SReclaimable")
        )
    else:
        memory = psutil.virtual_memory()
        total, available = memory.total, memory.available
    try:
        limit = CGROUP_LIMIT.read_text().strip()
    except OSError:
        limit = "max"
    if limit.isdigit() and int(limit) < total:
        total, available = int(limit), min(available, int(limit))
    return NodeMemory(total, available)


def cpu_memory_problem(
    weight_bytes: int,
    kv_bytes_per_sequence: int,
    utilization: float,
    memory: NodeMemory,
) -> str | None:
    """Why ``utilization`` of ``memory`` cannot hold the weights, vLLM's runtime and one
    full-length sequence of KV cache (with the setting that would), or None when it can.
    Refused only where vLLM would certainly fail: with the least runtime it ever needs."""
    share = math.ceil(memory.total * utilization)
    if weight_bytes + RUNTIME_AT_LEAST + kv_bytes_per_sequence <= share:
        return None
    needed = weight_bytes + RUNTIME_BYTES + kv_bytes_per_sequence
    parts = (
        f"weights {gib(weight_bytes)} GiB (config.json), vLLM's runtime about "
        f"{gib(RUNTIME_BYTES)} GiB and one full-length sequence of KV cache "
        f"{gib(kv_bytes_per_sequence)} GiB"
    )
    head = (
        f"Parameter 'gpu_memory_utilization': on CPU vLLM takes {utilization} of node 0's "
        f"{gib(memory.total)} GiB = {gib(share)} GiB for the model, which needs {gib(needed)} "
        f"GiB ({parts}), so vLLM would fail at start-up."
    )
    fit = math.ceil(needed / memory.total * 100) / 100
    if fit <= 0.95 and needed <= memory.available:
        return f"{head} Fix: -p gpu_memory_utilization {fit}, or a smaller max_model_len."
    return (
        f"{head} This machine has {gib(memory.available)} GiB available, too little for it: "
        "run it on a machine with more memory, or use the tiny model (model: smoke)."
    )


def gib(value: int) -> str:
    return f"{value / GIB:.2f}"
