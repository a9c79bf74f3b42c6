"""The text side and processor files of a Qwen2-VL / Qwen2.5-VL folder the kit builds.

The tokenizer is the kit's tiny one with Qwen's specials added after its ids, the chat
template is the published checkpoints', and the processor's files are written as JSON:
transformers cannot save a Qwen2-VL processor without its video processor, which needs
torchvision (not loadable beside the CPU build of torch). The video processor's settings are
the image processor's, as transformers reads a published folder without a video config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.models.builds import write_json
from kit.models.tiny_tokenizer import base_tokenizer

SPECIALS = [  # Qwen2's added tokens, in their order
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

CHAT_TEMPLATE = (  # Qwen2-VL-7B-Instruct's and Qwen2.5-VL-7B-Instruct's
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

PROCESSOR_CLASS = {"qwen2vl": "Qwen2VLProcessor", "qwen25vl": "Qwen2_5_VLProcessor"}


def write_text_side(dest: Path, seed: int, max_length: int) -> dict[str, int]:
    """Tokenizer, chat template and generation config; the ids the model config needs."""
    from transformers import PreTrainedTokenizerFast

    tokens = base_tokenizer(seed)
    tokens.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokens,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=max_length,
    )
    tokenizer.save_pretrained(dest)
    (dest / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    ids = {token: int(tokens.token_to_id(token)) for token in ["<|endoftext|>", *SPECIALS]}
    write_json(
        dest / "generation_config.json",
        {
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
            "pad_token_id": ids["<|endoftext|>"],
        },
    )
    return {**ids, "vocab": tokens.get_vocab_size()}


def token_ids(ids: dict[str, int]) -> dict[str, int]:
    """The special ids a Qwen2-VL config.json names (vLLM reads them for M-RoPE)."""
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
    }


def image_processor(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """The published preprocessor_config.json's settings, with ``size`` as transformers 5
    writes them (``min_pixels`` / ``max_pixels`` kept for older readers)."""
    return {
        "image_processor_type": "Qwen2VLImageProcessor",
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "rescale_factor": 1 / 255,
        "resample": 3,
    }


def write_processor(dest: Path, family: str, min_pixels: int, max_pixels: int) -> None:
    """processor_config.json (nested, as transformers 5 saves it) and the legacy
    preprocessor_config.json, both with the same settings."""
    image = image_processor(min_pixels, max_pixels)
    video = {k: v for k, v in image.items() if k != "image_processor_type"}
    video["video_processor_type"] = "Qwen2VLVideoProcessor"
    processor_class = PROCESSOR_CLASS[family]
    write_json(
        dest / "processor_config.json",
        {"image_processor": image, "video_processor": video, "processor_class": processor_class},
    )
    write_json(dest / "preprocessor_config.json", {**image, "processor_class": processor_class})
