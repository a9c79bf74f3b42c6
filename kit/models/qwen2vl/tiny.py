"""The tiny Qwen2-VL and Qwen2.5-VL checkpoints, built locally with random weights.

A one-layer ViT on 14 px patches merged 2x2 (64 wide, one 64-wide head), a two-layer Qwen2
text model with 64-wide attention heads (vLLM's attention wants a standard head size) and
M-RoPE sections scaled to them, the kit's tiny tokenizer with Qwen's specials, the published
chat template, and the published processor settings with ``max_pixels`` lowered so an image
is at most 256 tokens. vLLM's modules for these import torchvision, so the folders run on
GPU machines only; they are built anywhere (transformers' model classes need no torchvision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, save_random_model
from kit.models.family import NamedModel
from kit.models.qwen2vl.files import token_ids, write_processor, write_text_side

BUILDER_VERSION = 1
DEFAULT_SEED = 0

HIDDEN = 128
HEADS = 2  # head size 64
MROPE_SECTION = [8, 12, 12]  # the published [16, 24, 24] for head size 128, halved
MAX_POSITION_EMBEDDINGS = 32768
MIN_PIXELS = 3136  # published
MAX_PIXELS = 256 * 28 * 28  # at most 256 tokens an image (published: 12845056)

VISION: dict[str, dict[str, Any]] = {
    "qwen2vl": {"depth": 1, "embed_dim": 64, "num_heads": 1, "mlp_ratio": 4},
    "qwen25vl": {
        "depth": 1,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 1,
        "window_size": 112,
        "fullatt_block_indexes": [0],
        "tokens_per_second": 2,
    },
}


def tiny_dir(family: str, seed: int = DEFAULT_SEED) -> Path:
    return cache_root() / f"smoke-{family}-v{BUILDER_VERSION}-seed{seed}"


def ensure_tiny(family: str, seed: int = DEFAULT_SEED) -> Path:
    return ensure_built(
        tiny_dir(family, seed),
        lambda dest: build_tiny(dest, family, seed),
        {"builder_version": BUILDER_VERSION, "seed": seed, "family": family},
    )


def build_tiny(dest: Path, family: str, seed: int = DEFAULT_SEED) -> None:
    """Tokenizer and processor files, and random weights by transformers' own classes."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
    )

    ids = write_text_side(dest, seed, MAX_POSITION_EMBEDDINGS)
    write_processor(dest, family, MIN_PIXELS, MAX_PIXELS)
    text = {
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "vocab_size": ids["vocab"],
        "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": MROPE_SECTION,
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": False,
    }
    vision = dict(VISION[family])
    vision["out_hidden_size" if family == "qwen25vl" else "hidden_size"] = HIDDEN
    config_class: Any
    model_class: Any
    config_class, model_class = {
        "qwen2vl": (Qwen2VLConfig, Qwen2VLForConditionalGeneration),
        "qwen25vl": (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration),
    }[family]
    ids_in_config: dict[str, Any] = token_ids(ids)
    config = config_class(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=False,
        **{k: v for k, v in ids_in_config.items() if k != "vision_token_id"},
    )
    save_random_model(dest, model_class, config, seed, family, BUILDER_VERSION)


SMOKE_QWEN2VL = NamedModel(
    name="smoke-qwen2vl",
    family="qwen2vl",
    weights="random",
    ensure=lambda: ensure_tiny("qwen2vl"),
    about="a tiny random-weight Qwen2-VL checkpoint: vLLM's real Qwen2-VL path (GPU machines: "
    "it needs torchvision); answers and timings are noise",
)
SMOKE_QWEN25VL = NamedModel(
    name="smoke-qwen25vl",
    family="qwen25vl",
    weights="random",
    ensure=lambda: ensure_tiny("qwen25vl"),
    about="a tiny random-weight Qwen2.5-VL checkpoint: vLLM's real Qwen2.5-VL path (GPU "
    "machines: it needs torchvision); answers and timings are noise",
)
