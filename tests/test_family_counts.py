"""Qwen2-VL, Qwen2.5-VL, LLaVA-1.5 and LLaVA-NeXT: the kit's prompt-token count against
transformers' own processors, with the published processor settings (dynamic resolution
between min and max pixels; anyres tiling). vLLM's modules for these families cannot load
here (torchvision), so the processors are the reference; the kit's count goes through the
same code a run uses (PromptTokenCounter, given the processor object: loading Qwen2-VL's
from a folder also loads its video processor, which needs torchvision too)."""

from __future__ import annotations

import pytest

from kit.core.images import synthetic_image
from kit.models.llava.family import LLAVA, LLAVA_NEXT
from kit.models.qwen2vl.family import QWEN2VL, QWEN25VL
from kit.models.tiny_tokenizer import base_tokenizer
from kit.models.tokens import PromptTokenCounter

SIZES = ((336, 336), (1024, 512), (640, 480), (1280, 720))  # (width, height)
QUESTION = "What is in the picture?"


def tokenizer(specials: list[str]):
    from transformers import PreTrainedTokenizerFast

    tokens = base_tokenizer(0)
    tokens.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tokens, unk_token="<unk>", pad_token="<unk>")


def qwen_processor():
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    class ImagesOnly(Qwen2VLProcessor):
        """Without the video processor, whose class check needs torchvision."""

        def check_argument_for_proper_class(self, argument_name, argument):
            if argument is not None:
                super().check_argument_for_proper_class(argument_name, argument)

    specials = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
    return ImagesOnly(  # Qwen2-VL-7B-Instruct's preprocessor_config.json
        image_processor=Qwen2VLImageProcessorPil(
            min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2
        ),
        tokenizer=tokenizer([*specials, "<|image_pad|>", "<|video_pad|>"]),
    )


ANYRES = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def llava_processor(next_: bool):
    from transformers import LlavaNextProcessor, LlavaProcessor
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    common = {
        "tokenizer": tokenizer(["<image>", "[INST]", "[/INST]"]),
        "patch_size": 14,
        "vision_feature_select_strategy": "default",
        "num_additional_image_tokens": 1,
    }
    size = {"shortest_edge": 336}
    crop = {"height": 336, "width": 336}
    if next_:  # llava-v1.6-mistral-7b-hf
        image = LlavaNextImageProcessorPil(size=size, crop_size=crop, image_grid_pinpoints=ANYRES)
        return LlavaNextProcessor(image_processor=image, **common)
    image = LlavaImageProcessorPil(size=size, crop_size=crop)  # llava-1.5-7b-hf
    return LlavaProcessor(image_processor=image, **common)


CASES = {
    "qwen2vl": (QWEN2VL, qwen_processor),
    "qwen25vl": (QWEN25VL, qwen_processor),
    "llava": (LLAVA, lambda: llava_processor(False)),
    "llava_next": (LLAVA_NEXT, lambda: llava_processor(True)),
}


@pytest.fixture(scope="module", params=list(CASES))
def saved(request) -> tuple:
    family, make = CASES[request.param]
    processor = make()
    counter = PromptTokenCounter("not-read", family, 1)
    counter.__dict__["processor"] = processor  # the cached property, given
    return family, processor, counter


def test_the_kit_counts_each_image_size_as_the_processor_does(saved):
    family, processor, counter = saved
    prompt = family.prompt(QUESTION, 1)
    counts = []
    for width, height in SIZES:
        image = synthetic_image(width, height, seed=f"{width}x{height}")
        reference = len(processor(text=[prompt], images=[image]).input_ids[0])
        counts.append(counter.prompt_tokens(prompt, [(width, height)]))
        assert counts[-1] == reference, (family.name, width, height)
    if family is not LLAVA:  # dynamic resolution / anyres: the size changes the count
        assert len(set(counts)) > 1, counts
    else:
        assert counter.image_tokens(1024, 512) == 576  # 24 x 24 patches, any size


def test_two_images_count_as_the_processor_does(saved):
    family, processor, counter = saved
    prompt = family.prompt(QUESTION, 2)
    images = [synthetic_image(640, 480, seed="a"), synthetic_image(336, 336, seed="b")]
    reference = len(processor(text=[prompt], images=images).input_ids[0])
    assert counter.prompt_tokens(prompt, [(640, 480), (336, 336)]) == reference


def test_num_crops_is_left_out_and_said():
    for family in (QWEN2VL, QWEN25VL, LLAVA, LLAVA_NEXT):
        assert family.processor_kwargs(4) == {}
        assert family.settings_note() == (
            f"num_crops does not apply to {family.name}: left out of the processor's settings"
        )
