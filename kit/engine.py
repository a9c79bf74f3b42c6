"""Building a ``vllm.LLM`` from notebook parameters, with checks before anything starts.

Every choice that depends on the device is made in :func:`device_defaults`; everything
else is explicit in :class:`EngineParams`. Per-request stats are always on, since the
reports read TTFT, prefill and decode times from them (FACTS.md section 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.params import ParameterError

# Set by the kit itself; passing them through engine_args would be ambiguous.
KIT_OWNED_ARGS = {
    "model": "model",
    "tokenizer": "model",
    "dtype": "dtype",
    "max_model_len": "max_model_len",
    "tensor_parallel_size": "tensor_parallel_size",
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
    block_size: int | None = None
    gpu_memory_utilization: float | None = None
    enforce_eager: bool | None = None
    trust_remote_code: bool = True
    allow_changed_remote_code: bool = False  # run a downloaded model whose .py files changed
    num_crops: int = 4
    limit_images: int | None = None  # images per prompt; None = what the notebook needs
    seed: int = 0
    engine_args: dict = field(default_factory=dict)
    label: str = ""

    def check(self) -> None:
        for name in ("max_model_len", "tensor_parallel_size", "num_crops", "limit_images"):
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
        """File and engine-argument checks that need no engine (may build the tiny model)."""
        remote_code_changes(self, resolve_model(self.model))
        check_engine_args(self.engine_args)


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
        # node 0: 0.92 fails at start-up, 0.3 works (FACTS.md section 1). vLLM also keeps
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
    """``smoke`` -> the tiny model folder (built if needed); a folder; or a hub id."""
    if model == "smoke":
        from kit.smoke import ensure_smoke_model

        return str(ensure_smoke_model())
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


def remote_code_changes(params: EngineParams, model_path: str) -> list[dict]:
    """Python files of a downloaded model that differ from its manifest (vLLM runs them).

    Refused unless ``allow_changed_remote_code``; folders without a manifest pass.
    """
    if not (params.trust_remote_code and Path(model_path).is_dir()):
        return []
    from kit.download import check_remote_code

    return check_remote_code(model_path, allow_changed=params.allow_changed_remote_code)


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


def engine_kwargs(params: EngineParams, model_path: str, defaults: DeviceDefaults) -> dict:
    """Keyword arguments for ``vllm.LLM`` (pure: no vLLM import)."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": params.dtype,
        "max_model_len": params.max_model_len,
        "tensor_parallel_size": params.tensor_parallel_size,
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
    }
    if params.block_size is not None:
        kwargs["block_size"] = params.block_size
    kwargs.update(params.engine_args)
    return kwargs


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
    """Point vLLM's logging at ``log_file``; only works before vLLM is first imported."""
    config_file = log_file.with_name(f".{log_file.name}.config.json")
    config_file.write_text(json.dumps(logging_config(log_file)))
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(config_file)
    os.environ.setdefault("TQDM_DISABLE", "1")  # loading bars of the engine processes
    return log_file


@dataclass
class Engine:
    """A started engine and what it was started with."""

    llm: Any
    params: EngineParams
    model_path: str
    kwargs: dict
    device: str
    remote_code_changes: list = field(default_factory=list)

    @property
    def tokenizer(self):
        return self.llm.get_tokenizer()

    def sampling_params(self, **kwargs):
        from vllm import SamplingParams

        return SamplingParams(**kwargs)


def prepare_engine_kwargs(params: EngineParams) -> tuple[str, DeviceDefaults, dict, list]:
    """Every check that can fail before an engine starts; returns the LLM kwargs."""
    model_path = resolve_model(params.model)
    changes = remote_code_changes(params, model_path)
    check_engine_args(params.engine_args)
    defaults = device_defaults()
    return model_path, defaults, engine_kwargs(params, model_path, defaults), changes


class EngineStartError(RuntimeError):
    """vLLM did not start; the message carries the end of the engine's own log."""


def log_tail(log_file: Path, lines: int = 12) -> str:
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@contextlib.contextmanager
def output_to(log_file: Path):
    """Send stdout and stderr, at the file-descriptor level too, to ``log_file``.

    Engine processes spawned inside the block inherit these descriptors and keep writing
    to the log for their whole life, so a report shows results rather than engine chatter.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log_file.open("a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                yield
        finally:
            fh.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def start_engine(params: EngineParams, log_file: Path | None = None) -> Engine:
    """Check the parameters, then start vLLM (the slow part: ~30 s for the tiny model on CPU).

    With ``log_file``, vLLM's logs and the engine processes' output go there, and a failed
    start is re-raised with the end of that log, where vLLM writes the real cause.
    """
    if log_file is not None and "vllm" not in sys.modules:
        route_engine_logs(log_file)
    failure = None
    # Inside the redirect: importing vLLM (also for the engine_args check) prints warnings.
    with output_to(log_file) if log_file is not None else contextlib.nullcontext():
        model_path, defaults, kwargs, changes = prepare_engine_kwargs(params)
        for key, value in defaults.environment.items():
            os.environ.setdefault(key, value)
        from vllm import LLM

        try:
            llm = LLM(**kwargs)
        except Exception as exc:
            if log_file is None:
                raise
            failure = exc
    if failure is not None:
        raise EngineStartError(
            f"vLLM could not start the engine ({type(failure).__name__}: {failure}). The "
            f"engine's own output is in {log_file}; it ends with:\n{log_tail(log_file)}"
        ) from failure
    return Engine(
        llm=llm,
        params=params,
        model_path=model_path,
        kwargs=kwargs,
        device=defaults.device,
        remote_code_changes=changes,
    )
