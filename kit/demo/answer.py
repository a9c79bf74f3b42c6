"""The demo: one prompt about one or more images, answered by the engine, with its timing.

This reproduces the vendor's ``--demo`` mode and adds what the vendor CLI does not print: the
prompt's token breakdown and the request's TTFT and tokens/s. Untimed warm-up requests use
other pictures of the same sizes, so the timed request pays no first-call initialisation yet
finds nothing in the prefix or multimodal caches; a prompt length other than the one the kit
counted fails the run, since the token split shown would be wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from kit.core.images import load_images, synthetic_image
from kit.demo.params import DemoParams
from kit.engines.types import Backend, GenRequest, GenSampling
from kit.models.family import ModelFamily
from kit.models.registry import family_for_model, resolve_model
from kit.models.tokens import PromptTokenCounter
from kit.records.demo import DemoRecord


@dataclass
class DemoInputs:
    images: list[Image.Image]
    prompt: str  # the full chat prompt with image tags


class PromptLengthMismatch(RuntimeError):
    """vLLM counted another prompt length than the kit computed before the run."""


def check_prompt_length(result: DemoRecord) -> None:
    """The prompt vLLM saw is the one the kit counted (text pieces plus the processor's
    image tokens); otherwise the token split the report shows would be wrong."""
    if not result.prompt_length_matches:
        raise PromptLengthMismatch(
            f"vLLM saw {result.num_prompt_tokens} prompt tokens, the kit expected "
            f"{result.expected_prompt_tokens}: the kit's count of this model's image tokens "
            "is wrong for this processor (num_crops, chat template)."
        )


def prepare(params: DemoParams, family: ModelFamily | None = None) -> DemoInputs:
    """Load the images (clear errors for missing or unreadable files) and build the prompt
    in the model family's format."""
    images = load_images(params.image, "image")
    family = family or family_for_model(resolve_model(params.model))
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
) -> DemoRecord:
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
    counter = PromptTokenCounter(
        engine.model_path, engine.family, params.num_crops, params.trust_remote_code
    )
    sizes = [image.size for image in inputs.images]
    return DemoRecord.from_completion(
        completion,
        question=params.prompt,
        prompt=inputs.prompt,
        image_sizes=sizes,
        text_tokens=counter.text_tokens(inputs.prompt),
        image_tokens=[counter.image_tokens(w, h) for w, h in sizes],
        wall_ms=wall_ms,
        warmup_requests=params.warmup,
    )
