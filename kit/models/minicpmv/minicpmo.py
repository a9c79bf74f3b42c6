"""MiniCPM-O 2.6 (``MiniCPMO``): MiniCPM-V 2.6 with an audio side, run for images only.

vLLM's ``minicpmo.py`` is MiniCPM-V 2.6's model and multimodal processor (its
``MiniCPMO2_6`` subclasses ``MiniCPMV2_6``) plus a Whisper-style audio encoder (``apm``) and
an audio projection. Images go the same way: the same slicing, the same
``(<image>./</image>)`` placeholder replaced by the image processor's placeholder text,
the same Qwen2 ChatML turn. So the family is MiniCPM-V's with another architecture and
vLLM module, and the checkpoints reuse MiniCPM-V's builders with what vLLM's MiniCPM-O
needs on top:

- config.json: ``audio_config`` (a Whisper config; vLLM builds its encoder whatever
  ``init_audio`` says, so it is always there), ``audio_pool_step`` and
  ``audio_chunk_length``; ``tts_config`` and the ``init_*`` flags are the published
  checkpoint's, which vLLM does not read (it drops ``tts.*`` weights, so none are written);
- the weights: vLLM loads ``apm.*`` and ``audio_projection_layer.*`` and refuses a
  checkpoint without them, so the tiny model has a one-layer, 64-wide audio encoder;
- the processor (``MiniCPMOProcessor``) holds a ``WhisperFeatureExtractor`` from the same
  preprocessor_config.json, which vLLM's MiniCPM-O processor wraps with the image processor;
- the tokenizer (``MiniCPMOTokenizerFast``, remote code as in the published checkpoint)
  names the marker ids vLLM's processor reads (``im_start_id``, ``audio_start_id``, ...).

No audio is sent: the kit is a vision-language kit. The roofline counts the audio
encoder's weights (vLLM loads them) but no audio FLOPs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kit.core.files import cache_root
from kit.models.builds import ensure_built, write_json
from kit.models.encoders import vit_layer_params
from kit.models.family import NamedModel, VisionTower
from kit.models.minicpmv import tiny
from kit.models.minicpmv.family import MINICPMV, minicpmv_tower
from kit.models.minicpmv.minicpmo_tokenizer import MiniCPMOTokenizerFast
from kit.models.minicpmv.weights import RandomTensors, write_weights

BUILDER_VERSION = 1

SOURCES = {  # the kit's modules, by their names in the folders (auto_map)
    "processing_minicpmo.py": tiny.HERE / "processor.py",
    "configuration_minicpm.py": tiny.HERE / "configuration.py",
    "tokenization_minicpmo_fast.py": tiny.HERE / "minicpmo_tokenizer.py",
}
AUTO_MAP = {
    "AutoProcessor": "processing_minicpmo.MiniCPMOProcessor",
    "AutoImageProcessor": "processing_minicpmo.MiniCPMVImageProcessor",
}
TOKENIZER_AUTO_MAP = {"AutoTokenizer": [None, "tokenization_minicpmo_fast.MiniCPMOTokenizerFast"]}
SPECIALS = tiny.SPECIALS + [
    token for token in MiniCPMOTokenizerFast.markers() if token not in tiny.SPECIALS
]

# Whisper's log-mel front end at 16 kHz (WhisperFeatureExtractor's settings), in
# preprocessor_config.json beside the image processor's, as the published checkpoint has.
AUDIO_FEATURES: dict[str, Any] = {
    "feature_extractor_type": "WhisperFeatureExtractor",
    "feature_size": 80,
    "sampling_rate": 16000,
    "hop_length": 160,
    "chunk_length": 30,
    "n_fft": 400,
    "n_samples": 480000,
    "nb_max_frames": 3000,
    "padding_side": "right",
    "padding_value": 0.0,
    "return_attention_mask": False,
}
# The audio encoders: Whisper-medium's (published) and a one-layer one of 64 wide (tiny).
# vLLM's projection takes encoder_ffn_dim / 4 features, so the FFN is 4 x d_model.
FULL_SIZE_AUDIO: dict[str, Any] = {
    "d_model": 1024,
    "encoder_layers": 24,
    "encoder_attention_heads": 16,
    "encoder_ffn_dim": 4096,
    "decoder_layers": 24,
    "decoder_attention_heads": 16,
    "decoder_ffn_dim": 4096,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
}
TINY_AUDIO: dict[str, Any] = {
    **FULL_SIZE_AUDIO,
    "d_model": 64,
    "encoder_layers": 1,
    "encoder_attention_heads": 1,
    "encoder_ffn_dim": 256,
    "decoder_layers": 1,
    "decoder_attention_heads": 1,
    "decoder_ffn_dim": 256,
}
# MiniCPM-o-2_6's config.json: MiniCPM-V-2_6's language model and tower, a larger vocab.
FULL_SIZE_LLM: dict[str, Any] = {**tiny.FULL_SIZE_LLM, "vocab_size": 151700}
AUDIO_POOL_STEP = 2


def audio_params(audio: Mapping[str, Any], hidden: int) -> int:
    """The Whisper encoder vLLM builds (two convolutions, positions, layers whose key
    projection has no bias, a final norm) and the projection to the language model."""
    d, ffn = int(audio["d_model"]), int(audio["encoder_ffn_dim"])
    convolutions = int(audio["num_mel_bins"]) * d * 3 + d + d * d * 3 + d
    positions = int(audio.get("max_source_positions", 1500)) * d
    layers = int(audio["encoder_layers"]) * (vit_layer_params(d, ffn) - d)
    projection = ffn // 4 * hidden + hidden + hidden * hidden + hidden
    return convolutions + positions + layers + 2 * d + projection


def minicpmo_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """MiniCPM-V's SigLIP tower and resampler per view; the parameters also count the
    audio encoder that vLLM loads (no audio runs, so it adds no FLOPs)."""
    vision = minicpmv_tower(config)
    audio = config.get("audio_config")
    if vision is None or not audio:
        return vision
    extra = audio_params(audio, int(config["hidden_size"]))
    shown = {**vision.shown, "audio_layers": int(audio["encoder_layers"]), "audio_params": extra}
    return dataclasses.replace(vision, params=vision.params + extra, shown=shown)


MINICPMO = dataclasses.replace(
    MINICPMV,
    name="minicpmo",
    architectures=("MiniCPMO",),
    vllm_module="minicpmo",
    vision_tower=minicpmo_tower,
    tower_note="SigLIP layers and resampler over each image's source view and slices (the "
    "audio encoder's weights are counted, no audio is sent)",
)


def tiny_dir(seed: int = tiny.DEFAULT_SEED) -> Path:
    return cache_root() / f"smoke-minicpmo-v{BUILDER_VERSION}-seed{seed}"


def full_size_dir() -> Path:
    return cache_root() / f"minicpmo26-dummy-v{BUILDER_VERSION}"


def identity(seed: int) -> dict[str, Any]:
    return {"builder_version": BUILDER_VERSION, "seed": seed, "family": "minicpmo"}


def ensure_tiny(seed: int = tiny.DEFAULT_SEED) -> Path:
    return ensure_built(
        tiny_dir(seed), lambda dest: build_tiny(dest, seed), identity(seed), SOURCES
    )


def ensure_full_size() -> Path:
    """The full-size, weightless MiniCPM-O 2.6 folder (``model: minicpmo26-dummy``)."""
    return ensure_built(full_size_dir(), build_full_size, identity(tiny.DEFAULT_SEED), SOURCES)


def build_tiny(dest: Path, seed: int = tiny.DEFAULT_SEED) -> None:
    """MiniCPM-V's tiny checkpoint (the same language model, tower and image settings)
    with the audio side: its config, a tiny audio encoder and projection, the feature
    extractor's settings and the MiniCPM-O tokenizer."""
    ids, vocab = _write_text_side(dest, seed)
    _write_processor_configs(dest, tiny.QUERY_NUM, tiny.SCALE_RESOLUTION, tiny.MAX_SLICES)
    dims = tiny.tiny_dims(vocab)
    config = _omni_config(tiny.tiny_config(ids, dims), TINY_AUDIO)
    config.update(init_tts=False, kit_smoke_model={"builder_version": BUILDER_VERSION})
    write_json(dest / "config.json", config)
    write_weights(
        dest / "model.safetensors",
        dims,
        seed,
        silenced=ids.values(),
        extra=audio_tensors(TINY_AUDIO, dims.hidden),
    )


