"""The engine parameters every notebook accepts, and the plan they make before an engine
starts: where the model is, its family, the weights, and every ``vllm.LLM`` argument.

Every choice that depends on the device is made in kit.engines.devices; everything else is
explicit in :class:`EngineParams`. Per-request stats are always on, since the reports read
TTFT, prefill and decode times from them (docs/methodology.md, section 3). Everything here
can fail before an engine starts, and does, with a message naming the parameter.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError
from kit.engines.devices import DeviceDefaults, device_defaults
from kit.engines.memory import cpu_memory_problem, node_memory
from kit.engines.openai_client import served_model
from kit.engines.scheduling import SCHEDULING_MODES, scheduling_args, scheduling_environment
from kit.engines.types import BACKENDS
from kit.engines.versions import check_vllm_version
from kit.models.checkpoint import has_weight_files, is_weightless_folder
from kit.models.family import ModelFamily
from kit.models.registry import (
    MAX_CROPS,
    TINY_MODEL,
    family_for_model,
    read_model_figures,
    resolve_model,
)
from kit.records.manifest import check_remote_code

# Set by the kit itself; passing them through engine_args would be ambiguous.
KIT_OWNED_ARGS = {
    "model": "model",
    "tokenizer": "model",
    "dtype": "dtype",
    "max_model_len": "max_model_len",
    "tensor_parallel_size": "tensor_parallel_size",
    "pipeline_parallel_size": "pipeline_parallel_size",
    "data_parallel_size": "data_parallel_size",
    "distributed_executor_backend": "distributed_executor_backend",
    "block_size": "block_size",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "enforce_eager": "enforce_eager",
    "trust_remote_code": "trust_remote_code",
    "seed": "seed",
    "limit_mm_per_prompt": "limit_images",
    "mm_processor_kwargs": "num_crops",
    "disable_log_stats": "(always False: per-request stats are required)",
}


@dataclass
class EngineParams:
    """Engine parameters every notebook accepts (the vendor CLI's names)."""

    model: str = TINY_MODEL
    dtype: str = "auto"
    max_model_len: int = 32768
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    distributed_executor_backend: str | None = None  # None: vLLM's choice
    scheduling: str = "vendor"  # "vendor" or "vllm", see SCHEDULING_MODES
    block_size: int | None = None
    gpu_memory_utilization: float | None = None
    enforce_eager: bool | None = None
    trust_remote_code: bool = True
    allow_changed_remote_code: bool = False  # run a downloaded model whose .py files changed
    num_crops: int = 4
    limit_images: int | None = None  # images per prompt; None = what the notebook needs
    seed: int = 0
    engine_args: dict = field(default_factory=dict)
    backend: str = "offline"  # "offline": vllm.LLM in this kernel; "server": an OpenAI server
    base_url: str = ""  # backend server: a running server's address; "": the kit starts one
    served_model_name: str = ""  # "": the model the server lists at /v1/models
    api_key_env: str = ""  # the environment variable holding the server's API key
    request_timeout_s: float = 600.0  # backend server: one request, sent to last token
    server_start_timeout_s: float = 900.0  # backend server: a started server's /health
    label: str = ""

    def check(self) -> None:
        check_backend(self)
        if self.scheduling not in SCHEDULING_MODES:
            raise ParameterError(
                f"Parameter 'scheduling' must be one of {', '.join(SCHEDULING_MODES)}, got "
                f"{self.scheduling!r}. 'vendor' schedules a batch together as the vendor's "
                "vLLM 0.6 did (compare against vendor rows with it); 'vllm' keeps current vLLM "
                "defaults."
            )
        for name in (
            "max_model_len",
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "data_parallel_size",
            "num_crops",
            "limit_images",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParameterError(f"Parameter {name!r} must be at least 1.")
        if self.num_crops > MAX_CROPS:  # the model's own family may allow fewer (plan_engine)
            raise ParameterError(
                f"Parameter 'num_crops' must be between 1 and {MAX_CROPS}, got "
                f"{self.num_crops} (Phi-3.5-vision uses 4 for several images and 16 for one)."
            )
        util = self.gpu_memory_utilization
        if util is not None and not 0 < util <= 1:
            raise ParameterError(
                f"Parameter 'gpu_memory_utilization' must be in (0, 1], got {util}. "
                "On a CPU it is the share of RAM given to the KV cache (0.3 works here)."
            )

    def preflight(self) -> None:
        """File and engine-argument checks that need no engine (may build the tiny model);
        for a running server, that it answers and serves the model asked for."""
        plan_engine(self)
        if self.backend == "server" and self.base_url:
            served_model(self.base_url, self.api_key(), self.served_model_name, self.api_key_env)

    @property
    def refuses_dummy_weights(self) -> bool:
        """Whether random weights make this notebook's result meaningless."""
        return False

    def api_key(self) -> str | None:
        """The server's API key, read from the environment (never stored in a parameter)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def check_backend(params: EngineParams) -> None:
    if params.backend not in BACKENDS:
        raise ParameterError(
            f"Parameter 'backend' must be one of {', '.join(BACKENDS)}, got {params.backend!r}. "
            "'offline' runs vLLM inside the notebook; 'server' talks to an OpenAI-compatible "
            "server (base_url, or one the kit starts)."
        )
    params.base_url = params.base_url.strip().rstrip("/")
    if params.base_url.endswith("/v1"):
        params.base_url = params.base_url[: -len("/v1")]
    if params.backend == "offline":
        given = [n for n in ("base_url", "served_model_name", "api_key_env") if getattr(params, n)]
        if given:
            raise ParameterError(
                f"Parameter {given[0]!r} only applies to backend: server. Fix: -p backend server, "
                f"or drop {given[0]}."
            )
    if params.base_url and not re.match(r"^https?://[^\s/]+", params.base_url):
        raise ParameterError(
            f"Parameter 'base_url' must be an http(s) address such as http://127.0.0.1:8000, "
            f"got {params.base_url!r}."
        )
    if params.base_url and "@" in params.base_url.split("//", 1)[1].split("/", 1)[0]:
        raise ParameterError(
            "Parameter 'base_url' holds credentials (user:password@host): parameters are "
            "recorded in every report. Give the key through api_key_env instead."
        )
    if params.api_key_env and not os.environ.get(params.api_key_env):
        raise ParameterError(
            f"Parameter 'api_key_env' names {params.api_key_env!r}, which is not set in the "
            f"environment. Fix: export {params.api_key_env}=<key> before the run, or leave "
            "api_key_env empty for a server without a key."
        )
    for name in ("request_timeout_s", "server_start_timeout_s"):
        if not getattr(params, name) > 0:
            raise ParameterError(f"Parameter {name!r} must be a positive number of seconds.")


def check_scheduling_conflicts(params: EngineParams) -> None:
    for key, value in scheduling_args(params.scheduling, params.max_model_len).items():
        if key in params.engine_args:
            raise ParameterError(
                f"engine_args key {key!r} conflicts with scheduling: {params.scheduling}, which "
                f"sets it to {value!r}. Drop the key, or pass -p scheduling vllm to choose the "
                "scheduler settings yourself."
            )


@dataclass
class AnswerParams(EngineParams):
    """Engine parameters of notebooks whose answers are the result (demo, MMMU)."""

    allow_dummy_weights: bool = False  # True: accept random weights (answers are noise)

    @property
    def refuses_dummy_weights(self) -> bool:
        return not self.allow_dummy_weights


def valid_engine_arg_names() -> list[str]:
    """The installed vLLM's engine argument names (EngineArgs dataclass fields)."""
    from vllm.engine.arg_utils import EngineArgs

    return sorted(f.name for f in dataclasses.fields(EngineArgs))


def check_engine_args(engine_args: dict[str, Any], valid: list[str] | None = None) -> None:
    """Reject keys the installed vLLM does not know, and keys the kit sets itself."""
    for key in engine_args:
        if key in KIT_OWNED_ARGS:
            raise ParameterError(
                f"engine_args key {key!r} is set by the kit; use the notebook parameter "
                f"{KIT_OWNED_ARGS[key]!r} instead."
            )
    valid = valid if valid is not None else valid_engine_arg_names()
    for key in engine_args:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
            hint = f" Closest valid names: {', '.join(close)}." if close else ""
            raise ParameterError(
                f"engine_args key {key!r} is not an engine argument of the installed vLLM.{hint} "
                "Fix the key in engine_args; the full list is vllm.engine.arg_utils.EngineArgs."
            )


DUMMY_WEIGHTS_NOTE = "weights: dummy (random) — speed and memory only"


def weights_kind(params: EngineParams, model_path: str) -> str:
    """``dummy`` when vLLM will make random weights, else ``checkpoint``."""
    if params.engine_args.get("load_format") == "dummy" or is_weightless_folder(model_path):
        return "dummy"
    return "checkpoint"


def check_weights(params: EngineParams, model_path: str, kind: str) -> None:
    """Refuse what cannot load: a weightless folder with another load_format, or a
    checkpoint folder without weight files; answer notebooks refuse random weights."""
    folder = Path(model_path)
    load_format = params.engine_args.get("load_format")
    if is_weightless_folder(model_path) and load_format not in (None, "dummy"):
        raise ParameterError(
            f"engine_args load_format {load_format!r} cannot load {model_path!r}: the folder "
            "holds no weights (it is made for load_format: dummy). Drop the key."
        )
    if kind == "checkpoint" and folder.is_dir() and not has_weight_files(folder):
        raise ParameterError(
            f"Parameter 'model': {model_path!r} has a config.json but no weight files "
            "(*.safetensors). Finish the download (python -m kit run download ...), or, for "
            "speed and memory only, use random weights: -y 'engine_args: {load_format: dummy}' "
            "or -p model phi35v-dummy."
        )
    if kind == "dummy" and params.refuses_dummy_weights:
        raise ParameterError(
            "This notebook judges the model's answers, but the model has dummy (random) "
            "weights, so its answers are noise. Use a downloaded checkpoint (or model: smoke "
            "to test the pipeline), or pass -p allow_dummy_weights true to run it anyway."
        )


def engine_kwargs(
    params: EngineParams,
    model_path: str,
    defaults: DeviceDefaults,
    family: ModelFamily,
    weights: str = "checkpoint",
) -> dict:
    """Keyword arguments for ``vllm.LLM`` (pure: no vLLM import)."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": params.dtype,
        "max_model_len": params.max_model_len,
        "tensor_parallel_size": params.tensor_parallel_size,
        "pipeline_parallel_size": params.pipeline_parallel_size,
        "data_parallel_size": params.data_parallel_size,
        "gpu_memory_utilization": (
            params.gpu_memory_utilization
            if params.gpu_memory_utilization is not None
            else defaults.gpu_memory_utilization
        ),
        "enforce_eager": (
            params.enforce_eager if params.enforce_eager is not None else defaults.enforce_eager
        ),
        "trust_remote_code": params.trust_remote_code,
        "seed": params.seed,
        "limit_mm_per_prompt": {"image": params.limit_images or 1},
        "mm_processor_kwargs": family.processor_kwargs(params.num_crops),
        "disable_log_stats": False,
        **scheduling_args(params.scheduling, params.max_model_len),
    }
    if params.distributed_executor_backend is not None:
        kwargs["distributed_executor_backend"] = params.distributed_executor_backend
    if params.block_size is not None:
        kwargs["block_size"] = params.block_size
    if weights == "dummy":
        kwargs["load_format"] = "dummy"
    kwargs.update(params.engine_args)
    return kwargs


def check_cpu_memory(kwargs: dict[str, Any]) -> None:
    """Refuse, before vLLM starts, a model whose weights do not fit the RAM share vLLM will
    take (kit.engines.memory). A KV cache size given outright is vLLM's to check."""
    if "kv_cache_memory_bytes" in kwargs or os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return
    figures = read_model_figures(kwargs["model"], kwargs.get("dtype"))
    if figures is None:  # a hub id, or a config without the dimensions
        return
    problem = cpu_memory_problem(
        figures.weight_bytes,
        figures.kv_bytes_per_token * int(kwargs["max_model_len"]),
        float(kwargs["gpu_memory_utilization"]),
        node_memory(),
    )
    if problem:
        raise ParameterError(problem)


def check_family_loads(family: ModelFamily, model: str) -> None:
    """Refuse, before an engine starts, a model whose family's vLLM module cannot be
    imported here (vLLM would fail while building the engine, with a traceback)."""
    module = f"vllm.model_executor.models.{family.vllm_module}"
    try:
        importlib.import_module(module)
        return
    except Exception as exc:  # ImportError, or torchvision's RuntimeError at import
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if "torchvision" in error:
        reason = (
            f"vLLM's module for {family.name} ({module}) imports torchvision, which cannot load "
            f"beside the CPU build of torch installed here ({error})"
        )
    else:
        reason = f"importing vLLM's module for {family.name} ({module}) fails ({error})"
    raise ParameterError(
        f"Parameter 'model': {model!r} is a {family.name} model, and this machine's vLLM cannot "
        f"run it: {reason}. Run it on a GPU machine (docs/gpu.md), or pick a model that runs "
        "here (python -m kit models lists them)."
    )


@dataclass
class EnginePlan:
    """Everything decided before vLLM starts: where the model is, and how to build it."""

    model_path: str
    family: ModelFamily
    defaults: DeviceDefaults
    kwargs: dict
    environment: dict[str, str]  # set before vLLM builds its engine
    weights: str  # "checkpoint" or "dummy"
    vllm_version: str
    remote_code_changes: list = field(default_factory=list)


def plan_engine(params: EngineParams) -> EnginePlan:
    """Every check that can fail before an engine starts; returns how to start it."""
    version = check_vllm_version()
    model_path = resolve_model(params.model)
    family = family_for_model(model_path)
    if not (params.backend == "server" and params.base_url):  # a server elsewhere may load it
        check_family_loads(family, params.model)
    family.check_crops(params.num_crops)
    changes = (  # Python files that vLLM runs and that differ from the download manifest
        check_remote_code(model_path, allow_changed=params.allow_changed_remote_code)
        if params.trust_remote_code
        else []
    )
    weights = weights_kind(params, model_path)
    check_weights(params, model_path, weights)
    check_engine_args(params.engine_args)
    check_scheduling_conflicts(params)
    defaults = device_defaults()
    kwargs = engine_kwargs(params, model_path, defaults, family, weights)
    if defaults.device == "cpu" and not (params.backend == "server" and params.base_url):
        check_cpu_memory(kwargs)
    return EnginePlan(
        model_path=model_path,
        family=family,
        defaults=defaults,
        kwargs=kwargs,
        environment={**defaults.environment, **scheduling_environment(params.scheduling)},
        weights=weights,
        vllm_version=version,
        remote_code_changes=changes,
    )
