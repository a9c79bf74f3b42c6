"""Phi-3-vision's image tower for the roofline: CLIP ViT-L/14-336 (vLLM hard-codes these
sizes) up to ``img_processor.layer_idx``, and the projector over 2x2-merged features; one
encoder pass per 336x336 view (the HD crops of an image and its global view)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kit.models.family import VisionTower

CLIP_HIDDEN = 1024
CLIP_INTERMEDIATE = 4096
CLIP_LAYERS = 24
CLIP_PATCH = 14
CLIP_IMAGE = 336
CLIP_TOKENS = (CLIP_IMAGE // CLIP_PATCH) ** 2 + 1  # 576 patches + the class token
MERGED_TOKENS_PER_VIEW = 144  # after the 2x2 merge the projector sees


def clip_layers_built(layer_idx: int) -> int:
    """CLIP layers vLLM builds for Phi-3-vision: up to ``layer_idx`` (negative from the end)."""
    return CLIP_LAYERS + layer_idx + 1 if layer_idx < 0 else layer_idx + 1


def clip_layer_params() -> int:
    attn = 4 * (CLIP_HIDDEN * CLIP_HIDDEN + CLIP_HIDDEN)
    mlp = 2 * CLIP_HIDDEN * CLIP_INTERMEDIATE + CLIP_INTERMEDIATE + CLIP_HIDDEN
    return attn + mlp + 4 * CLIP_HIDDEN


def clip_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """The tower a Phi-3-vision config.json builds (None without ``img_processor``)."""
    img = config.get("img_processor") or {}
    if not img:
        return None
    hidden = int(config["hidden_size"])
    layers = clip_layers_built(int(img.get("layer_idx", -2)))
    image_dim = int(img.get("image_dim_out", CLIP_HIDDEN)) * 4  # 2x2 merged features
    projector = image_dim * hidden + hidden + hidden * hidden + hidden + 2 * image_dim
    per_layer = clip_layer_params()
    embeddings = 3 * CLIP_PATCH * CLIP_PATCH * CLIP_HIDDEN + (CLIP_TOKENS + 1) * CLIP_HIDDEN
    tower = embeddings + 2 * CLIP_HIDDEN + layers * per_layer
    patches = CLIP_TOKENS - 1
    embed_flops = 2.0 * 3 * CLIP_PATCH * CLIP_PATCH * CLIP_HIDDEN * patches
    dense = 2.0 * (per_layer - 4 * CLIP_HIDDEN) * CLIP_TOKENS
    attention = 4.0 * CLIP_TOKENS * CLIP_TOKENS * CLIP_HIDDEN
    projector_flops = 2.0 * projector * MERGED_TOKENS_PER_VIEW
    return VisionTower(
        params=tower + projector,
        flops_per_view=embed_flops + layers * (dense + attention) + projector_flops,
        shown={"clip_layers": layers, "projector_params": projector},
    )


def image_views(processor: Any, width: int, height: int, num_crops: int) -> int:
    """336x336 views the tower runs for one image: its HD crops and one global view (the
    kit's own HD transform; ``processor`` is not needed)."""
    from kit.models.phi3v.processor import hd_padded_size  # imports torch: only when asked

    w, h = hd_padded_size(width, height, num_crops)
    return (w // CLIP_IMAGE) * (h // CLIP_IMAGE) + 1