def build_full_size(dest: Path) -> None:
    """MiniCPM-o-2_6's dimensions (Qwen2-7B, SigLIP-400M, Whisper-medium's encoder), the
    kit's tokenizer and remote code, and no weights: vLLM makes random ones
    (``load_format: dummy``). Speed, memory and the roofline."""
    ids, _ = _write_text_side(dest, tiny.DEFAULT_SEED)
    _write_processor_configs(dest, *tiny.full_size_images())
    config = _omni_config(tiny.full_size_config(ids, FULL_SIZE_LLM), FULL_SIZE_AUDIO)
    config["tts_config"] = {"model_type": "conditional_chattts", "llm_dim": config["hidden_size"]}
    config["kit_full_size_model"] = {"builder_version": BUILDER_VERSION}
    write_json(dest / "config.json", config)


def _omni_config(config: dict[str, Any], audio: Mapping[str, Any]) -> dict[str, Any]:
    """A MiniCPM-V 2.6 config.json made MiniCPM-O 2.6's."""
    config.update(
        architectures=["MiniCPMO"],
        model_type="minicpmo",
        auto_map={"AutoConfig": "configuration_minicpm.MiniCPMOConfig"},
        audio_config={"model_type": "whisper", **audio},
        audio_pool_step=AUDIO_POOL_STEP,
        audio_chunk_length=1.0,
        stream_input=False,
        init_vision=True,
        init_audio=True,
        init_tts=True,
    )
    return config


