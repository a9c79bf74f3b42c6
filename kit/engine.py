"""Building a ``vllm.LLM`` from notebook parameters, with checks before anything starts.

Every choice that depends on the device is made in :func:`device_defaults`; everything
else is explicit in :class:`EngineParams`. Per-request stats are always on, since the
reports read TTFT, prefill and decode times from them (docs/methodology.md, section 3).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import gc
import json
import logging.config
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.backend import (
    BACKENDS,
    Batch,
    Completion,
    GenRequest,
    GenSampling,
    Load,
    completion_from_output,
)
from kit.manifest import check_remote_code
from kit.params import ParameterError

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
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class EngineParams:
    """Engine parameters every notebook accepts (the vendor CLI's names)."""

    model: str = "smoke"
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
        if self.num_crops > 16:
            raise ParameterError(
                "Parameter 'num_crops' must be between 1 and 16 (Phi-3.5-vision uses 4 for "
                "several images and 16 for a single image)."
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
            from kit.server import served_model

            served_model(self.base_url, self.api_key(), self.served_model_name)

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


# What each scheduling mode means; docs/methodology.md ("Scheduling modes") explains why.
SCHEDULING_MODES = {
    "vendor": (
        "as the vendor's vLLM 0.6.1 (V0): every request of a batch is in the scheduler before "
        "its first step (in-process engine core), chunked prefill off, max_num_batched_tokens "
        "= max_model_len, max_num_seqs 256"
    ),
    "vllm": "the installed vLLM's own defaults (V1 front end and engine core in two processes)",
}
V0_MAX_NUM_SEQS = 256  # vLLM 0.6's default


def scheduling_args(scheduling: str, max_model_len: int) -> dict[str, Any]:
    """Engine arguments a scheduling mode sets (pure)."""
    if scheduling != "vendor":
        return {}
    return {
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max_model_len,
        "max_num_seqs": V0_MAX_NUM_SEQS,
    }


def scheduling_environment(scheduling: str) -> dict[str, str]:
    """Environment a scheduling mode needs before vLLM builds its engine.

    V1's LLM runs the engine core in a second process that starts stepping on the first
    request it receives, while the front end is still preprocessing the next image: a
    "batch" is then prefilled one request after another. With multiprocessing off the
    engine core lives in this process (vLLM's InprocClient) and only steps inside
    ``LLM.generate``'s loop, after every request of the batch has been added.
    """
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0" if scheduling == "vendor" else "1"}


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


def resolve_model(model: str) -> str:
    """``smoke`` / ``phi35v-dummy`` -> the kit's own folders (built if needed); a folder; or
    a hub id."""
    if model == "smoke":
        from kit.smoke import ensure_smoke_model

        return str(ensure_smoke_model())
    if model == "phi35v-dummy":
        from kit.smoke import ensure_full_size_model

        return str(ensure_full_size_model())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ParameterError(
                f"Parameter 'model': folder {str(path)!r} has no config.json, so it is not a "
                "model checkpoint. Point it at the folder holding config.json and the weights "
                "(see notebooks/download.ipynb), or use model: smoke for the tiny test model."
            )
        return str(path.resolve())
    if HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        return model
    raise ParameterError(
        f"Parameter 'model': folder {model!r} does not exist. Download the checkpoint first "
        "(python -m kit run download -f params/download-phi35v-hf.yaml) and pass its folder, "
        "pass a hub id such as microsoft/Phi-3.5-vision-instruct when online, or use "
        "model: smoke for the embedded tiny model."
    )


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


DUMMY_MARKER = "kit_dummy_weights"  # config.json key of a folder built without weights
DUMMY_WEIGHTS_NOTE = "weights: dummy (random) — speed and memory only"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth")


def is_weightless_folder(model_path: str) -> bool:
    """A folder the kit built for ``load_format: dummy`` (config only, no weights)."""
    config = Path(model_path) / "config.json"
    if not config.is_file():
        return False
    return bool(read_config(config).get(DUMMY_MARKER))


def read_config(config: Path) -> dict[str, Any]:
    """config.json as a dict, or a ParameterError that names the file and the JSON error."""
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(
            f"Parameter 'model': {str(config)!r} is not valid JSON ({exc}). Restore the file "
            "from the download (python -m kit verify <folder> shows what changed)."
        ) from exc
    if not isinstance(data, dict):
        raise ParameterError(f"Parameter 'model': {str(config)!r} does not hold a JSON object.")
    return data


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
    if (
        kind == "checkpoint"
        and folder.is_dir()
        and not any(next(folder.glob(pattern), None) for pattern in WEIGHT_FILES)
    ):
        raise ParameterError(
            f"Parameter 'model': {model_path!r} has a config.json but no weight files "
            "(*.safetensors). Finish the download (python -m kit run download ...), or, for "
            "speed and memory only, use random weights: -y 'engine_args: {load_format: dummy}' "
            "or -p model phi35v-dummy."
        )
    if kind == "dummy" and isinstance(params, AnswerParams) and not params.allow_dummy_weights:
        raise ParameterError(
            "This notebook judges the model's answers, but the model has dummy (random) "
            "weights, so its answers are noise. Use a downloaded checkpoint (or model: smoke "
            "to test the pipeline), or pass -p allow_dummy_weights true to run it anyway."
        )


def engine_kwargs(
    params: EngineParams, model_path: str, defaults: DeviceDefaults, weights: str = "checkpoint"
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
        "mm_processor_kwargs": {"num_crops": params.num_crops},
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


def logging_config(log_file: Path) -> dict:
    """A logging dictConfig that sends vLLM's records to ``log_file`` instead of the cells."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(levelname)s %(asctime)s [%(process)d %(name)s] %(message)s"}
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
                "mode": "a",
            }
        },
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def route_engine_logs(log_file: Path) -> Path:
    """Point vLLM's logging at ``log_file``: at vLLM's first import and whenever it
    reconfigures its logging (``LLM()`` does), so none of it lands in a report, and no
    handler is left holding a stream that was redirected for a while. Applied here too:
    some of vLLM's import-time warnings come before it configures its own logging."""
    config = logging_config(log_file)
    config_file = log_file.with_name(f".{log_file.name}.config.json")
    config_file.write_text(json.dumps(config))
    logging.config.dictConfig(config)
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(config_file)
    os.environ.setdefault("TQDM_DISABLE", "1")  # loading bars of the engine processes
    return log_file


@dataclass
class EnginePlan:
    """Everything decided before vLLM starts: where the model is, and how to build it."""

    model_path: str
    defaults: DeviceDefaults
    kwargs: dict
    environment: dict[str, str]  # set before vLLM builds its engine
    weights: str  # "checkpoint" or "dummy"
    vllm_version: str
    remote_code_changes: list = field(default_factory=list)


@dataclass
class Engine:
    """A started engine and what it was started with."""

    llm: Any
    params: EngineParams
    model_path: str
    kwargs: dict
    device: str
    remote_code_changes: list = field(default_factory=list)
    weights: str = "checkpoint"
    config: dict = field(default_factory=dict)  # the effective configuration, see engine_config

    @property
    def tokenizer(self):
        return self.llm.get_tokenizer()

    def sampling_params(self, sampling: GenSampling):
        from vllm import SamplingParams

        extra = {"min_tokens": sampling.min_tokens} if sampling.min_tokens else {}
        return SamplingParams(
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            seed=sampling.seed,
            ignore_eos=sampling.ignore_eos,
            **extra,
        )

    def generate(
        self, requests: list[GenRequest], sampling: GenSampling, load: Load | None = None
    ) -> Batch:
        """One ``LLM.generate`` call: every request submitted together, vLLM schedules."""
        if load is not None:
            raise ValueError("an offline batch is submitted at once: load needs backend server")
        inputs = [r.vllm_input() for r in requests]
        start = time.perf_counter()
        outputs = self.llm.generate(inputs, self.sampling_params(sampling), use_tqdm=False)
        wall = time.perf_counter() - start
        return Batch([completion_from_output(o) for o in outputs], wall)

    def stream(
        self, request: GenRequest, sampling: GenSampling, on_text: Callable[[str], None]
    ) -> Completion:
        """Run one request, calling ``on_text`` with the answer so far after every step.

        Uses the engine under ``vllm.LLM`` when it has the V1 ``add_request`` / ``step``
        API, else one ``LLM.generate`` call (the whole answer at once, ``streamed`` False).
        """
        core = getattr(self.llm, "llm_engine", None)
        try:
            from vllm.sampling_params import RequestOutputKind
        except ImportError:  # pragma: no cover - other vLLM builds
            RequestOutputKind = None  # noqa: N806
        params = self.sampling_params(sampling)
        api = ("add_request", "step", "has_unfinished_requests", "abort_request")
        if RequestOutputKind is None or not all(hasattr(core, name) for name in api):
            (output,) = self.llm.generate([request.vllm_input()], params, use_tqdm=False)
            on_text(output.outputs[0].text)
            return dataclasses.replace(completion_from_output(output), streamed=False)
        params.output_kind = RequestOutputKind.CUMULATIVE
        request_id = f"kit-{uuid.uuid4().hex[:12]}"
        # outputs carry this id; add_request returns the engine's internal one (id + suffix)
        ids = {request_id, core.add_request(request_id, request.vllm_input(), params)}
        final = None
        try:
            while final is None and core.has_unfinished_requests():
                for output in core.step():
                    if output.request_id not in ids:
                        continue
                    on_text(output.outputs[0].text)
                    if output.finished:
                        final = output
        except BaseException:  # an interrupted kernel must not leave the request running
            core.abort_request([request_id])
            raise
        if final is None:
            raise RuntimeError(f"the engine finished without an output for request {request_id}")
        return completion_from_output(final, finished_at_wall=time.time())

    def shutdown(self) -> None:
        """Stop the engine's processes (V1 ``engine_core.shutdown``), then drop it, so the
        memory is free for the next engine in this process."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        stop = getattr(core, "shutdown", None)
        if callable(stop):
            stop()
        self.llm = None
        gc.collect()


def plan_engine(params: EngineParams) -> EnginePlan:
    """Every check that can fail before an engine starts; returns how to start it."""
    version = check_vllm_version()
    model_path = resolve_model(params.model)
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
    return EnginePlan(
        model_path=model_path,
        defaults=defaults,
        kwargs=engine_kwargs(params, model_path, defaults, weights),
        environment={**defaults.environment, **scheduling_environment(params.scheduling)},
        weights=weights,
        vllm_version=version,
        remote_code_changes=changes,
    )


def _attr(obj: Any, *path: str) -> Any:
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def _plain(value: Any) -> Any:
    """Enum members (IntEnum included) by name, other objects as JSON-friendly text."""
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def engine_config(llm: Any, plan: EnginePlan, scheduling: str) -> dict[str, Any]:
    """The configuration vLLM actually runs with, read back from the started engine.

    Reports and comparisons need the effective values (vLLM fills many from the device),
    not only what the kit asked for.
    """
    vllm_config = _attr(llm, "llm_engine", "vllm_config")
    sched = _attr(vllm_config, "scheduler_config")
    cache = _attr(vllm_config, "cache_config")
    parallel = _attr(vllm_config, "parallel_config")
    compilation = _attr(vllm_config, "compilation_config")
    blocks, block_size = _attr(cache, "num_gpu_blocks"), _attr(cache, "block_size")
    in_process = plan.environment.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"
    config = {
        "backend": "offline",
        "scheduling": scheduling,
        "scheduling_means": SCHEDULING_MODES[scheduling],
        "vllm_version": plan.vllm_version,
        "weights": plan.weights,
        "max_num_batched_tokens": _attr(sched, "max_num_batched_tokens"),
        "max_num_seqs": _attr(sched, "max_num_seqs"),
        "chunked_prefill": _attr(sched, "enable_chunked_prefill"),
        "async_scheduling": _attr(sched, "async_scheduling"),
        "v1_multiprocessing": not in_process,
        "engine_core": "in-process" if in_process else "separate process",
        "dtype": _plain(_attr(vllm_config, "model_config", "dtype")),
        "enforce_eager": _attr(vllm_config, "model_config", "enforce_eager"),
        "compilation_mode": _plain(_attr(compilation, "mode")),
        "cudagraph_mode": _plain(_attr(compilation, "cudagraph_mode")),
        "tensor_parallel_size": _attr(parallel, "tensor_parallel_size"),
        "pipeline_parallel_size": _attr(parallel, "pipeline_parallel_size"),
        "data_parallel_size": _attr(parallel, "data_parallel_size"),
        "distributed_executor_backend": _plain(_attr(parallel, "distributed_executor_backend")),
        "world_size": _attr(parallel, "world_size"),
        "block_size": block_size,
        "kv_cache_blocks": blocks,
        "kv_cache_tokens": int(blocks) * int(block_size) if blocks and block_size else None,
        "prefix_caching": _attr(cache, "enable_prefix_caching"),
        "load_format": _plain(_attr(vllm_config, "load_config", "load_format")),
    }
    config["devices"] = devices_used(config)
    if plan.weights == "dummy":
        config["weights_note"] = DUMMY_WEIGHTS_NOTE
    note = version_note(plan.vllm_version)
    if note:
        config["version_note"] = note
    return config


def devices_used(config: dict[str, Any]) -> int:
    """Accelerators one run occupies: tensor x pipeline x data parallel sizes."""
    sizes = [config.get(k) or 1 for k in ("tensor_parallel_size", "pipeline_parallel_size")]
    return sizes[0] * sizes[1] * (config.get("data_parallel_size") or 1)


class EngineStartError(RuntimeError):
    """vLLM did not start; the message carries the end of the engine's own log."""


def log_tail(log_file: Path, lines: int = 12) -> str:
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


ERROR_LINE = re.compile(r"(?:^|\s)((?:[A-Za-z_][\w.]*)?(?:Error|Exception|OutOfMemory\w*)\b: .+)$")
WRAPPER_ERRORS = ("See root cause above", "Engine core initialization failed")


def root_cause(log_file: Path) -> str | None:
    """The last exception line of the engine's log that is not vLLM's own wrapper ("See root
    cause above"): where a failure in the engine process is really explained."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        match = ERROR_LINE.search(line.strip())
        if match and not any(w in line for w in WRAPPER_ERRORS):
            return match.group(1)
    return None


@contextlib.contextmanager
def output_to(log_file: Path):
    """Send stdout and stderr, at the file-descriptor level too, to ``log_file``.

    Engine processes spawned inside the block inherit these descriptors and keep writing
    to the log for their whole life, so a report shows results rather than engine chatter.
    """
    with log_file.open("a") as fh, redirected_output(fh, fh):
        yield


@contextlib.contextmanager
def redirected_output(out: Any, err: Any):
    """stdout into ``out`` and stderr into ``err`` (open files), the Python objects and the
    file descriptors alike, so child processes and C code write there too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        out.flush()
        err.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def start_engine(params: EngineParams, log_file: Path | None = None) -> Engine:
    """Check the parameters, then start vLLM (the slow part: ~30 s for the tiny model on CPU).

    With ``log_file``, vLLM's logs and the engine processes' output go there, and a failed
    start is re-raised with the end of that log, where vLLM writes the real cause.
    """
    if log_file is not None:  # before vLLM builds its config: it reconfigures its logging
        route_engine_logs(log_file)
    failure = None
    # Inside the redirect: importing vLLM (also for the engine_args check) prints warnings.
    with output_to(log_file) if log_file is not None else contextlib.nullcontext():
        plan = plan_engine(params)
        for key, value in plan.defaults.environment.items():
            os.environ.setdefault(key, value)
        os.environ.update(scheduling_environment(params.scheduling))  # the mode decides
        from vllm import LLM

        try:
            llm = LLM(**plan.kwargs)
        except Exception as exc:
            if log_file is None:
                raise
            failure = exc
            # An engine core in this process (scheduling: vendor) logs nothing of its failure;
            # its traceback goes to the log, so that the log holds the root cause too.
            traceback.print_exc()
    if failure is not None:
        cause = root_cause(log_file)
        cause_text = f" Root cause in the engine's log: {cause}." if cause else ""
        raise EngineStartError(
            f"vLLM could not start the engine ({type(failure).__name__}: {failure}).{cause_text}"
            f" The engine's own output is in {log_file}; it ends with:\n{log_tail(log_file)}"
        ) from failure
    return Engine(
        llm=llm,
        params=params,
        model_path=plan.model_path,
        kwargs=plan.kwargs,
        device=plan.defaults.device,
        remote_code_changes=plan.remote_code_changes,
        weights=plan.weights,
        config=engine_config(llm, plan, params.scheduling),
    )
