"""Phi-3-vision and Phi-3.5-vision (``Phi3VForCausalLM``): the chat format, the
``<|image_k|>`` placeholders, HD crops and the token count of an image."""

from __future__ import annotations

import re
from typing import Any

from kit.models.family import ModelFamily
from kit.models.phi3v.vision import clip_tower, image_views


def image_tokens(processor: Any, width: int, height: int) -> int:
    """The processor's own count (vLLM's Phi3V path asks the same method)."""
    return int(processor.calc_num_image_tokens_from_image_size(width=width, height=height))


PHI3V = ModelFamily(
    name="phi3v",
    architectures=("Phi3VForCausalLM",),
    vllm_module="phi3v",
    user_turn="<|user|>\n{images}{text}<|end|>\n<|assistant|>\n",
    image_tag="<|image_{index}|>\n",
    image_tag_pattern=re.compile(r"<\|image_(\d+)\|>"),
    image_tokens=image_tokens,
    image_views=image_views,
    vision_tower=clip_tower,
    max_crops=16,
    crops_note="Phi-3.5-vision uses 4 for several images and 16 for a single image",
    tower_note="CLIP layers and projector over its 336x336 views",
)
