"""Idefics3 / SmolVLM: the chat format, the ``<image>`` placeholder, and the token count of
an image from the family's own processor.

The processor resizes an image to its longest edge ``size``, cuts it into tiles of
``max_image_size`` and adds a global view; each tile becomes ``image_seq_len`` tokens with
its ``<fake_token_around_image><row_i_col_j>`` markers. vLLM tokenizes the prompt whole and
replaces each ``<image>`` token with that expansion, so the count is the processor's own
(``_get_num_multimodal_tokens``, which transformers keeps for vLLM's Transformers backend).
There is no crops setting: ``num_crops`` does not apply and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kit.models.encoders import vit_flops, vit_layer_params
from kit.models.family import ModelFamily, VisionTower, processor_image_tokens


def image_views(processor: Any, width: int, height: int, crops: int) -> int:
    """Encoder passes for one image: its tiles and the global view (1 when not split)."""
    patches, _, _ = processor.image_processor.get_number_of_image_patches(height, width, {})
    return max(int(patches), 1)


def siglip_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """The SigLIP encoder and the pixel-shuffle connector a config.json builds."""
    vision = config.get("vision_config") or {}
    text = config.get("text_config") or {}
    if not vision or not text.get("hidden_size"):
        return None
    hidden, inner = int(vision["hidden_size"]), int(vision["intermediate_size"])
    layers, patch = int(vision["num_hidden_layers"]), int(vision["patch_size"])
    tokens = (int(vision["image_size"]) // patch) ** 2
    scale = int(config.get("scale_factor", 2))
    embeddings = 3 * patch * patch * hidden + hidden + tokens * hidden
    connector = hidden * scale * scale * int(text["hidden_size"])
    flops = vit_flops(hidden, inner, layers, patch, tokens, tokens) + 2.0 * connector * tokens / (
        scale * scale
    )
    return VisionTower(
        params=embeddings + layers * vit_layer_params(hidden, inner) + 2 * hidden + connector,
        flops_per_view=flops,
        shown={"siglip_layers": layers, "connector_params": connector},
    )


IDEFICS3 = ModelFamily(
    name="idefics3",
    architectures=("Idefics3ForConditionalGeneration",),
    vllm_module="idefics3",
    user_turn="<|im_start|>User:{images}{text}<end_of_utterance>\nAssistant:",
    # the checkpoint's template puts a space after "User:" before text, none before an image
    text_only_turn="<|im_start|>User: {text}<end_of_utterance>\nAssistant:",
    image_tag="<image>",
    image_tag_pattern=re.compile(r"<image>"),
    image_tokens=processor_image_tokens,
    image_views=image_views,
    vision_tower=siglip_tower,
    crops_argument=None,
    text_counting="whole",
    tower_note="SigLIP layers and connector over each image's tiles and global view",
)
