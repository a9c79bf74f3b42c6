"""What every backend takes and returns: requests, sampling, completions with their
timing, batches, and the :class:`Backend` protocol both backends implement.

``generate`` runs a batch and returns per-request timing; ``stream`` runs one request and
reports the answer as it grows; ``shutdown`` stops what the backend started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kit.core.image_io import to_data_url
from kit.engines.timing import RequestMarks, RequestTiming, StreamTiming
from kit.models.family import ModelFamily
from kit.records.caches import CacheUse
from kit.records.engine import EngineRecord

#: The backends a run can name (kit.engines.registry starts each).
BACKENDS = ("offline", "server")


@dataclass
class GenRequest:
    """What to ask: the user's text, its images (loaded as vLLM loads them), and the chat
    prompt the offline engine gets (the server renders the same from its chat template)."""

    question: str
    images: list[Any]
    prompt: str
    mm_processor_kwargs: dict[str, Any] | None = None  # e.g. num_crops per request

    def vllm_input(self) -> dict[str, Any]:
        """The offline ``LLM.generate`` input."""
        item: dict[str, Any] = {"prompt": self.prompt}
        if self.images:
            item["multi_modal_data"] = {"image": self.images}
        if self.mm_processor_kwargs:
            item["mm_processor_kwargs"] = self.mm_processor_kwargs
        return item

    def chat_messages(self) -> list[dict[str, Any]]:
        """The chat-completions messages: images as data URLs first, then the text."""

        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": to_data_url(image)}} for image in self.images
        ]
        content.append({"type": "text", "text": self.question})
        return [{"role": "user", "content": content}]


@dataclass
class GenSampling:
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    min_tokens: int = 0
    ignore_eos: bool = False

    @classmethod
    def exact(cls, tokens: int, seed: int | None = None) -> GenSampling:
        """Exactly ``tokens`` output tokens, greedy (benchmarks)."""
        return cls(max_tokens=tokens, min_tokens=tokens, ignore_eos=True, seed=seed)


@dataclass
class Completion:
    """One answered request, the same from both backends."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    output_tokens: int
    timing: RequestTiming
    marks: RequestMarks | None = None  # engine timestamps (offline only)
    stream: StreamTiming | None = None  # what the client saw of a streamed request (server)
    finished_at_wall: float | None = None
    cached_tokens: int | None = None  # prompt tokens the prefix cache served (offline only)
    streamed: bool = True  # False: the answer came whole (an engine without a step API)
    error: str | None = None  # why the request failed (server only; offline raises)
    caches: CacheUse | None = None  # what vLLM's caches served it (a streamed request)


@dataclass(frozen=True)
class Load:
    """How a server batch is sent: at most ``concurrency`` requests in flight, each at its
    offset (seconds after the batch starts). None: all at once (the offline batch)."""

    concurrency: int
    offsets: tuple[float, ...]


@dataclass
class Batch:
    """One ``generate`` call: its completions in request order and its wall time."""

    completions: list[Completion]
    wall_s: float
    server: dict[str, Any] | None = None  # server-side latencies of the call (server only)
    caches: CacheUse | None = None  # what the engine's caches served during the call


class Backend(Protocol):
    """What a notebook needs from an engine."""

    model_path: str  # where the tokenizer and processor are read from
    family: ModelFamily  # how prompts, images and their tokens are written for this model
    device: str
    config: EngineRecord  # the effective configuration, recorded in results.json
    weights: str
    remote_code_changes: list

    def generate(
        self, requests: list[GenRequest], sampling: GenSampling, load: Load | None = None
    ) -> Batch: ...

    def stream(self, request: GenRequest, sampling: GenSampling, on_text: Any) -> Completion: ...

    def shutdown(self) -> None: ...