def audio_tensors(audio: Mapping[str, Any], hidden: int) -> Callable[[RandomTensors], None]:
    """The audio encoder's and projection's tensors, named as vLLM's ``MiniCPMO`` loads
    them (``apm.``: transformers' Whisper encoder names)."""

    def add(out: RandomTensors) -> None:
        d, ffn, mels = int(audio["d_model"]), int(audio["encoder_ffn_dim"]), audio["num_mel_bins"]
        out.tensors["apm.conv1.weight"] = out.normal(d, mels, 3)
        out.tensors["apm.conv2.weight"] = out.normal(d, d, 3)
        out.tensors["apm.conv1.bias"] = out.normal(d, std=0.0)
        out.tensors["apm.conv2.bias"] = out.normal(d, std=0.0)
        out.tensors["apm.embed_positions.weight"] = out.normal(audio["max_source_positions"], d)
        for i in range(int(audio["encoder_layers"])):
            p = f"apm.layers.{i}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                out.linear(p + f"self_attn.{proj}", d, d, bias=proj != "k_proj")
            out.norm(p + "self_attn_layer_norm", d)
            out.norm(p + "final_layer_norm", d)
            out.linear(p + "fc1", ffn, d)
            out.linear(p + "fc2", d, ffn)
        out.norm("apm.layer_norm", d)
        out.linear("audio_projection_layer.linear1", hidden, ffn // 4)
        out.linear("audio_projection_layer.linear2", hidden, hidden)

    return add


def _write_text_side(dest: Path, seed: int) -> tuple[dict[str, int], int]:
    """MiniCPM-V's tokenizer files with MiniCPM-O's markers, saved as the kit's
    ``MiniCPMOTokenizerFast`` (remote code, named by auto_map)."""
    ids, vocab = tiny.write_text_side(dest, seed, SPECIALS, SOURCES, MiniCPMOTokenizerFast)
    settings_file = dest / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text())
    settings.update(tokenizer_class="MiniCPMOTokenizerFast", auto_map=TOKENIZER_AUTO_MAP)
    write_json(settings_file, settings)
    return ids, vocab


def _write_processor_configs(
    dest: Path, query_num: int, scale_resolution: int, max_slice_nums: int
) -> None:
    tiny.write_processor_configs(
        dest,
        query_num,
        scale_resolution,
        max_slice_nums,
        auto_map=AUTO_MAP,
        processor_class="MiniCPMOProcessor",
        extra=AUDIO_FEATURES,
    )


SMOKE_MINICPMO = NamedModel(
    name="smoke-minicpmo",
    family="minicpmo",
    weights="random",
    ensure=ensure_tiny,
    about="a tiny random-weight MiniCPM-O 2.6 checkpoint (MiniCPM-V's tiny one with a "
    "one-layer audio encoder): vLLM's real MiniCPM-O image path on CPU; answers and timings "
    "are noise",
)
MINICPMO26_DUMMY = NamedModel(
    name="minicpmo26-dummy",
    family="minicpmo",
    weights="dummy",
    ensure=ensure_full_size,
    about="MiniCPM-O 2.6's real dimensions (Qwen2-7B, SigLIP-400M, Whisper-medium's encoder) "
    "with random weights made by vLLM (load_format: dummy): speed, memory and the roofline",
    mirrors="openbmb/MiniCPM-o-2_6",  # no commit of it is known to the kit: the branch
)
