"""The perf notebook's parameters: the sweep grid, image shapes, server load, and planned points.

Everything here is checked before an engine starts (``PerfParams.check`` and ``preflight``):
every grid point is planned with the model's own token counts, and one whose prompt cannot
hold its image tokens, or whose prompt plus output exceeds ``max_model_len``, is refused with
the parameter to change. The load parameters (concurrency, request rate, burstiness, SLOs)
need ``backend: server``, since an offline batch is one generate call. Prefix and multimodal
caches are off unless asked for, so repeated inputs cannot look faster than they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kit.core.params import ParameterError
from kit.engines.params import EngineParams
from kit.models.family import ModelFamily
from kit.models.registry import family_for_model, resolve_model
from kit.models.tokens import PromptTokenCounter
from kit.perf.grid import check_fits, expand_grid, parse_int_list, parse_vision_shape
from kit.perf.workload import WorkloadBuilder
from kit.records.perf import point_label


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
        self.check_load()  # first: the grid reads concurrency where batch_size would be
        try:
            self.grid()
            shapes = parse_vision_shape(self.input_vision_shape)
        except ValueError as exc:
            raise ParameterError(
                f"{str(exc).rstrip('.')}. Fix the parameter and run again."
            ) from exc
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
                raise ParameterError(
                    f"{str(exc).rstrip('.')}. Fix the parameter and run again."
                ) from exc

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
        model_path = resolve_model(self.model)
        plan_points(self, workload_builder(self, model_path, family_for_model(model_path)))

    def engine_params(self) -> EngineParams:
        """Caches off unless asked: repeated inputs must not look faster than they are."""
        engine_args = {
            "enable_prefix_caching": self.enable_prefix_caching,
            "mm_processor_cache_gb": 4 if self.enable_prefix_caching else 0,
            **self.engine_args,
        }
        base = {f: getattr(self, f) for f in EngineParams.__dataclass_fields__}
        return EngineParams(**{**base, "engine_args": engine_args})


def workload_builder(
    params: PerfParams, model_path: str, family: ModelFamily, salt: str = ""
) -> WorkloadBuilder:
    """The run's requests; a run passes its attempt's salt (kit.perf.workload.new_salt)."""
    counter = PromptTokenCounter(model_path, family, params.num_crops, params.trust_remote_code)
    return WorkloadBuilder(counter, params.vision_shapes(), salt)


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
