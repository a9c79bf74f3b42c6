"""The demo notebook's parameters, with the vendor's ``--demo`` defaults.

The defaults are the vendor's (same prompt, greedy decoding, ``max_output_len`` 256); the
images are loaded in ``preflight``, so a missing or unreadable file stops the run before a
folder is made or an engine is started.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kit.core.images import load_images
from kit.core.params import ParameterError, check_generation
from kit.engines.params import AnswerParams
from kit.records.references import VENDOR_PROMPT


@dataclass
class DemoParams(AnswerParams):
    prompt: str = VENDOR_PROMPT
    image: list[str] = field(default_factory=lambda: ["demo"])
    max_output_len: int = 256
    temperature: float = 0.0
    warmup: int = 1  # untimed requests first; 0 times a cold first request

    def check(self) -> None:
        if self.limit_images is None:
            self.limit_images = max(1, len(self.image))
        super().check()
        if not self.prompt.strip():
            raise ParameterError("Parameter 'prompt' is empty: give the question to ask.")
        if not self.image:
            raise ParameterError("Parameter 'image' is empty: give one image path or several.")
        if len(self.image) > self.limit_images:
            raise ParameterError(
                f"Parameter 'limit_images' ({self.limit_images}) is below the number of images "
                f"({len(self.image)}). Fix: -p limit_images {len(self.image)}, or leave it unset."
            )
        check_generation(self.max_output_len, self.temperature)
        if self.warmup < 0:
            raise ParameterError("Parameter 'warmup' must be 0 or more (untimed requests).")

    def preflight(self) -> None:
        load_images(self.image, "image")
        super().preflight()
