"""The MiniCPM-V 2.6 checkpoints the kit builds: a tiny one with random weights
(``smoke-minicpmv``) and a weightless full-size one (``minicpmv26-dummy``).

MiniCPM-V's config, image processor and processor are remote code in the published
checkpoint, so both folders get the kit's own (``configuration.py``, ``processor.py``,
copied in and named by ``auto_map``), the kit's tiny tokenizer with MiniCPM-V's specials,
and Qwen2's ChatML template with its default system turn. The tiny model is a one-layer
SigLIP tower on views of 112 px (8 x 8 patches of 14), a resampler of 8 queries (8 tokens
per view) and a two-layer Qwen2 with 64-wide heads (vLLM's CPU attention needs them); an
image is a source view plus up to 9 slices, so it runs vLLM's real MiniCPM-V 2.6 path in
seconds on a CPU. Its answers are noise.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, write_json
from kit.models.checkpoint import DUMMY_MARKER
from kit.models.family import NamedModel
from kit.models.minicpmv.weights import TinyDims, write_weights
from kit.models.tiny_tokenizer import base_tokenizer, special_ids

BUILDER_VERSION = 1
DEFAULT_SEED = 0

HERE = Path(__file__).parent
SOURCES = {  # the kit's modules, by their names in the folders (auto_map)
    "processing_minicpmv.py": HERE / "processor.py",
    "configuration_minicpm.py": HERE / "configuration.py",
}
AUTO_MAP = {
    "AutoProcessor": "processing_minicpmv.MiniCPMVProcessor",
    "AutoImageProcessor": "processing_minicpmv.MiniCPMVImageProcessor",
}

SPECIALS = [
    "<|im_start|>",
    "<|im_end|>",
    "<image>",
    "</image>",
    "<slice>",
    "</slice>",
    "<image_id>",
    "</image_id>",
]
SYSTEM_TURN = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
IMAGE_TAG = "(<image>./</image>)\n"  # as vLLM joins an image's placeholder to the text
CHAT_TEMPLATE = (  # Qwen2's ChatML; image parts become the placeholder on its own line
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}{{ '" + SYSTEM_TURN + "' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "{{ '" + IMAGE_TAG + "' }}{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
).replace("\n", "\\n")

# The tiny model's image settings: views of 112 px, 8 tokens each, up to 9 slices.
SCALE_RESOLUTION = 112
PATCH = 14
QUERY_NUM = 8
MAX_SLICES = 9
MAX_POSITION_EMBEDDINGS = 8192


def tiny_dims(vocab: int) -> TinyDims:
    return TinyDims(
        hidden=128,
        layers=2,
        heads=2,
        kv_heads=2,
        intermediate=256,
        vocab=vocab,
        vision_hidden=64,
        vision_layers=1,
        vision_intermediate=128,
        vision_image_size=SCALE_RESOLUTION,
        patch=PATCH,
        query_num=QUERY_NUM,
    )


# MiniCPM-V-2_6's published config.json (the figures that size it).
FULL_SIZE_LLM: dict[str, Any] = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 151666,
    "rope_theta": 1000000.0,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
}
FULL_SIZE_VISION = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 980,
}
FULL_SIZE_IMAGES = {"query_num": 64, "scale_resolution": 448, "max_slice_nums": 9}


def full_size_images() -> tuple[int, int, int]:
    """``write_processor_configs``'s image settings for the full-size folders."""
    images = FULL_SIZE_IMAGES
    return images["query_num"], images["scale_resolution"], images["max_slice_nums"]


def tiny_dir(seed: int = DEFAULT_SEED) -> Path:
    return cache_root() / f"smoke-minicpmv-v{BUILDER_VERSION}-seed{seed}"


def full_size_dir() -> Path:
    return cache_root() / f"minicpmv26-dummy-v{BUILDER_VERSION}"


def identity(seed: int) -> dict[str, Any]:
    return {"builder_version": BUILDER_VERSION, "seed": seed, "family": "minicpmv"}


def ensure_tiny(seed: int = DEFAULT_SEED) -> Path:
    return ensure_built(
        tiny_dir(seed), lambda dest: build_tiny(dest, seed), identity(seed), SOURCES
    )


def ensure_full_size() -> Path:
    """The full-size, weightless MiniCPM-V 2.6 folder (``model: minicpmv26-dummy``)."""
    return ensure_built(full_size_dir(), build_full_size, identity(DEFAULT_SEED), SOURCES)


def build_tiny(dest: Path, seed: int = DEFAULT_SEED) -> None:
    """Config, tokenizer, the kit's remote code and seeded random weights."""
    ids, vocab = write_text_side(dest, seed)
    write_processor_configs(dest, QUERY_NUM, SCALE_RESOLUTION, MAX_SLICES)
    dims = tiny_dims(vocab)
    write_json(dest / "config.json", tiny_config(ids, dims))
    write_weights(dest / "model.safetensors", dims, seed, silenced=ids.values())


def tiny_config(ids: dict[str, int], dims: TinyDims) -> dict:
    """The tiny checkpoint's config.json."""
    config = _config(ids, dims.vocab, SCALE_RESOLUTION, QUERY_NUM)
    config.update(
        hidden_size=dims.hidden,
        intermediate_size=dims.intermediate,
        num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads,
        num_key_value_heads=dims.kv_heads,
        max_position_embeddings=MAX_POSITION_EMBEDDINGS,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        # fp32 on CPU, as the other tiny models (bf16 matmuls are slow without AVX-512)
        torch_dtype="float32",
        vision_config=_vision_config(
            hidden_size=dims.vision_hidden,
            intermediate_size=dims.vision_intermediate,
            num_hidden_layers=dims.vision_layers,
            num_attention_heads=1,
            patch_size=PATCH,
            image_size=dims.vision_image_size,
        ),
        kit_smoke_model={"builder_version": BUILDER_VERSION},
    )
    return config


