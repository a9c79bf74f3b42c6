"""One Generate click of the explorer, without the widget: its images, prompt, checks and answer.

Images come from paths or uploads, decoded as the model sees them; image tags in the
question are kept where the user put them, or added in front. Token counts come from the
model's own processor for each num_crops, so a prompt that leaves no room for an answer
within ``max_model_len`` is refused before it reaches the engine, which keeps running.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

from kit.core.images import decode_image_bytes, load_image
from kit.core.params import ParameterError
from kit.engines.types import Completion, GenRequest
from kit.models.family import ModelFamily
from kit.models.tokens import PromptTokenCounter
from kit.records.demo import DemoRecord


class RestartRequired(Exception):
    """Engine-level settings in the widget differ from the running engine's."""


@dataclass
class ImageInput:
    name: str
    image: Image.Image


def images_from_paths(text: str) -> list[ImageInput]:
    """One path per line (``demo`` = the kit's picture); ParameterError for a bad one."""
    paths = [line.strip() for line in text.splitlines() if line.strip()]
    return [ImageInput(path, load_image(path, "image")) for path in paths]


def images_from_upload(files: Any) -> list[ImageInput]:
    """ipywidgets FileUpload entries (name, content), decoded as the model sees them."""
    images = []
    for entry in files or ():
        name = entry["name"]
        try:
            image = decode_image_bytes(bytes(entry["content"]), name, "upload")
        except ParameterError as exc:
            raise ParameterError(f"{exc} Or press 'Clear uploads' to drop it.") from exc
        images.append(ImageInput(name, image))
    return images


def chat_prompt(question: str, num_images: int, family: ModelFamily) -> str:
    """The chat prompt: image tags are added in front, or kept where the question has them."""
    if not question.strip():
        raise ParameterError("The prompt is empty: type a question about the image(s).")
    numbers = family.tag_numbers(question)
    if num_images == 0:
        if numbers:
            raise ParameterError(
                f"The prompt has an image tag ({family.tag(numbers[0])}) but no image is given: "
                "type an image path or upload an image, or remove the tag."
            )
        raise ParameterError(
            "No image is given: type an image path (one per line; 'demo' is the kit's "
            "picture) or upload an image."
        )
    if not numbers:
        return family.prompt(question, num_images)
    expected = list(range(1, num_images + 1))
    if sorted(set(numbers)) != expected or len(numbers) != len(set(numbers)):
        tags = ", ".join(family.tag(n) for n in expected)
        raise ParameterError(
            f"The prompt's image tags ({', '.join(family.tag(n) for n in numbers)}) do not "
            f"match the {num_images} image(s) given: use each of {tags} once, or remove the "
            "tags and the explorer puts them in front of the question."
        )
    return family.user_turn.format(images="", text=question)


class TokenCounts:
    """Prompt token counts per num_crops, from the model's own processor (cached)."""

    def __init__(self, model_path: str, family: ModelFamily, trust_remote_code: bool = True):
        self.model_path, self.family = model_path, family
        self.trust_remote_code = trust_remote_code
        self._counters: dict[int, PromptTokenCounter] = {}

    def counter(self, num_crops: int) -> PromptTokenCounter:
        if num_crops not in self._counters:
            self._counters[num_crops] = PromptTokenCounter(
                self.model_path, self.family, num_crops, self.trust_remote_code
            )
        return self._counters[num_crops]

    def image_tokens(self, image: Image.Image, num_crops: int) -> int:
        return self.counter(num_crops).image_tokens(*image.size)

    def text_tokens(self, prompt: str) -> int:
        return self.counter(4).text_tokens(prompt)


def check_length(
    text_tokens: int, image_tokens: list[int], num_crops: int, max_model_len: int
) -> None:
    total = text_tokens + sum(image_tokens)
    if total >= max_model_len:
        images = " + ".join(map(str, image_tokens))
        raise ParameterError(
            f"The prompt is {total} tokens ({text_tokens} text + {images} image at num_crops "
            f"{num_crops}), which leaves no room for an answer within the engine's "
            f"max_model_len of {max_model_len}. Lower num_crops, use fewer or smaller images or "
            "a shorter prompt, or set a larger max_model_len and restart the engine."
        )


@dataclass
class Request:
    question: str
    prompt: str
    images: list[ImageInput]
    num_crops: int
    max_output_len: int
    temperature: float

    def gen_request(self, family: ModelFamily) -> GenRequest:
        return GenRequest(
            question=self.question,
            images=[item.image for item in self.images],
            prompt=self.prompt,
            mm_processor_kwargs=family.processor_kwargs(self.num_crops),
        )


@dataclass
class Answer:
    """One Generate click: what was asked and what came back, with timing."""

    index: int
    started_at: str
    image_names: list[str]
    num_crops: int
    max_output_len: int
    temperature: float
    streamed: bool
    cached_prompt_tokens: int | None
    result: DemoRecord

    def to_dict(self) -> dict:
        return asdict(self)

    def prompt_tokens_text(self) -> str:
        r = self.result
        images = " + ".join(map(str, r.num_image_tokens))
        return f"{r.num_prompt_tokens} ({r.num_text_tokens} text + {images} image)"

    def metric_rows(self) -> list[dict[str, Any]]:
        r = self.result
        rows: list[dict[str, Any]] = [
            {"metric": "time to first token (ms)", "value": r.ttft_ms},
            {"metric": "prompt tokens (text + image)", "value": self.prompt_tokens_text()},
            {"metric": "output tokens", "value": r.num_output_tokens},
            {"metric": "output tokens/s (output / end-to-end)", "value": r.output_tokens_per_s},
            {"metric": "decode tokens/s", "value": r.decode_tokens_per_s},
            {"metric": "end-to-end latency (ms)", "value": r.e2e_ms},
            {
                "metric": "prompt tokens served from the prefix cache",
                "value": self.cached_prompt_tokens,
            },
            {"metric": "finish reason", "value": r.finish_reason},
            {"metric": "num_crops", "value": self.num_crops},
            {"metric": "streamed", "value": "yes" if self.streamed else "no (shown at once)"},
        ]
        if r.num_prompt_tokens != r.expected_prompt_tokens:
            rows.append(
                {
                    "metric": "note",
                    "value": f"vLLM saw {r.num_prompt_tokens} prompt tokens, the kit counted "
                    f"{r.expected_prompt_tokens}",
                }
            )
        return rows


def short(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_from_completion(
    completion: Completion,
    request: Request,
    text_tokens: int,
    image_tokens: list[int],
    wall_ms: float,
) -> DemoRecord:
    return DemoRecord.from_completion(
        completion,
        question=request.question,
        prompt=request.prompt,
        image_sizes=[item.image.size for item in request.images],
        text_tokens=text_tokens,
        image_tokens=image_tokens,
        wall_ms=wall_ms,
    )


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{name} {old} → {new}" for name, (old, new) in changes.items())
