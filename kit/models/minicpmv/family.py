"""MiniCPM-V 2.6 (``MiniCPMV``): the chat format (Qwen2's ChatML with the default system
turn), the ``(<image>./</image>)`` placeholder, and the token count of an image.

The image processor (the checkpoint's remote code; the kit's own for the folders it
builds) cuts an image into a source view and up to ``max_slice_nums`` slices of about
``scale_resolution``² each; vLLM replaces the placeholder with the processor's
``get_slice_image_placeholder`` text (an ``<image_id>`` marker, then each view as
``image_feature_size`` tokens between ``<image>``/``<slice>`` markers). The count is that
text's tokens, from the same processor code the checkpoint runs.

The placeholder is several tokens (parentheses and ``./`` around ``<image>`` and
``</image>``), which vLLM matches and replaces, so the text around it counts as the pieces
between placeholders ("pieces"; when the tokens around a placeholder merge, vLLM re-encodes
those segments on their own too). The crops-like setting, ``max_slice_nums``, is not mapped
to ``num_crops``: vLLM computes each placeholder with the checkpoint's own value, so a
per-request value would disagree with it. ``num_crops`` is left out and the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kit.models.encoders import vit_flops, vit_layer_params
from kit.models.family import ModelFamily, VisionTower

USER_TURN = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{images}{text}<|im_end|>\n<|im_start|>assistant\n"
)
PLACEHOLDER = "(<image>./</image>)"


def image_tokens(processor: Any, width: int, height: int) -> int:
    """The tokens of the text vLLM puts in place of one image (the first of a prompt: vLLM
    numbers images in ``<image_id>``, and always writes that marker for 2.6)."""
    text = processor.image_processor.get_slice_image_placeholder(
        (width, height), image_idx=0, use_image_id=True
    )
    return len(processor.tokenizer.encode(text, add_special_tokens=False))


def image_views(processor: Any, width: int, height: int, crops: int) -> int:
    """Encoder passes for one image: the source view and its slices."""
    grid = processor.image_processor.get_sliced_grid((width, height))
    return 1 if grid is None else 1 + grid[0] * grid[1]


def resampler_params(dim: int, kv_dim: int, queries: int) -> int:
    """Queries, the key/value input projection, one attention (in and out projections with
    biases), three layer norms and the output projection."""
    return queries * dim + kv_dim * dim + 4 * (dim * dim + dim) + 3 * 2 * dim + dim * dim


def minicpmv_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """The SigLIP tower and the resampler a config.json builds, per view (a view of
    ``image_size``² pixels, the slicing's ``scale_resolution``)."""
    vision = config.get("vision_config") or {}
    if not vision or not config.get("hidden_size"):
        return None
    hidden, inner = int(vision["hidden_size"]), int(vision["intermediate_size"])
    layers = int(vision["num_hidden_layers"]) - int(bool(config.get("drop_vision_last_layer")))
    patch = int(vision["patch_size"])
    positions = (int(vision["image_size"]) // patch) ** 2
    tokens = (int(config.get("image_size", 448)) // patch) ** 2  # one view's patches
    dim, queries = int(config["hidden_size"]), int(config.get("query_num", 64))
    embeddings = 3 * patch * patch * hidden + hidden + positions * hidden
    resampler = resampler_params(dim, hidden, queries)
    resampler_flops = (
        2.0 * tokens * (hidden * dim + 2 * dim * dim)  # kv_proj, then keys and values
        + 2.0 * queries * 3 * dim * dim  # queries in, attention out, output projection
        + 4.0 * queries * tokens * dim  # scores and the weighted sum
    )
    return VisionTower(
        params=embeddings + layers * vit_layer_params(hidden, inner) + 2 * hidden + resampler,
        flops_per_view=vit_flops(hidden, inner, layers, patch, tokens, tokens) + resampler_flops,
        shown={"siglip_layers": layers, "resampler_params": resampler},
    )


MINICPMV = ModelFamily(
    name="minicpmv",
    architectures=("MiniCPMV",),
    vllm_module="minicpmv",
    user_turn=USER_TURN,
    image_tag=PLACEHOLDER + "\n",
    image_tag_pattern=re.compile(re.escape(PLACEHOLDER)),
    image_tokens=image_tokens,
    image_views=image_views,
    vision_tower=minicpmv_tower,
    crops_argument=None,
    text_counting="pieces",
    tower_note="SigLIP layers and resampler over each image's source view and slices",
)
