"""Full-size Qwen2-VL-7B-Instruct and Qwen2.5-VL-7B-Instruct folders with no weights: the
published config.json values (the kit's special ids in place of Qwen's), the kit's tiny
tokenizer, the published processor settings, and the dummy-weights marker, so vLLM makes
random weights (``load_format: dummy``). Speed and memory only, on GPU machines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, write_json
from kit.models.checkpoint import DUMMY_MARKER
from kit.models.family import NamedModel
from kit.models.qwen2vl.files import token_ids, write_processor, write_text_side

BUILDER_VERSION = 1
SEED = 0  # the tiny tokenizer's
MIN_PIXELS = 3136
MAX_PIXELS = 12845056

TEXT = {  # Qwen2-7B, as both checkpoints' config.json
    "hidden_act": "silu",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_window_layers": 28,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "sliding_window": 32768,
    "use_sliding_window": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
    "use_cache": True,
    "vocab_size": 152064,
    "torch_dtype": "bfloat16",
}

PUBLISHED: dict[str, dict[str, Any]] = {
    "qwen2vl": {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        **TEXT,
        "max_position_embeddings": 32768,
        "vision_config": {
            "depth": 32,
            "embed_dim": 1280,
            "mlp_ratio": 4,
            "num_heads": 16,
            "in_chans": 3,
            "hidden_size": 3584,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
    },
    "qwen25vl": {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        **TEXT,
        "max_position_embeddings": 128000,
        "vision_config": {
            "depth": 32,
            "hidden_act": "silu",
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "in_chans": 3,
            "out_hidden_size": 3584,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
    },
}


def dummy_dir(family: str) -> Path:
    return cache_root() / f"{family}-7b-dummy-v{BUILDER_VERSION}"


def ensure_dummy(family: str) -> Path:
    return ensure_built(
        dummy_dir(family),
        lambda dest: build_dummy(dest, family),
        {"builder_version": BUILDER_VERSION, "family": family, "weights": "dummy"},
    )


def full_size_config(family: str, ids: dict[str, int]) -> dict[str, Any]:
    """The published config.json, the kit's special ids, and the dummy-weights marker."""
    config = {**PUBLISHED[family], **token_ids(ids)}
    config["bos_token_id"] = ids["<|endoftext|>"]
    config["eos_token_id"] = ids["<|im_end|>"]
    config[DUMMY_MARKER] = True
    config["kit_full_size_model"] = {"builder_version": BUILDER_VERSION}
    return config


def build_dummy(dest: Path, family: str) -> None:
    ids = write_text_side(dest, SEED, PUBLISHED[family]["max_position_embeddings"])
    write_processor(dest, family, MIN_PIXELS, MAX_PIXELS)
    write_json(dest / "config.json", full_size_config(family, ids))


QWEN2VL_DUMMY = NamedModel(
    name="qwen2vl-7b-dummy",
    family="qwen2vl",
    weights="dummy",
    ensure=lambda: ensure_dummy("qwen2vl"),
    about="Qwen2-VL-7B-Instruct's real dimensions with random weights made by vLLM "
    "(load_format: dummy): speed and memory only",
    mirrors="Qwen/Qwen2-VL-7B-Instruct",
    mirrors_revision="eed13092ef92e448dd6875b2a00151bd3f7db0ac",
)
QWEN25VL_DUMMY = NamedModel(
    name="qwen25vl-7b-dummy",
    family="qwen25vl",
    weights="dummy",
    ensure=lambda: ensure_dummy("qwen25vl"),
    about="Qwen2.5-VL-7B-Instruct's real dimensions with random weights made by vLLM "
    "(load_format: dummy): speed and memory only",
    mirrors="Qwen/Qwen2.5-VL-7B-Instruct",
    mirrors_revision="cc594898137f460bfe9f0759e9844b3ce807cfb5",
)
