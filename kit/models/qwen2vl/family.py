"""Qwen2-VL and Qwen2.5-VL: the chat format (ChatML with the default system turn), the
``<|vision_start|><|image_pad|><|vision_end|>`` placeholder, and the token count of an image.

The processor resizes an image so both sides are multiples of 28 (patch 14 x merge 2) and its
area lies between ``min_pixels`` and ``max_pixels`` (``smart_resize``), cuts it into 14 px
patches and merges them 2x2: an image is (h/14) x (w/14) / 4 tokens. vLLM tokenizes the
prompt whole and replaces ``<|image_pad|>`` with that many; the count is the processor's own
(``_get_num_multimodal_tokens``). There is no crops setting: ``num_crops`` is left out.
vLLM's modules for both import torchvision, which cannot load beside the CPU build of torch,
so they run on GPU machines only (docs/models.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kit.models.family import ModelFamily, VisionTower, processor_image_tokens

USER_TURN = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{images}{text}<|im_end|>\n<|im_start|>assistant\n"
)
IMAGE_TAG = "<|vision_start|><|image_pad|><|vision_end|>"


def load_processor(model_path: str, trust_remote_code: bool, **settings: Any) -> Any:
    """The checkpoint's processor; where its video processor cannot load (it needs
    torchvision, which the CPU build of torch here cannot), the same processor without it:
    counting images needs only the image processor and the tokenizer."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer, Qwen2VLProcessor

    try:
        return AutoProcessor.from_pretrained(
            model_path, trust_remote_code=trust_remote_code, **settings
        )
    except ImportError as exc:
        if "orchvision" not in str(exc):
            raise

    class ImagesOnly(Qwen2VLProcessor):
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument is not None:
                return super().check_argument_for_proper_class(argument_name, argument)
            return None

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    return ImagesOnly(
        image_processor=AutoImageProcessor.from_pretrained(model_path, **settings),
        tokenizer=tokenizer,
        chat_template=getattr(tokenizer, "chat_template", None),
    )


def image_views(processor: Any, width: int, height: int, crops: int) -> int:
    """14 px patches the encoder runs for one image (its "views" are patches here)."""
    return int(processor.image_processor.get_number_of_image_patches(height, width, {}))


def vit_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """The ViT and the patch merger a config.json builds, per 14 px patch. Only the linear
    layers are counted: the attention's quadratic term depends on the image's patch count."""
    vision = config.get("vision_config") or {}
    text = config.get("text_config") or config
    if not vision or not text.get("hidden_size"):
        return None
    width = int(vision.get("embed_dim") or vision["hidden_size"])
    depth = int(vision.get("depth") or vision["num_hidden_layers"])
    inner = int(vision.get("intermediate_size") or width * vision.get("mlp_ratio", 4))
    patch = int(vision.get("patch_size", 14))
    temporal = int(vision.get("temporal_patch_size", 2))
    merge = int(vision.get("spatial_merge_size", 2))
    mlp = 3 * width * inner if "intermediate_size" in vision else 2 * width * inner  # 2.5: SwiGLU
    per_layer = 4 * width * width + mlp
    embed = 3 * temporal * patch * patch * width
    merged = width * merge * merge
    merger = merged * merged + merged * int(text["hidden_size"])
    flops = 2.0 * (embed + depth * per_layer + merger / (merge * merge))
    return VisionTower(
        params=embed + depth * per_layer + merger,
        flops_per_view=flops,
        shown={"vit_layers": depth, "merger_params": merger},
    )


def qwen_family(name: str, architecture: str, module: str) -> ModelFamily:
    return ModelFamily(
        name=name,
        architectures=(architecture,),
        vllm_module=module,
        user_turn=USER_TURN,
        image_tag=IMAGE_TAG,
        image_tag_pattern=re.compile(re.escape(IMAGE_TAG)),
        image_tokens=processor_image_tokens,
        image_views=image_views,
        vision_tower=vit_tower,
        crops_argument=None,
        text_counting="whole",
        load_processor=load_processor,
        tower_note="ViT linear layers and patch merger per 14 px patch (attention not counted)",
    )


QWEN2VL = qwen_family("qwen2vl", "Qwen2VLForConditionalGeneration", "qwen2_vl")
QWEN25VL = qwen_family("qwen25vl", "Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl")
