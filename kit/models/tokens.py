"""Counting prompt tokens the way vLLM's multimodal path does, before anything runs.

vLLM tokenizes the text between image placeholders piece by piece (each with the
tokenizer's default special tokens, as Phi3V's processor does), or the whole prompt at once
(the other families), and replaces each placeholder with the processor's image-token
count (``ModelFamily.text_counting``). Counting the same way, with the
family's own processor, lets the kit check lengths before an engine starts, and verify
them afterwards from ``prompt_token_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kit.models.family import ModelFamily


@dataclass
class PromptTokenCounter:
    model_path: str
    family: ModelFamily
    num_crops: int
    trust_remote_code: bool = True

    @cached_property
    def processor(self) -> Any:
        settings = self.family.processor_kwargs(self.num_crops)
        if self.family.load_processor is not None:
            return self.family.load_processor(self.model_path, self.trust_remote_code, **settings)
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(
            self.model_path, trust_remote_code=self.trust_remote_code, **settings
        )

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    def text_tokens(self, prompt: str) -> int:
        """Tokens of the text around the image placeholders, counted as the family's vLLM
        path counts them (piece by piece, or whole less each placeholder's one token)."""
        if self.family.text_counting == "whole":
            tags = len(self.family.image_tag_pattern.findall(prompt))
            return len(self.tokenizer(prompt).input_ids) - tags
        return sum(len(self.tokenizer(piece).input_ids) for piece in self.family.split_text(prompt))

    def image_tokens(self, width: int, height: int) -> int:
        return self.family.image_tokens(self.processor, width, height)

    def image_views(self, width: int, height: int) -> int:
        """Image-encoder passes for one image (its tiles or crops and a global view)."""
        return self.family.image_views(self.processor, width, height, self.num_crops)

    def prompt_tokens(self, prompt: str, image_sizes: list[tuple[int, int]]) -> int:
        """Total prompt length for images given as (width, height)."""
        return self.text_tokens(prompt) + sum(self.image_tokens(w, h) for w, h in image_sizes)
