"""The text side and processor of a LLaVA-1.5 / LLaVA-NeXT folder the kit builds.

The tokenizer is the kit's tiny one with ``<image>`` (id 32000, as the published
checkpoints') and ``<pad>`` added, the chat template is the published processor's, and the
processor is saved by transformers' own classes with their PIL image processors (the
default ones need torchvision): CLIP's 336 px view and patch 14 for the full size, any
smaller view for a tiny tower.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.models.builds import write_json
from kit.models.tiny_tokenizer import base_tokenizer

SPECIALS = ["<image>", "<pad>"]

CHAT_TEMPLATES = {
    "llava": (  # llava-hf/llava-1.5-7b-hf
        "{% for message in messages %}{% if message['role'] != 'system' %}"
        "{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>\n' }}{% endfor %}{# Render all text next #}"
        "{% if message['role'] != 'assistant' %}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ content['text'] + ' '}}{% endfor %}{% else %}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    ),
    "llava_next": (  # llava-hf/llava-v1.6-mistral-7b-hf
        "{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ '[INST] ' }}{# Render all images first #}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>\n' }}{% endfor %}{# Render all text next #}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ content['text'] }}{% endfor %}{{' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ ' ' + message['content'][0]['text'] + '</s> '}}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
        "{% endif %}{% endfor %}"
    ),
}

ANYRES = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]  # llava-v1.6


def pinpoints(view: int) -> list[list[int]]:
    """llava-v1.6's grid resolutions, in tiles of ``view`` instead of 336 px."""
    return [[h // 336 * view, w // 336 * view] for h, w in ANYRES]


def write_text_and_processor(
    dest: Path, family: str, seed: int, view: int, max_length: int
) -> dict[str, int]:
    """Tokenizer, processor (views of ``view`` px, 14 px patches) and generation config;
    the ids the model config needs."""
    from transformers import LlavaNextProcessor, LlavaProcessor, PreTrainedTokenizerFast
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    tokens = base_tokenizer(seed)
    tokens.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokens,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=max_length,
    )
    image: dict[str, Any] = {
        "size": {"shortest_edge": view},
        "crop_size": {"height": view, "width": view},
    }
    processor_class: Any
    image_class: Any
    if family == "llava_next":
        processor_class, image_class = LlavaNextProcessor, LlavaNextImageProcessorPil
        image["image_grid_pinpoints"] = pinpoints(view)
    else:
        processor_class, image_class = LlavaProcessor, LlavaImageProcessorPil
    processor = processor_class(
        image_processor=image_class(**image),
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token
        chat_template=CHAT_TEMPLATES[family],
    )
    processor.save_pretrained(dest)
    ids = {token: int(tokens.token_to_id(token)) for token in ["<s>", "</s>", *SPECIALS]}
    write_json(
        dest / "generation_config.json",
        {"bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"], "pad_token_id": ids["<pad>"]},
    )
    return {**ids, "vocab": tokens.get_vocab_size()}
