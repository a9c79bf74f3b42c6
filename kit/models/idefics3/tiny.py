"""The tiny Idefics3 (SmolVLM layout) checkpoint, built locally with random weights.

A one-layer SigLIP encoder on 64x64 tiles (16 patches, 4 tokens after the 2x pixel
shuffle), a two-layer Llama text model with 64-wide attention heads (vLLM's CPU attention
needs them), the kit's tiny tokenizer with the Idefics3 specials added, SmolVLM's chat
template, and an image processor that resizes to 192 and tiles at 64, so an image is up to
3x3 tiles and a global view: small enough for CI, through vLLM's real Idefics3 code path.
"""

from __future__ import annotations

from pathlib import Path

from kit.core.files import cache_root
from kit.models.builds import ensure_built, save_random_model
from kit.models.family import NamedModel
from kit.models.tiny_tokenizer import base_tokenizer

BUILDER_VERSION = 1
DEFAULT_SEED = 0

TILE = 64  # the encoder's image size and the processor's tile
PATCH = 16
SCALE = 2  # pixel shuffle
IMAGE_SEQ_LEN = (TILE // PATCH) ** 2 // SCALE**2
RESIZE = 3 * TILE  # longest edge before tiling: up to 3x3 tiles
MAX_POSITION_EMBEDDINGS = 8192

SPECIALS = [
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
]

CHAT_TEMPLATE = (  # SmolVLM-Instruct's
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def tiny_dir(seed: int = DEFAULT_SEED) -> Path:
    return cache_root() / f"smoke-idefics3-v{BUILDER_VERSION}-seed{seed}"


def ensure_tiny(seed: int = DEFAULT_SEED) -> Path:
    return ensure_built(
        tiny_dir(seed),
        lambda dest: build_tiny(dest, seed),
        {"builder_version": BUILDER_VERSION, "seed": seed, "family": "idefics3"},
    )


def build_tiny(dest: Path, seed: int = DEFAULT_SEED) -> None:
    """Tokenizer, processor and random weights, written by transformers' own classes."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    tokens = base_tokenizer(seed)
    tokens.add_special_tokens(SPECIALS)
    ids = {token: tokens.token_to_id(token) for token in ("<|endoftext|>", "<image>")}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokens,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=MAX_POSITION_EMBEDDINGS,
    )
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessorPil(
            size={"longest_edge": RESIZE},
            max_image_size={"longest_edge": TILE},
            do_image_splitting=True,
        ),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    config = Idefics3Config(
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 1,
            "image_size": TILE,
            "patch_size": PATCH,
        },
        text_config={
            "model_type": "llama",
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": tokens.get_vocab_size(),
            "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "pad_token_id": ids["<|endoftext|>"],
        },
        scale_factor=SCALE,
        image_token_id=ids["<image>"],
        tie_word_embeddings=False,
        pad_token_id=ids["<|endoftext|>"],
    )
    save_random_model(
        dest, Idefics3ForConditionalGeneration, config, seed, "idefics3", BUILDER_VERSION
    )
    processor.save_pretrained(dest)


SMOKE_IDEFICS3 = NamedModel(
    name="smoke-idefics3",
    family="idefics3",
    weights="random",
    ensure=ensure_tiny,
    about="a tiny random-weight Idefics3 (SmolVLM layout) checkpoint: vLLM's real Idefics3 "
    "path on CPU; answers and timings are noise",
)
