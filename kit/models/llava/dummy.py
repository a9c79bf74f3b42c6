"""Full-size llava-1.5-7b-hf and llava-v1.6-mistral-7b-hf folders with no weights: the
published config.json values (with the text model's dimensions written out, where the
published file leaves Llama's defaults implicit), the kit's tiny tokenizer (``<image>`` is
id 32000 there too), the published processors, and the dummy-weights marker, so vLLM makes
random weights (``load_format: dummy``). Speed and memory only, on GPU machines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, write_json
from kit.models.checkpoint import DUMMY_MARKER
from kit.models.family import NamedModel
from kit.models.llava.files import ANYRES, write_text_and_processor

BUILDER_VERSION = 1
SEED = 0  # the tiny tokenizer's
VIEW = 336

CLIP_L_336 = {  # openai/clip-vit-large-patch14-336, as both configs
    "model_type": "clip_vision_model",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
    "vocab_size": 32000,
}

PUBLISHED: dict[str, dict[str, Any]] = {
    "llava": {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": 32000,
        "pad_token_id": 32001,
        "projector_hidden_act": "gelu",
        "text_config": {  # lmsys/vicuna-7b-v1.5 (Llama-2-7B)
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "torch_dtype": "float16",
            "vocab_size": 32064,
        },
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "vision_config": CLIP_L_336,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": 32064,
    },
    "llava_next": {
        "architectures": ["LlavaNextForConditionalGeneration"],
        "model_type": "llava_next",
        "ignore_index": -100,
        "image_grid_pinpoints": ANYRES,
        "image_token_index": 32000,
        "projector_hidden_act": "gelu",
        "text_config": {  # mistralai/Mistral-7B-Instruct-v0.2
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000.0,
            "sliding_window": None,
            "torch_dtype": "bfloat16",
            "vocab_size": 32064,
        },
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_image_newline_parameter": True,
        "vision_config": CLIP_L_336,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": 32064,
    },
}

NAMES = {"llava": "llava15-7b-dummy", "llava_next": "llava-next-mistral-7b-dummy"}


def dummy_dir(family: str) -> Path:
    return cache_root() / f"{NAMES[family]}-v{BUILDER_VERSION}"


def ensure_dummy(family: str) -> Path:
    return ensure_built(
        dummy_dir(family),
        lambda dest: build_dummy(dest, family),
        {"builder_version": BUILDER_VERSION, "family": family, "weights": "dummy"},
    )


def full_size_config(family: str, ids: dict[str, int]) -> dict[str, Any]:
    """The published config.json, the kit's special ids, and the dummy-weights marker."""
    config = {**PUBLISHED[family], "image_token_index": ids["<image>"]}
    config["pad_token_id"] = ids["<pad>"]
    config[DUMMY_MARKER] = True
    config["kit_full_size_model"] = {"builder_version": BUILDER_VERSION}
    return config


def build_dummy(dest: Path, family: str) -> None:
    max_length = PUBLISHED[family]["text_config"]["max_position_embeddings"]
    ids = write_text_and_processor(dest, family, SEED, VIEW, max_length)
    write_json(dest / "config.json", full_size_config(family, ids))


LLAVA15_DUMMY = NamedModel(
    name=NAMES["llava"],
    family="llava",
    weights="dummy",
    ensure=lambda: ensure_dummy("llava"),
    about="llava-1.5-7b-hf's real dimensions with random weights made by vLLM "
    "(load_format: dummy): speed and memory only",
    mirrors="llava-hf/llava-1.5-7b-hf",
    mirrors_revision="b234b804b114d9e37bb655e11cbbb5f5e971b7a9",
)
LLAVA_NEXT_DUMMY = NamedModel(
    name=NAMES["llava_next"],
    family="llava_next",
    weights="dummy",
    ensure=lambda: ensure_dummy("llava_next"),
    about="llava-v1.6-mistral-7b-hf's real dimensions with random weights made by vLLM "
    "(load_format: dummy): speed and memory only",
    mirrors="llava-hf/llava-v1.6-mistral-7b-hf",
    mirrors_revision="a1d521368f8d353afa4da2ed2bb1bf646ef1ff5f",
)
