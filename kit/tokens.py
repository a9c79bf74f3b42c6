"""Counting prompt tokens the way vLLM's Phi3V path does, before anything runs.

vLLM re-tokenizes the text between image tags chunk by chunk (each chunk with the
tokenizer's default special tokens, as the HF processor does) and replaces each tag with
the processor's image-token count. Counting the same way lets the kit check lengths
before an engine starts, and verify them afterwards from ``prompt_token_ids``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

IMAGE_TAG = re.compile(r"<\|image_\d+\|>")


@dataclass
class PromptTokenCounter:
    model_path: str
    num_crops: int
    trust_remote_code: bool = True

    @cached_property
    def processor(self):
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(
            self.model_path, trust_remote_code=self.trust_remote_code, num_crops=self.num_crops
        )

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def text_tokens(self, prompt: str) -> int:
        """Tokens of the text around the image tags, chunk by chunk."""
        return sum(len(self.tokenizer(chunk).input_ids) for chunk in IMAGE_TAG.split(prompt))

    def image_tokens(self, width: int, height: int) -> int:
        return int(self.processor.calc_num_image_tokens_from_image_size(width=width, height=height))

    def prompt_tokens(self, prompt: str, image_sizes: list[tuple[int, int]]) -> int:
        """Total prompt length for images given as (width, height)."""
        return self.text_tokens(prompt) + sum(self.image_tokens(w, h) for w, h in image_sizes)
