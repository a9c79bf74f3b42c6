"""MiniCPM-V 2.6's model configuration, written for the kit's checkpoints.

transformers has no MiniCPM-V config class: the published checkpoint ships one as remote
code (``auto_map['AutoConfig']``), and vLLM loads it with ``trust_remote_code``. This module
is copied verbatim into every MiniCPM-V folder the kit builds, so it stays self-contained
(no ``kit`` imports).

What vLLM's ``minicpmv.py`` reads: the Qwen2 language model's fields at the top level
(MiniCPM-V 2.6 is a Qwen2-7B with an image tower), ``version`` (2.6 picks ``MiniCPMV2_6``),
``query_num`` (the resampler's queries: tokens per image view), ``image_size`` (the
side of the largest image it profiles, 9 views tall), ``drop_vision_last_layer``, and
``vision_config`` as a config *object* (SigLIP fields: vLLM builds an
``Idefics2VisionTransformer`` from it).

MiniCPM-O 2.6 (``MiniCPMOConfig``) is the same with an audio side, which vLLM's
``minicpmo.py`` builds whatever the flags say: ``audio_config`` as a Whisper config object
(its encoder), ``audio_pool_step`` and ``audio_chunk_length``. ``tts_config`` and the
``init_*`` flags are the published checkpoint's; vLLM reads neither (it skips ``tts.*``
weights).
"""

from __future__ import annotations

from transformers import PreTrainedConfig, Qwen2Config, SiglipVisionConfig, WhisperConfig


def _config_object(value, config_class, **defaults):
    """A sub-config as the object vLLM reads: from config.json's dict, or ``defaults``."""
    if value is None:
        return config_class(**defaults)
    if isinstance(value, dict):
        return config_class(**{k: v for k, v in value.items() if k != "model_type"})
    return value


class MiniCPMVConfig(Qwen2Config):
    """Qwen2's fields plus the image tower (SigLIP) and the resampler's settings."""

    model_type = "minicpmv"
    sub_configs = {"vision_config": SiglipVisionConfig}

    query_num: int = 64
    image_size: int = 448
    drop_vision_last_layer: bool = False
    batch_vision_input: bool = True
    use_image_id: bool = True
    slice_mode: bool = True
    slice_config: dict | None = None
    vision_batch_size: int = 16
    version: float = 2.6
    vision_config: dict | PreTrainedConfig | None = None

    def __post_init__(self, **kwargs):
        # vLLM builds the tower from the object's attributes: a dict from config.json
        # becomes a SigLIP vision config (SigLIP-400M's dimensions when absent).
        self.vision_config = _config_object(
            self.vision_config,
            SiglipVisionConfig,
            hidden_size=1152,
            intermediate_size=4304,
            num_hidden_layers=27,
            num_attention_heads=16,
            image_size=980,
            patch_size=14,
        )
        super().__post_init__(**kwargs)


class MiniCPMOConfig(MiniCPMVConfig):
    """MiniCPM-V 2.6's fields plus the audio encoder (Whisper's) and its pooling."""

    model_type = "minicpmo"
    sub_configs = {"vision_config": SiglipVisionConfig, "audio_config": WhisperConfig}

    audio_config: dict | PreTrainedConfig | None = None
    tts_config: dict | None = None
    audio_pool_step: int = 2
    audio_chunk_length: float = 1.0
    stream_input: bool = False
    init_vision: bool = True
    init_audio: bool = True
    init_tts: bool = True

    def __post_init__(self, **kwargs):
        # vLLM builds the audio encoder from the object's attributes (Whisper-medium's
        # encoder when absent).
        self.audio_config = _config_object(
            self.audio_config,
            WhisperConfig,
            d_model=1024,
            encoder_layers=24,
            encoder_attention_heads=16,
            encoder_ffn_dim=4096,
            num_mel_bins=80,
        )
        super().__post_init__(**kwargs)
