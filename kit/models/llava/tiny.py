"""The tiny LLaVA-1.5 and LLaVA-NeXT checkpoints, built locally with random weights.

A CLIP encoder 64 wide (one 64-wide head) on 112 px views of 14 px patches (64 image tokens
a view), of which one layer is used (two layers and ``vision_feature_layer`` -2, as the
published models take the second-to-last), the two-layer projector, a two-layer Llama (1.5)
or Mistral (NeXT) text model with 64-wide attention heads, the kit's tiny tokenizer with
``<image>``, the published chat templates, and the published processors with 112 px views
(NeXT: llava-v1.6's grid resolutions scaled from 336 to 112 px tiles). vLLM's LLaVA modules
import torchvision, so the folders run on GPU machines only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, save_random_model
from kit.models.family import NamedModel
from kit.models.llava.files import pinpoints, write_text_and_processor

BUILDER_VERSION = 1
DEFAULT_SEED = 0

VIEW = 112  # the encoder's image size: 8 x 8 patches of 14 px
HIDDEN = 128
HEADS = 2  # head size 64

TEXT: dict[str, dict[str, Any]] = {
    "llava": {"model_type": "llama", "max_position_embeddings": 4096},
    "llava_next": {
        "model_type": "mistral",
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
        "sliding_window": None,
    },
}


def tiny_dir(family: str, seed: int = DEFAULT_SEED) -> Path:
    name = family.replace("_", "-")
    return cache_root() / f"smoke-{name}-v{BUILDER_VERSION}-seed{seed}"


def ensure_tiny(family: str, seed: int = DEFAULT_SEED) -> Path:
    return ensure_built(
        tiny_dir(family, seed),
        lambda dest: build_tiny(dest, family, seed),
        {"builder_version": BUILDER_VERSION, "seed": seed, "family": family},
    )


def build_tiny(dest: Path, family: str, seed: int = DEFAULT_SEED) -> None:
    """Tokenizer and processor, and random weights by transformers' own classes."""
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
    )

    text_config = TEXT[family]
    ids = write_text_and_processor(dest, family, seed, VIEW, text_config["max_position_embeddings"])
    text = {
        **text_config,
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "vocab_size": ids["vocab"],
        "rms_norm_eps": 1e-5,
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
        "pad_token_id": ids["<pad>"],
        "tie_word_embeddings": False,
    }
    vision = {
        "model_type": "clip_vision_model",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 1,
        "image_size": VIEW,
        "patch_size": 14,
        "projection_dim": 64,
    }
    common: dict[str, Any] = {
        "text_config": text,
        "vision_config": vision,
        "image_token_index": ids["<image>"],
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": False,
    }
    config: Any
    model_class: Any
    if family == "llava_next":
        config = LlavaNextConfig(**common, image_grid_pinpoints=pinpoints(VIEW))
        model_class = LlavaNextForConditionalGeneration
    else:
        config = LlavaConfig(**common)
        model_class = LlavaForConditionalGeneration
    save_random_model(dest, model_class, config, seed, family, BUILDER_VERSION)


SMOKE_LLAVA = NamedModel(
    name="smoke-llava",
    family="llava",
    weights="random",
    ensure=lambda: ensure_tiny("llava"),
    about="a tiny random-weight LLaVA-1.5 checkpoint: vLLM's real LLaVA path (GPU machines: "
    "it needs torchvision); answers and timings are noise",
)
SMOKE_LLAVA_NEXT = NamedModel(
    name="smoke-llava-next",
    family="llava_next",
    weights="random",
    ensure=lambda: ensure_tiny("llava_next"),
    about="a tiny random-weight LLaVA-NeXT (v1.6-mistral layout) checkpoint: vLLM's real "
    "LLaVA-NeXT path (GPU machines: it needs torchvision); answers and timings are noise",
)
