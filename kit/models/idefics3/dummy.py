"""A full-size SmolVLM-Instruct folder with no weights: the published config.json values (the
kit's ``<image>`` id in place of SmolVLM's), the kit's tiny tokenizer with the Idefics3
specials, the published processor settings (resize to 1536, 384 px tiles, 81 tokens a tile),
and the dummy-weights marker, so vLLM makes random weights (``load_format: dummy``). Speed
and memory only; vLLM's Idefics3 module imports here, so it plans and runs on CPU as well."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, write_json
from kit.models.checkpoint import DUMMY_MARKER
from kit.models.family import NamedModel
from kit.models.idefics3.tiny import CHAT_TEMPLATE, SPECIALS
from kit.models.tiny_tokenizer import base_tokenizer

BUILDER_VERSION = 1
SEED = 0  # the tiny tokenizer's

PUBLISHED: dict[str, Any] = {  # HuggingFaceTB/SmolVLM-Instruct
    "architectures": ["Idefics3ForConditionalGeneration"],
    "model_type": "idefics3",
    "scale_factor": 3,
    "text_config": {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "head_dim": 64,
        "max_position_embeddings": 16384,
        "rms_norm_eps": 1e-05,
        "rope_theta": 273768.0,
        "tie_word_embeddings": False,
        "vocab_size": 49155,
        "torch_dtype": "bfloat16",
    },
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vision_config": {
        "model_type": "idefics3",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "patch_size": 14,
        "image_size": 384,
    },
    "vocab_size": 49155,
}
IMAGE_SEQ_LEN = 81  # (384 / 14)^2 patches / 3^2
SIZE = 1536  # longest edge before tiling
TILE = 384


def dummy_dir() -> Path:
    return cache_root() / f"smolvlm-dummy-v{BUILDER_VERSION}"


def ensure_dummy() -> Path:
    return ensure_built(
        dummy_dir(),
        build_dummy,
        {"builder_version": BUILDER_VERSION, "family": "idefics3", "weights": "dummy"},
    )


def full_size_config(ids: dict[str, int]) -> dict[str, Any]:
    """The published config.json, the kit's special ids, and the dummy-weights marker."""
    config = {**PUBLISHED, "image_token_id": ids["<image>"], "pad_token_id": ids["pad"]}
    config["text_config"] = {**PUBLISHED["text_config"], "pad_token_id": ids["pad"]}
    config[DUMMY_MARKER] = True
    config["kit_full_size_model"] = {"builder_version": BUILDER_VERSION}
    return config


def build_dummy(dest: Path) -> None:
    """Tokenizer and processor by transformers' own classes; the config written out."""
    from transformers import Idefics3Processor, PreTrainedTokenizerFast
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    tokens = base_tokenizer(SEED)
    tokens.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokens,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=PUBLISHED["text_config"]["max_position_embeddings"],
    )
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessorPil(
            size={"longest_edge": SIZE},
            max_image_size={"longest_edge": TILE},
            do_image_splitting=True,
        ),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(dest)
    ids = {"<image>": tokens.token_to_id("<image>"), "pad": tokens.token_to_id("<|endoftext|>")}
    write_json(dest / "config.json", full_size_config(ids))
    write_json(
        dest / "generation_config.json",
        {
            "bos_token_id": tokens.token_to_id("<|im_start|>"),
            "eos_token_id": tokens.token_to_id("<end_of_utterance>"),
            "pad_token_id": ids["pad"],
        },
    )


SMOLVLM_DUMMY = NamedModel(
    name="smolvlm-dummy",
    family="idefics3",
    weights="dummy",
    ensure=ensure_dummy,
    about="SmolVLM-Instruct's real dimensions with random weights made by vLLM "
    "(load_format: dummy): speed and memory only",
    mirrors="HuggingFaceTB/SmolVLM-Instruct",
    mirrors_revision="81cd9a775a4d644f2faf4e7becff4559b46b14c7",
)
