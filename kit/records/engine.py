"""The ``engine`` section of results.json: the configuration the backend actually ran with,
read back from vLLM (offline) or from the server, so reports and comparisons show effective
values, not only what the kit asked for. Never holds a credential."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from kit.records.base import known_fields, mapping

#: Written for every engine, in this order; the backend's own keys follow.
COMMON = ("backend", "scheduling", "scheduling_means", "vllm_version", "weights")
OFFLINE = (
    "max_num_batched_tokens",
    "max_num_seqs",
    "chunked_prefill",
    "async_scheduling",
    "v1_multiprocessing",
    "engine_core",
    "dtype",
    "enforce_eager",
    "compilation_mode",
    "cudagraph_mode",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "distributed_executor_backend",
    "world_size",
    "block_size",
    "kv_cache_blocks",
    "kv_cache_tokens",
    "prefix_caching",
    "load_format",
    "devices",
)
SERVER = (
    "endpoint",
    "served_model",
    "server_version",
    "started_by_kit",
    "output_length_control",
    "metrics_endpoint",
    "prefix_caching",  # the server's own setting, from its /metrics (None: not exported)
)
OPTIONAL = (  # only when set
    "command",
    "weights_note",
    "version_note",
    "processor_note",
    "compat_note",
)


@dataclass
class EngineRecord:
    """Mutable on purpose: a server that refuses ``ignore_eos`` is found out mid-run, and
    the record the run keeps saving is this same object."""

    backend: str = "offline"  # "offline" (vllm.LLM in the kernel) or "server" (over HTTP)
    scheduling: str | None = None  # "vendor" or "vllm" (docs/methodology.md)
    scheduling_means: str | None = None
    vllm_version: str | None = None
    weights: str | None = None  # "checkpoint" or "dummy"
    # offline: read back from the started engine
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    chunked_prefill: bool | None = None
    async_scheduling: bool | None = None
    v1_multiprocessing: bool | None = None
    engine_core: str | None = None
    dtype: str | None = None
    enforce_eager: bool | None = None
    compilation_mode: str | None = None
    cudagraph_mode: str | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    data_parallel_size: int | None = None
    distributed_executor_backend: str | None = None
    world_size: int | None = None
    block_size: int | None = None
    kv_cache_blocks: int | None = None
    kv_cache_tokens: int | None = None
    prefix_caching: bool | None = None
    load_format: str | None = None
    devices: int | None = None  # accelerators the run occupies
    # server: where it was and what it said
    endpoint: str | None = None
    served_model: str | None = None
    server_version: str | None = None
    started_by_kit: bool | None = None
    output_length_control: str | None = None  # how output lengths were forced
    metrics_endpoint: bool | None = None
    command: str | None = None  # the server the kit started
    weights_note: str | None = None
    version_note: str | None = None
    processor_note: str | None = None  # a run setting the model's family has no use for
    compat_note: str | None = None  # what the kit's vLLM plugin changed (kit.engines.vllm_plugin)

    def to_dict(self) -> dict[str, Any]:
        own = SERVER if self.backend == "server" else OFFLINE
        out = {name: getattr(self, name) for name in (*COMMON, *own)}
        out.update({name: getattr(self, name) for name in OPTIONAL if getattr(self, name)})
        return out

    def items(self) -> list[tuple[str, Any]]:
        """The recorded settings, as reports list them."""
        return list(self.to_dict().items())

    @classmethod
    def of(cls, section: Any) -> EngineRecord | None:
        """None before the engine started (or in files older than the section)."""
        section = mapping(section)
        return cls(**known_fields(cls, section)) if section else None


def devices_used(record: EngineRecord) -> int:
    """Accelerators one run occupies: tensor x pipeline x data parallel sizes."""
    return (
        (record.tensor_parallel_size or 1)
        * (record.pipeline_parallel_size or 1)
        * (record.data_parallel_size or 1)
    )


assert set(COMMON + OFFLINE + SERVER + OPTIONAL) == {f.name for f in fields(EngineRecord)}
