"""An interactive explorer on a live engine, for JupyterLab (``notebooks/explore.ipynb``).

Images (paths and/or uploads), a question, num_crops, max_output_len and temperature go in;
the answer comes out token by token, with the request's TTFT, prompt tokens split into text
and image tokens, output tokens and tokens/s, and a history of the session's last answers.

- The engine starts once (on the first Generate, with the Start button, or at once with the
  notebook parameter ``start_engine``) and serves every later click.
- num_crops, max_output_len and temperature are per request: num_crops travels in the
  request's ``mm_processor_kwargs`` (vLLM applies them per request), so changing it needs
  no restart.
- Engine-level settings (model, dtype, max_model_len, limit_images) need a new engine: when
  they differ from the running one, Generate refuses and the Restart button applies them.
- Bad input (no image, an unreadable upload or path, a prompt longer than max_model_len,
  more images than the engine takes) is reported in the widget; the engine keeps running.
- Streaming and shutdown are the backend's own (kit.backend: vLLM in this kernel, or a
  server, attached with ``backend: server`` and ``base_url``).

Everything shown that comes from the model or the user is escaped (kit.report helpers).
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
