"""The perf notebook's parameters: the sweep grid, image shapes, and whether each point fits.

Everything here is checked before an engine starts (``PerfParams.check`` and ``preflight``):
a grid point whose prompt cannot hold its image tokens, or whose prompt plus output exceeds
``max_model_len``, is refused with the parameter to change.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kit.engine import EngineParams, resolve_model
from kit.params import ParameterError
from kit.prompts import PHI3V
from kit.results import point_label
from kit.tokens import PromptTokenCounter
from kit.workload import WorkloadBuilder


@dataclass
class PerfParams(EngineParams):
    input_len: list[int] = field(default_factory=lambda: [8192])
    max_output_len: list[int] = field(default_factory=lambda: [1024])
    batch_size: list[int] = field(default_factory=lambda: [1])
    input_vision_shape: str = "1024,1024"
    iterations: int = 3
    warmup: int = 1
    ttft_probe: bool = True
    enable_prefix_caching: bool = False
    device: str = ""
    device_peaks: dict = field(default_factory=dict)
    concurrency: list[int] = field(default_factory=list)  # server load sweep; []: batches
    request_rate: float = math.inf  # server load: requests/s, Poisson; inf: all at once
    burstiness: float = 1.0  # server load: 1 Poisson, < 1 burstier, > 1 more regular
    num_requests: int = 0  # server load: requests per point; 0: 4 x concurrency
    slo_ttft_ms: float | None = None  # goodput: a request counts if its TTFT is within
    slo_tpot_ms: float | None = None  # goodput: ... and its TPOT within

    UNBOUNDED = ("request_rate",)  # inf is a value here, not an error

    def check(self) -> None:
        try:
            self.grid()
            shapes = parse_vision_shape(self.input_vision_shape)
        except ValueError as exc:
            raise ParameterError(f"{exc}. Fix the parameter and run again.") from exc
        self.check_load()
        if self.limit_images is None:
            self.limit_images = max(1, len(shapes))
        super().check()
        if self.iterations < 1:
            raise ParameterError("Parameter 'iterations' must be at least 1 (timed repetitions).")
        if self.warmup < 0:
            raise ParameterError("Parameter 'warmup' must be 0 or more.")
        if len(shapes) > self.limit_images:
            raise ParameterError(
                f"Parameter 'limit_images' ({self.limit_images}) is below the {len(shapes)} "
                f"images of input_vision_shape. Fix: -p limit_images {len(shapes)}."
            )

    def check_load(self) -> None:
        """The load parameters need a server: an offline batch is one generate call."""
        loaded = [
            name
            for name, used in (
                ("concurrency", bool(self.concurrency)),
                ("request_rate", not math.isinf(self.request_rate)),
                ("num_requests", self.num_requests != 0),
                ("slo_ttft_ms", self.slo_ttft_ms is not None),
                ("slo_tpot_ms", self.slo_tpot_ms is not None),
            )
            if used
        ]
        if loaded and self.backend != "server":
            raise ParameterError(
                f"Parameter {loaded[0]!r} shapes the load on a server; the offline backend "
                f"submits each batch in one call. Fix: -p backend server, or drop {loaded[0]}."
            )
        if self.request_rate <= 0:
            raise ParameterError(
                "Parameter 'request_rate' must be > 0 requests/s, or inf to send all at once."
            )
        if not 0 < self.burstiness < math.inf:
            raise ParameterError("Parameter 'burstiness' must be a positive number (1: Poisson).")
        if self.num_requests < 0:
            raise ParameterError("Parameter 'num_requests' must be 0 (4 x concurrency) or more.")
        if self.num_requests and not self.concurrency:
            raise ParameterError(
                "Parameter 'num_requests' sets the requests of a load point: give concurrency "
                "too (e.g. -p concurrency 1,2,4), or use batch_size for batches."
            )
        for name in ("slo_ttft_ms", "slo_tpot_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ParameterError(f"Parameter {name!r} must be a positive number of ms.")
        if self.concurrency:
            try:
                self.concurrency = parse_int_list(self.concurrency, "concurrency")
            except ValueError as exc:
                raise ParameterError(f"{exc}. Fix the parameter and run again.") from exc

    @property
    def load_mode(self) -> bool:
        """A load sweep over concurrency (server), rather than batches."""
        return bool(self.concurrency)

    def grid(self) -> list[dict[str, int]]:
        if not self.concurrency:
            return expand_grid(self.input_len, self.batch_size, self.max_output_len)
        points = []
        for combo in expand_grid(self.input_len, self.concurrency, self.max_output_len):
            concurrency = combo.pop("batch_size")
            requests = self.num_requests or 4 * concurrency
            points.append({**combo, "batch_size": requests, "concurrency": concurrency})
        return points

    def vision_shapes(self) -> list[tuple[int, int]]:
        return parse_vision_shape(self.input_vision_shape)

    def preflight(self) -> None:
        """Every grid point must fit the prompt template and max_model_len; checked here."""
        super().preflight()
        plan_points(self, workload_builder(self, resolve_model(self.model)))

    def engine_params(self) -> EngineParams:
        """Caches off unless asked: repeated inputs must not look faster than they are."""
        engine_args = {
            "enable_prefix_caching": self.enable_prefix_caching,
            "mm_processor_cache_gb": 4 if self.enable_prefix_caching else 0,
            **self.engine_args,
        }
        base = {f: getattr(self, f) for f in EngineParams.__dataclass_fields__}
        return EngineParams(**{**base, "engine_args": engine_args})


def workload_builder(params: PerfParams, model_path: str) -> WorkloadBuilder:
    counter = PromptTokenCounter(model_path, params.num_crops, params.trust_remote_code)
    return WorkloadBuilder(counter, PHI3V, params.vision_shapes())


@dataclass
class PlannedPoint:
    index: int
    input_len: int
    batch_size: int  # requests per timed iteration (a load point: num_requests)
    max_output_len: int
    text_tokens: int
    image_tokens: int
    concurrency: int | None = None  # a load point: requests in flight at most

    @property
    def label(self) -> str:
        base = point_label(self.input_len, self.max_output_len, self.batch_size)
        return base if self.concurrency is None else f"{base} / conc {self.concurrency}"

    def row(self) -> dict[str, Any]:
        row = {
            "point": self.index,
            "input_len": self.input_len,
            "batch_size": self.batch_size,
            "max_output_len": self.max_output_len,
            "image tokens": self.image_tokens,
            "text tokens": self.text_tokens,
        }
        if self.concurrency is not None:
            row = {**row, "requests": row.pop("batch_size"), "concurrency": self.concurrency}
        return row


def plan_points(params: PerfParams, builder: WorkloadBuilder) -> list[PlannedPoint]:
    points = []
    for index, combo in enumerate(params.grid()):
        try:
            check_fits(
                combo["input_len"],
                combo["max_output_len"],
                params.max_model_len,
                builder.min_tokens,
            )
        except ValueError as exc:
            raise ParameterError(f"Grid point {index} does not fit: {exc}") from exc
        points.append(
            PlannedPoint(
                index=index,
                text_tokens=combo["input_len"] - builder.image_tokens,
                image_tokens=builder.image_tokens,
                **combo,
            )
        )
    return points


# ----------------------------------------------------------------------------------------
# Sweep grid and parameter parsing
# ----------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+]?\d+", text):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        value = int(text)
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        value = int(value)
    elif not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return int(value)


def parse_int_list(value: Any, name: str) -> list[int]:
    """Parse a scalar, list, or comma-separated string ("8192,16384", as papermill -p may
    pass) into a list of positive ints; duplicates dropped, order kept."""
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        items: list[Any] = [p for p in (s.strip() for s in text.split(",")) if p]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise ValueError(f"{name}: no values given ({value!r})")
    out: list[int] = []
    for item in items:
        n = _positive_int(item, name)
        if n not in out:
            out.append(n)
    return out


def expand_grid(input_len: Any, batch_size: Any, max_output_len: Any) -> list[dict[str, int]]:
    """Cartesian product of the sweep axes, input_len outermost (the vendor table's order)."""
    axes = {
        "input_len": parse_int_list(input_len, "input_len"),
        "batch_size": parse_int_list(batch_size, "batch_size"),
        "max_output_len": parse_int_list(max_output_len, "max_output_len"),
    }
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def parse_vision_shape(value: Any, name: str = "input_vision_shape") -> list[tuple[int, int]]:
    """Parse 'H,W;H,W' (one pair per image, like the vendor's --input-vision-shape=1024,1024)
    into [(H, W), ...]. Also accepts 'HxW' pairs or an already parsed sequence of pairs;
    'none' means text-only prompts (no image)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return []
    if isinstance(value, str):
        images = [s.strip() for s in value.strip().split(";")]
        if not value.strip() or any(not s for s in images):
            raise ValueError(f"{name}: expected 'H,W' per image separated by ';', got {value!r}")
        pairs: list[Any] = [re.split(r"\s*[,xX]\s*", s) for s in images]
    elif isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name}: no image shapes given")
        scalar = (int, np.integer, str)
        if len(value) == 2 and all(
            isinstance(v, scalar) and not re.search(r"[,xX;]", str(v)) for v in value
        ):
            value = [value]  # a single (H, W)
        pairs = [re.split(r"\s*[,xX]\s*", v.strip()) if isinstance(v, str) else v for v in value]
    else:
        raise ValueError(f"{name}: expected 'H,W;H,W' or a list of (H, W), got {value!r}")
    shapes: list[tuple[int, int]] = []
    for i, pair in enumerate(pairs, start=1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{name}: image {i} must be 'H,W' (two integers), got {pair!r}")
        h = _positive_int(pair[0], f"{name} (image {i} height)")
        w = _positive_int(pair[1], f"{name} (image {i} width)")
        shapes.append((h, w))
    return shapes


# ----------------------------------------------------------------------------------------
# Pre-flight checks
# ----------------------------------------------------------------------------------------


def check_fits(
    input_len: int, max_output_len: int, max_model_len: int, min_prompt_tokens: int
) -> None:
    """Raise ValueError before starting the engine if the scenario cannot run as asked.

    ``min_prompt_tokens`` is what the prompt costs with no filler text (chat template +
    image tokens); input_len below it cannot be honoured. input_len + max_output_len above
    max_model_len would make vLLM reject the prompt or cut generation short.
    """
    for name, v in (
        ("input_len", input_len),
        ("max_output_len", max_output_len),
        ("max_model_len", max_model_len),
    ):
        _positive_int(v, name)
    if input_len < min_prompt_tokens:
        raise ValueError(
            f"input_len={input_len} is below the {min_prompt_tokens} tokens the prompt template "
            f"and image(s) already take: set input_len >= {min_prompt_tokens}, or use fewer/"
            "smaller images or fewer num_crops."
        )
    if input_len + max_output_len > max_model_len:
        fixes = []
        if max_model_len - max_output_len >= min_prompt_tokens:
            fixes.append(f"lower input_len to <= {max_model_len - max_output_len}")
        if max_model_len - input_len >= 1:
            fixes.append(f"lower max_output_len to <= {max_model_len - input_len}")
        fixes.append(f"raise max_model_len to >= {input_len + max_output_len}")
        raise ValueError(
            f"input_len + max_output_len = {input_len} + {max_output_len} = "
            f"{input_len + max_output_len} exceeds max_model_len={max_model_len}: "
            + ", or ".join(fixes)
            + "."
        )


def kv_cache_warning(
    batch_size: int,
    input_len: int,
    max_output_len: int,
    kv_cache_tokens: int,
    block_size: int | None = None,
) -> str | None:
    """Warning text when the whole batch cannot sit in the KV cache at once, else None.

    vLLM then runs the requests partly one after another, so TPS drops and TTFT/prefill
    include waiting: the vendor's L40s 31744 x 4 row (TPS 29.52, ~139 s wall for ~32 s
    of decode) is such a case. With ``block_size`` each request is rounded up to whole
    KV blocks, as the engine allocates them.
    """
    per_request = input_len + max_output_len
    if block_size:
        per_request = math.ceil(per_request / block_size) * block_size
    needed = batch_size * per_request
    if needed <= kv_cache_tokens:
        return None
    fit = kv_cache_tokens // per_request
    return (
        f"KV cache holds {kv_cache_tokens} tokens but batch_size={batch_size} x "
        f"(input_len {input_len} + max_output_len {max_output_len}) needs {needed}: only "
        f"{fit} request(s) fit at once, so the batch will be partly serialized (lower TPS, "
        "queueing inside TTFT/prefill), as in the vendor's L40s 31744 x 4 row. Lower "
        "batch_size or input_len, or give the KV cache more memory to measure a concurrent batch."
    )
