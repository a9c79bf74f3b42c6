"""MiniCPM-O 2.6's tokenizer class, written for the kit's checkpoints.

The published checkpoint ships its tokenizer as remote code (``MiniCPMOTokenizerFast``, a
Qwen2 tokenizer), and vLLM's MiniCPM-O processor
(``vllm/transformers_utils/processors/minicpmo.py``) reads the ids of its markers from it:
``im_start_id``/``im_end_id`` and ``slice_start_id``/``slice_end_id`` (an image's views),
``audio_start_id``/``audio_end_id`` and ``spk_start_id``/``spk_end_id`` (audio and speaker
spans), and ``audio_start``/``audio_end`` (the text around an audio's tokens). This class
is the kit's tiny BPE with those names. It is copied verbatim into every MiniCPM-O folder
the kit builds, so it stays self-contained (no ``kit`` imports).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast


def _marker_id(name: str) -> property:
    """The id of the marker token held in attribute ``name``."""
    return property(lambda self: self.convert_tokens_to_ids(getattr(self, name)))


class MiniCPMOTokenizerFast(PreTrainedTokenizerFast):
    """A fast tokenizer with MiniCPM-O's marker tokens by name and id."""

    im_start, im_end = "<image>", "</image>"
    slice_start, slice_end = "<slice>", "</slice>"
    im_id_start, im_id_end = "<image_id>", "</image_id>"
    audio_start, audio_end = "<|audio_start|>", "<|audio_end|>"
    spk_start, spk_end = "<|spk_bos|>", "<|spk_eos|>"
    tts_start, tts_end = "<|tts_bos|>", "<|tts_eos|>"

    im_start_id, im_end_id = _marker_id("im_start"), _marker_id("im_end")
    slice_start_id, slice_end_id = _marker_id("slice_start"), _marker_id("slice_end")
    im_id_start_id, im_id_end_id = _marker_id("im_id_start"), _marker_id("im_id_end")
    audio_start_id, audio_end_id = _marker_id("audio_start"), _marker_id("audio_end")
    spk_start_id, spk_end_id = _marker_id("spk_start"), _marker_id("spk_end")
    tts_start_id, tts_end_id = _marker_id("tts_start"), _marker_id("tts_end")
    bos_id = property(lambda self: self.bos_token_id)
    eos_id = property(lambda self: self.eos_token_id)
    unk_id = property(lambda self: self.unk_token_id)

    @classmethod
    def markers(cls) -> list[str]:
        """Every marker token, to add to a vocabulary as special tokens."""
        return [
            getattr(cls, f"{name}_{end}")
            for name in ("im", "slice", "im_id", "audio", "spk", "tts")
            for end in ("start", "end")
        ]


__all__ = ["MiniCPMOTokenizerFast"]
