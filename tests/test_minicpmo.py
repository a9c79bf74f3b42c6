"""MiniCPM-O 2.6: MiniCPM-V 2.6's image path with an audio side the kit never sends. The
tiny folder carries what vLLM's MiniCPM-O needs to start (a Whisper audio config, a tiny
audio encoder's weights, a feature extractor, the tokenizer's marker ids); the weightless
full-size folder has the published dimensions; the kit counts as vLLM's own MiniCPM-O
processor (no engine; tests/test_families.py runs the engine)."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from kit.models.minicpmv import minicpmo, tiny
from kit.models.minicpmv.minicpmo import MINICPMO, audio_params
from kit.models.registry import FAMILIES, NAMED_MODELS, family_for_config, read_model_figures
from kit.models.tokens import PromptTokenCounter


@pytest.fixture(scope="module")
def folder():
    return minicpmo.ensure_tiny()


def test_the_family_is_minicpm_v_s_images_under_vllm_s_minicpmo_module():
    minicpmv = FAMILIES["minicpmv"]
    assert FAMILIES["minicpmo"] is MINICPMO
    assert (MINICPMO.architectures, MINICPMO.vllm_module) == (("MiniCPMO",), "minicpmo")
    assert MINICPMO.prompt("Hi?", 2) == minicpmv.prompt("Hi?", 2)
    assert MINICPMO.image_tokens is minicpmv.image_tokens and MINICPMO.crops_argument is None
    assert NAMED_MODELS["smoke-minicpmo"].kind == "tiny"
    assert NAMED_MODELS["minicpmo26-dummy"].kind == "dummy"
    assert family_for_config({"architectures": ["MiniCPMO"]}) is MINICPMO


def test_the_tiny_folder_is_minicpm_v_s_tiny_model_with_a_tiny_audio_side(folder):
    from safetensors import safe_open
    from transformers import AutoConfig, AutoProcessor

    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MiniCPMO"] and config["model_type"] == "minicpmo"
    assert (config["hidden_size"], config["num_hidden_layers"], config["query_num"]) == (128, 2, 8)
    assert config["vision_config"]["num_hidden_layers"] == 1
    audio = config["audio_config"]
    assert (audio["d_model"], audio["encoder_layers"], audio["encoder_ffn_dim"]) == (64, 1, 256)
    assert config["audio_pool_step"] == 2 and config["version"] == 2.6
    for name, source in minicpmo.SOURCES.items():
        assert (folder / name).read_bytes() == source.read_bytes()
    with safe_open(folder / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    audio_weights = {
        "apm.conv1.weight",
        "apm.layers.0.fc1.weight",
        "audio_projection_layer.linear2.bias",
    }
    assert audio_weights < names
    assert not any(name.startswith("tts.") for name in names)  # vLLM drops them anyway
    loaded = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    assert loaded.audio_config.encoder_ffn_dim == 256  # an object, as vLLM builds the encoder
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor.feature_extractor).__name__ == "WhisperFeatureExtractor"
    assert processor.feature_extractor.sampling_rate == 16000
    tokenizer = processor.tokenizer  # the marker ids vLLM's MiniCPM-O processor reads
    for marker in ("im_start", "slice_end", "audio_start", "audio_end", "spk_start", "spk_end"):
        token = getattr(tokenizer, marker)
        assert getattr(tokenizer, f"{marker}_id") == tokenizer.convert_tokens_to_ids(token)
        assert tokenizer.convert_ids_to_tokens(getattr(tokenizer, f"{marker}_id")) == token


def test_the_family_counts_as_minicpm_v_s_tiny_model(folder):
    """The same image settings and tokenizer (plus markers after its ids): the same counts."""
    ours = PromptTokenCounter(str(folder), MINICPMO, 4)
    theirs = PromptTokenCounter(str(tiny.ensure_tiny()), FAMILIES["minicpmv"], 4)
    prompt = MINICPMO.prompt("What is in the image?", 1)
    for size in ((336, 336), (1024, 512), (640, 480), (50, 900)):
        assert ours.image_tokens(*size) == theirs.image_tokens(*size), size
        assert ours.prompt_tokens(prompt, [size]) == theirs.prompt_tokens(prompt, [size])


PUBLISHED = {  # MiniCPM-o-2_6's config.json: MiniCPM-V-2_6's Qwen2-7B and SigLIP-400M
    "hidden_size": 3584,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "intermediate_size": 18944,
    "vocab_size": 151700,
    "rope_theta": 1e6,
    "max_position_embeddings": 32768,
    "query_num": 64,
    "image_size": 448,
    "version": 2.6,
    "audio_pool_step": 2,
}
PUBLISHED_VISION = {
    "hidden_size": 1152,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "intermediate_size": 4304,
    "patch_size": 14,
    "image_size": 980,
}
PUBLISHED_AUDIO = {  # Whisper-medium's encoder
    "d_model": 1024,
    "encoder_layers": 24,
    "encoder_attention_heads": 16,
    "encoder_ffn_dim": 4096,
    "num_mel_bins": 80,
}


def test_the_full_size_folder_has_the_published_dimensions_and_no_weights():
    folder = minicpmo.ensure_full_size()
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MiniCPMO"]
    assert {key: config[key] for key in PUBLISHED} == PUBLISHED
    assert {key: config["vision_config"][key] for key in PUBLISHED_VISION} == PUBLISHED_VISION
    assert {key: config["audio_config"][key] for key in PUBLISHED_AUDIO} == PUBLISHED_AUDIO
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    assert (preprocessor["max_slice_nums"], preprocessor["scale_resolution"]) == (9, 448)
    assert (preprocessor["feature_size"], preprocessor["sampling_rate"]) == (80, 16000)
    assert config["kit_dummy_weights"] is True and not list(folder.glob("*.safetensors"))


def test_the_roofline_reads_the_full_size_folder_with_the_audio_encoder_s_weights():
    figures = read_model_figures(str(minicpmo.ensure_full_size()))
    v_figures = read_model_figures(str(tiny.ensure_full_size()))
    assert figures is not None and figures.vision is not None
    assert v_figures is not None and v_figures.vision is not None
    assert (figures.hidden, figures.layers, figures.kv_heads) == (3584, 28, 4)
    assert (figures.head_dim, figures.dtype_bytes) == (128, 2)
    shown = figures.vision.shown
    assert (shown["siglip_layers"], shown["audio_layers"]) == (27, 24)
    # Whisper-medium's encoder (~0.3 B) and its projection to the language model (~16 M)
    audio = shown["audio_params"]
    assert 0.3e9 < audio < 0.34e9
    assert figures.vision.params == v_figures.vision.params + audio
    assert figures.vision.flops_per_view == v_figures.vision.flops_per_view  # no audio runs
    assert 8.0e9 < figures.num_params < 8.7e9  # published: ~8 B without the TTS head


def test_audio_params_count_the_modules_vllm_builds():
    """Against the tiny folder's weights, which vLLM loads to the last one."""
    from safetensors import safe_open

    folder = minicpmo.ensure_tiny()
    with safe_open(folder / "model.safetensors", "pt") as weights:
        counted = sum(
            math.prod(weights.get_slice(name).get_shape())
            for name in weights.keys()
            if name.startswith(("apm.", "audio_projection_layer."))
        )
    assert audio_params(minicpmo.TINY_AUDIO, 128) == counted


