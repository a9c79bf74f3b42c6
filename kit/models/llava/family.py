"""LLaVA-1.5 (``LlavaForConditionalGeneration``) and LLaVA-NeXT
(``LlavaNextForConditionalGeneration``): the chat formats of the canonical llava-hf
checkpoints, the ``<image>`` placeholder, and the token count of an image.

LLaVA-1.5 gives every image the same 576 tokens (24 x 24 patches of a 336 px view). NeXT
picks the grid resolution closest to the image ("anyres"), encodes each 336 px tile and the
resized image, unpads the tile features to the image's aspect ratio and adds a newline token
per row: the count depends on the size. vLLM replaces each ``<image>`` token with that many;
the count is the processor's own (``_get_num_multimodal_tokens``). There is no crops
setting. vLLM's LLaVA modules import torchvision, so they run on GPU machines only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kit.models.encoders import vit_flops, vit_layer_params
from kit.models.family import ModelFamily, VisionTower, processor_image_tokens


def one_view(processor: Any, width: int, height: int, crops: int) -> int:
    return 1


def anyres_views(processor: Any, width: int, height: int, crops: int) -> int:
    """336 px tiles of the best grid resolution, and the resized whole image."""
    from transformers.image_processing_utils import select_best_resolution

    tile = processor.image_processor.crop_size["height"]
    best_h, best_w = select_best_resolution(
        (height, width), processor.image_processor.image_grid_pinpoints
    )
    return (best_h // tile) * (best_w // tile) + 1


def clip_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """CLIP up to ``vision_feature_layer`` and the two-layer projector, per 336 px view."""
    vision = config.get("vision_config") or {}
    text = config.get("text_config") or {}
    if not vision or not text.get("hidden_size"):
        return None
    hidden, inner = int(vision.get("hidden_size", 1024)), int(vision.get("intermediate_size", 4096))
    total = int(vision.get("num_hidden_layers", 24))
    layer = int(config.get("vision_feature_layer", -2))
    layers = total + layer + 1 if layer < 0 else layer + 1
    patch, size = int(vision.get("patch_size", 14)), int(vision.get("image_size", 336))
    tokens = (size // patch) ** 2 + 1
    text_hidden = int(text["hidden_size"])
    projector = hidden * text_hidden + text_hidden + text_hidden * text_hidden + text_hidden
    patches = tokens - 1  # and the class token
    flops = vit_flops(hidden, inner, layers, patch, patches, tokens) + 2.0 * projector * patches
    per_layer = vit_layer_params(hidden, inner)
    return VisionTower(
        params=3 * patch * patch * hidden + tokens * hidden + layers * per_layer + projector,
        flops_per_view=flops,
        shown={"clip_layers": layers, "projector_params": projector},
    )


LLAVA = ModelFamily(
    name="llava",
    architectures=("LlavaForConditionalGeneration",),
    vllm_module="llava",
    user_turn="USER: {images}\n{text} ASSISTANT:",  # llava-hf/llava-1.5-7b-hf
    text_only_turn="USER: {text} ASSISTANT:",
    image_tag="<image>",
    image_tag_pattern=re.compile(r"<image>"),
    image_tokens=processor_image_tokens,
    image_views=one_view,
    vision_tower=clip_tower,
    crops_argument=None,
    text_counting="whole",
    image_separator="\n",  # the chat templates write each image as "<image>\n"
    tower_note="CLIP layers and projector over one 336 px view per image",
)
LLAVA_NEXT = ModelFamily(
    name="llava_next",
    architectures=("LlavaNextForConditionalGeneration",),
    vllm_module="llava_next",
    user_turn="[INST] {images}\n{text} [/INST]",  # llava-hf/llava-v1.6-mistral-7b-hf
    text_only_turn="[INST] {text} [/INST]",
    image_tag="<image>",
    image_tag_pattern=re.compile(r"<image>"),
    image_tokens=processor_image_tokens,
    image_views=anyres_views,
    vision_tower=clip_tower,
    crops_argument=None,
    text_counting="whole",
    image_separator="\n",  # the chat templates write each image as "<image>\n"
    tower_note="CLIP layers and projector over each image's anyres tiles and the whole image",
)
