"""The demo: one prompt about one or more images, answered by the engine, with its timing.

This reproduces the vendor's ``--demo`` mode (same default prompt, greedy decoding,
``max-output-len`` 256) and adds what the vendor CLI does not print: the prompt's token
breakdown and the request's TTFT and tokens/s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from PIL import Image

from kit.backend import Backend, Completion, GenRequest, GenSampling
from kit.engine import AnswerParams
from kit.images import load_images, synthetic_image
from kit.params import ParameterError, check_generation
from kit.prompts import PHI3V, ModelFamily
from kit.tokens import PromptTokenCounter

VENDOR_PROMPT = "What is the content of this image in details?"


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


@dataclass
class DemoInputs:
    images: list[Image.Image]
    prompt: str  # the full chat prompt with image tags


@dataclass
class DemoResult:
    question: str
    prompt: str
    generated_text: str
    finish_reason: str | None
    image_sizes: list[tuple[int, int]]  # (width, height)
    num_prompt_tokens: int
    expected_prompt_tokens: int
    num_text_tokens: int
    num_image_tokens: list[int]
    num_output_tokens: int
    ttft_ms: float | None
    decode_ms: float | None
    e2e_ms: float | None
    wall_ms: float
    output_tokens_per_s: float | None  # output tokens / end-to-end time
    decode_tokens_per_s: float | None  # (output tokens - 1) / decode time
    warmup_requests: int = 0  # untimed requests before this one (0: a cold first request)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_completion(
        cls,
        completion: Completion,
        question: str,
        prompt: str,
        image_sizes: list[tuple[int, int]],
        text_tokens: int,
        image_tokens: list[int],
        wall_ms: float,
        warmup_requests: int = 0,
    ) -> DemoResult:
        """One finished request (either backend) with the kit's own token count beside
        the engine's."""
        timing = completion.timing
        n_out = completion.output_tokens

        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else seconds * 1000

        return cls(
            question=question,
            prompt=prompt,
            generated_text=completion.text,
            finish_reason=completion.finish_reason,
            image_sizes=image_sizes,
            num_prompt_tokens=completion.prompt_tokens or 0,
            expected_prompt_tokens=text_tokens + sum(image_tokens),
            num_text_tokens=text_tokens,
            num_image_tokens=image_tokens,
            num_output_tokens=n_out,
            ttft_ms=ms(timing.ttft_s),
            decode_ms=ms(timing.decode_s),
            e2e_ms=ms(timing.e2e_s),
            wall_ms=wall_ms,
            output_tokens_per_s=n_out / timing.e2e_s if timing.e2e_s else None,
            decode_tokens_per_s=(n_out - 1) / timing.decode_s if timing.decode_s else None,
            warmup_requests=warmup_requests,
        )

    def timing_rows(self) -> list[dict]:
        warm = (
            f"after {self.warmup_requests} untimed warm-up request(s)"
            if self.warmup_requests
            else "cold: the engine's first request, lazy initialisation included"
        )
        return [
            {"metric": "timed request", "value": warm},
            {"metric": "time to first token (ms)", "value": self.ttft_ms},
            {"metric": "prompt tokens (text + image)", "value": self.num_prompt_tokens},
            {"metric": "text tokens", "value": self.num_text_tokens},
            {"metric": "image tokens", "value": " + ".join(map(str, self.num_image_tokens))},
            {"metric": "output tokens", "value": self.num_output_tokens},
            {"metric": "decode time (ms)", "value": self.decode_ms},
            {"metric": "end-to-end latency (ms)", "value": self.e2e_ms},
            {"metric": "output tokens/s (output / end-to-end)", "value": self.output_tokens_per_s},
            {"metric": "decode tokens/s", "value": self.decode_tokens_per_s},
        ]


def prepare(params: DemoParams, family: ModelFamily = PHI3V) -> DemoInputs:
    """Load the images (clear errors for missing or unreadable files) and build the prompt."""
    images = load_images(params.image, "image")
    return DemoInputs(images=images, prompt=family.prompt(params.prompt, len(images)))


def warmup_request(inputs: DemoInputs, question: str, index: int) -> GenRequest:
    """A request shaped like the demo's, with other pictures of the same sizes, so the timed
    request pays no first-call initialisation yet finds nothing in the prefix or
    multimodal caches."""
    images = [
        synthetic_image(image.width, image.height, seed=1000 + index * 16 + k)
        for k, image in enumerate(inputs.images)
    ]
    return GenRequest(question=question, images=images, prompt=inputs.prompt)


def generate(
    engine: Backend,
    params: DemoParams,
    inputs: DemoInputs,
    on_text: Callable[[str], None] | None = None,
) -> DemoResult:
    """The demo's answer, streamed to ``on_text`` as it grows (both backends)."""
    for index in range(params.warmup):
        engine.generate([warmup_request(inputs, params.prompt, index)], GenSampling(max_tokens=1))
    sampling = GenSampling(
        max_tokens=params.max_output_len, temperature=params.temperature, seed=params.seed
    )
    request = GenRequest(question=params.prompt, images=inputs.images, prompt=inputs.prompt)
    start = time.perf_counter()
    completion = engine.stream(request, sampling, on_text or (lambda text: None))
    wall_ms = (time.perf_counter() - start) * 1000
    counter = PromptTokenCounter(engine.model_path, params.num_crops, params.trust_remote_code)
    sizes = [image.size for image in inputs.images]
    return DemoResult.from_completion(
        completion,
        question=params.prompt,
        prompt=inputs.prompt,
        image_sizes=sizes,
        text_tokens=counter.text_tokens(inputs.prompt),
        image_tokens=[counter.image_tokens(w, h) for w, h in sizes],
        wall_ms=wall_ms,
        warmup_requests=params.warmup,
    )