def build_full_size(dest: Path) -> None:
    """MiniCPM-V-2_6's dimensions, the kit's tokenizer and remote code, and no weights:
    vLLM makes random ones (``load_format: dummy``). Speed, memory and the roofline."""
    ids, _ = write_text_side(dest, DEFAULT_SEED)
    write_processor_configs(dest, *full_size_images())
    write_json(dest / "config.json", full_size_config(ids, FULL_SIZE_LLM))


def full_size_config(ids: dict[str, int], llm: dict[str, Any]) -> dict:
    """A weightless full-size config.json on the language model ``llm``."""
    config = _config(ids, llm["vocab_size"], 448, FULL_SIZE_IMAGES["query_num"])
    config.update(llm)
    config.update(torch_dtype="bfloat16", vision_config=_vision_config(**FULL_SIZE_VISION))
    config[DUMMY_MARKER] = True
    config["kit_full_size_model"] = {"builder_version": BUILDER_VERSION}
    return config


def _config(ids: dict[str, int], vocab: int, image_size: int, query_num: int) -> dict:
    """What both folders share: MiniCPM-V 2.6 on a Qwen2 language model."""
    return {
        "architectures": ["MiniCPMV"],
        "model_type": "minicpmv",
        "auto_map": {"AutoConfig": "configuration_minicpm.MiniCPMVConfig"},
        "version": 2.6,
        "query_num": query_num,
        "image_size": image_size,
        "drop_vision_last_layer": False,
        "use_image_id": True,
        "slice_mode": True,
        "batch_vision_input": True,
        "hidden_act": "silu",
        "vocab_size": vocab,
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "bos_token_id": ids["<|im_start|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _vision_config(**fields: int) -> dict:
    return {"model_type": "siglip_vision_model", "hidden_act": "gelu_pytorch_tanh", **fields}


def write_text_side(
    dest: Path,
    seed: int,
    specials: list[str] = SPECIALS,
    sources: dict[str, Path] = SOURCES,
    tokenizer_class: type | None = None,
) -> tuple[dict[str, int], int]:
    """Tokenizer files (``tokenizer_class``: a fast tokenizer's subclass, default the
    plain one) and the kit's modules (``sources``); every special token's id and the
    tokenizer's size."""
    from transformers import PreTrainedTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    tokens = base_tokenizer(seed)
    tokens.add_special_tokens(specials)
    tokenizer = (tokenizer_class or PreTrainedTokenizerFast)(
        tokenizer_object=tokens,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=MAX_POSITION_EMBEDDINGS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(dest)
    ids = {**special_ids(tokens), **{name: int(tokens.token_to_id(name)) for name in specials}}
    write_json(
        dest / "generation_config.json",
        {
            "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
            "pad_token_id": ids["<|endoftext|>"],
        },
    )
    for name, source in sources.items():
        shutil.copyfile(source, dest / name)
    return ids, tokens.get_vocab_size()


def write_processor_configs(
    dest: Path,
    query_num: int,
    scale_resolution: int,
    max_slice_nums: int,
    auto_map: dict[str, str] = AUTO_MAP,
    processor_class: str = "MiniCPMVProcessor",
    extra: dict[str, Any] | None = None,
) -> None:
    """preprocessor_config.json with MiniCPM-V 2.6's keys (and ``extra``: another
    processor's settings in the same file), and processor_config.json."""
    write_json(
        dest / "preprocessor_config.json",
        {
            "auto_map": auto_map,
            "image_processor_type": "MiniCPMVImageProcessor",
            "processor_class": processor_class,
            "max_slice_nums": max_slice_nums,
            "scale_resolution": scale_resolution,
            "patch_size": PATCH,
            "image_feature_size": query_num,
            "use_image_id": True,
            "slice_mode": True,
            "im_start": "<image>",
            "im_end": "</image>",
            "slice_start": "<slice>",
            "slice_end": "</slice>",
            "unk": "<unk>",
            "im_id_start": "<image_id>",
            "im_id_end": "</image_id>",
            "norm_mean": [0.5, 0.5, 0.5],
            "norm_std": [0.5, 0.5, 0.5],
            "version": 2.6,
            **(extra or {}),
        },
    )
    write_json(
        dest / "processor_config.json",
        {"auto_map": auto_map, "processor_class": processor_class},
    )


SMOKE_MINICPMV = NamedModel(
    name="smoke-minicpmv",
    family="minicpmv",
    weights="random",
    ensure=ensure_tiny,
    about="a tiny random-weight MiniCPM-V 2.6 checkpoint: vLLM's real MiniCPM-V path on "
    "CPU; answers and timings are noise",
)
MINICPMV26_DUMMY = NamedModel(
    name="minicpmv26-dummy",
    family="minicpmv",
    weights="dummy",
    ensure=ensure_full_size,
    about="MiniCPM-V 2.6's real dimensions (Qwen2-7B, SigLIP-400M) with random weights made "
    "by vLLM (load_format: dummy): speed, memory and the roofline",
    mirrors="openbmb/MiniCPM-V-2_6",
    mirrors_revision="3f7a8da1b7a8b928b5ee229fae33cf43fd64cf31",
)
