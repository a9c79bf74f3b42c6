"""The explorer notebook's parameters: the engine's settings and the widget's first values.

``ENGINE_SETTINGS`` names the settings that need a new engine when changed in the widget;
everything else (prompt, images, num_crops, max_output_len, temperature) is per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kit.core.params import ParameterError, check_generation
from kit.engines.params import EngineParams
from kit.records.references import VENDOR_PROMPT

DTYPES = ["auto", "bfloat16", "float16", "float32"]

ENGINE_SETTINGS = ("model", "dtype", "max_model_len", "limit_images")


@dataclass
class ExploreParams(EngineParams):
    """The explorer notebook's parameters: engine settings plus the widget's first values."""

    limit_images: int | None = 4  # images per prompt the engine accepts
    prompt: str = VENDOR_PROMPT
    image: list[str] = field(default_factory=lambda: ["demo"])
    max_output_len: int = 256
    temperature: float = 0.0
    start_engine: bool = False  # True: start when the cell runs; False: on the first Generate
    history_size: int = 10

    def check(self) -> None:
        if self.limit_images is None:
            self.limit_images = 4
        super().check()
        check_generation(self.max_output_len, self.temperature)
        if self.history_size < 1:
            raise ParameterError("Parameter 'history_size' must be at least 1.")
