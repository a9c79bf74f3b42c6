"""Benchmark requests whose prompts are exactly ``input_len`` tokens, images included.

The vendor's filler ("hi" repeated) only approximates input-len. Here the text is built
from words that are one token each after a space, then trimmed or extended until the
prompt, counted the way vLLM counts it (the model family's own processor), is exactly
the target. Every request gets its own seeded words and its own picture, and every run
attempt its own salt mixed into both (:func:`new_salt`), so neither the prefix cache nor
the multimodal cache of a server that saw an earlier run can make this one look faster.
Whether a cache served anything anyway is measured, not assumed (``CacheUse``).
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass, replace
from functools import cached_property

from PIL import Image

from kit.core.images import synthetic_image
from kit.engines.types import GenRequest
from kit.models.family import ModelFamily
from kit.models.tokens import PromptTokenCounter

WORD = re.compile(r"^[A-Za-z]{3,12}$")

MAX_ADJUSTMENTS = 12


class WorkloadError(ValueError):
    """A prompt of the requested length cannot be built."""


@dataclass(frozen=True)
class BenchRequest:
    text: str  # the user's words: a server renders the same prompt from its chat template
    prompt: str
    images: list[Image.Image]
    num_tokens: int  # as the kit counted them; vLLM's count is checked after the run

    def as_request(self) -> GenRequest:
        return GenRequest(question=self.text, images=self.images, prompt=self.prompt)


def new_salt() -> str:
    """A run attempt's own salt: 64 random bits, recorded with every point it measured."""
    return secrets.token_hex(8)


@dataclass
class WorkloadBuilder:
    counter: PromptTokenCounter  # counts as vLLM does, for the model's family
    vision_shapes: list[tuple[int, int]]  # (H, W) per image, the vendor's order
    salt: str = ""  # mixed into every request's words and pixels ("": a plan, not a run)
    image_token_offset: int = 0  # what a server counts beyond the kit (kit.perf.calibration)

    @property
    def family(self) -> ModelFamily:
        return self.counter.family

    @cached_property
    def words(self) -> list[str]:
        """Words that encode to exactly one token after a space (sorted: deterministic)."""
        tokenizer = self.counter.tokenizer
        words = set()
        for token in tokenizer.get_vocab():
            text = tokenizer.convert_tokens_to_string([token])
            if text.startswith(" ") and WORD.match(text[1:]):
                words.add(text[1:])
        checked = [
            w
            for w in sorted(words)
            if len(tokenizer.encode(" " + w, add_special_tokens=False)) == 1
        ]
        if len(checked) < 100:
            raise WorkloadError("the tokenizer has too few single-token words to build filler text")
        return checked

    @cached_property
    def image_tokens(self) -> int:
        return self.kit_image_tokens + self.image_token_offset

    @cached_property
    def kit_image_tokens(self) -> int:
        """The run's images as the family's processor counts them with the run's settings."""
        return sum(self.counter.image_tokens(w, h) for h, w in self.vision_shapes)

    @cached_property
    def min_tokens(self) -> int:
        """The prompt's cost with one filler word: template, image tags and image tokens."""
        return self._count(self.words[0])

    def _count(self, text: str) -> int:
        prompt = self.family.prompt(text, len(self.vision_shapes))
        return self.counter.text_tokens(prompt) + self.image_tokens

    def build(self, input_len: int, seed: int) -> BenchRequest:
        """One request of exactly ``input_len`` prompt tokens with distinct text and images."""
        if input_len < self.min_tokens:
            raise WorkloadError(
                f"input_len={input_len} is below the {self.min_tokens} tokens that the chat "
                "template and image tokens already take"
            )
        rng = random.Random(f"{self.salt}/{seed}")
        pool = self.words
        words = [rng.choice(pool) for _ in range(input_len - self.min_tokens + 1)]
        count = self._count(" ".join(words))
        for _ in range(MAX_ADJUSTMENTS):
            if count == input_len:
                break
            if count < input_len:
                words += [rng.choice(pool) for _ in range(input_len - count)]
            else:
                del words[max(1, len(words) - (count - input_len)) :]
            count = self._count(" ".join(words))
        if count != input_len:
            raise WorkloadError(f"could not reach exactly {input_len} tokens (stopped at {count})")
        return self._request(" ".join(words), seed, count)

    def counted_by_server(self, offset: int) -> WorkloadBuilder:
        """The same workload with prompts built by a server's count (``offset`` tokens more
        for the images than the kit counts); the single-token words already found are kept,
        since finding them scans the whole vocabulary."""
        calibrated = replace(self, image_token_offset=offset)
        if "words" in self.__dict__:  # the cached_property's value
            calibrated.__dict__["words"] = self.words
        return calibrated

    def smallest(self, seed: int) -> BenchRequest:
        """The one-word request whose count is ``min_tokens`` (a server's calibration)."""
        return self._request(self.words[0], seed, self.min_tokens)

    def _request(self, text: str, seed: int, count: int) -> BenchRequest:
        images = [
            synthetic_image(width, height, seed=f"{self.salt}/{seed}/{i}")
            for i, (height, width) in enumerate(self.vision_shapes)
        ]
        prompt = self.family.prompt(text, len(images))
        return BenchRequest(text=text, prompt=prompt, images=images, num_tokens=count)

    def batch(self, input_len: int, batch_size: int, seed: int) -> list[BenchRequest]:
        return [self.build(input_len, seed * 1000 + i) for i in range(batch_size)]