@pytest.mark.slow  # imports vLLM and builds its processor (no engine): ~20 s
def test_the_kit_counts_as_vllm_s_own_minicpmo_processor(folder):
    """vLLM's real MiniCPM-O input processing (its processor around the kit's image
    processor, feature extractor and tokenizer) without an engine; and its dummy inputs for
    every modality (the warm-up, and a GPU's profiling run) process."""
    from vllm.config import ModelConfig
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.multimodal.processing.context import TimingContext
    from vllm.multimodal.processing.inputs import ProcessorInputs

    config = ModelConfig(
        model=str(folder), trust_remote_code=True, max_model_len=4096,
        limit_mm_per_prompt={"image": 2},
    )  # fmt: skip
    vllm_processor = MULTIMODAL_REGISTRY.create_processor(config)
    assert type(vllm_processor).__name__ == "MiniCPMOMultiModalProcessor"
    counter = PromptTokenCounter(str(folder), MINICPMO, 4)
    for images in ([(336, 336)], [(1024, 512)], [(640, 480)], [(336, 336), (640, 480)]):
        prompt = MINICPMO.prompt("What is in the image?", len(images))
        items = vllm_processor.info.parse_mm_data({"image": [Image.new("RGB", s) for s in images]})
        inputs = ProcessorInputs(counter.tokenizer.encode(prompt), items)
        result = vllm_processor.apply(inputs, TimingContext(enabled=False))
        assert len(result["prompt_token_ids"]) == counter.prompt_tokens(prompt, images), images
    limits = {k: v for k, v in vllm_processor.info.allowed_mm_limits.items() if v > 0}
    assert set(limits) == {"image", "video", "audio"}
    vllm_processor.get_dummy_mm_inputs(dict.fromkeys(limits, 1))
