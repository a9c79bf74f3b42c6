"""A model's figures for the roofline, from its config.json alone (weights never read):
decoder parameters, KV-cache bytes per token, and the image tower its family describes.

docs/methodology.md ("Roofline") states the formulas; kit.perf.roofline turns these
figures and a device's datasheet peaks into bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kit.models.family import VisionTower

DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}


@dataclass(frozen=True)
class ModelFigures:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    dtype_bytes: int
    vision: VisionTower | None = None  # None: no image tower

    @property
    def layer_params(self) -> int:
        """One decoder layer: fused qkv, o, fused gate_up, down, two norms."""
        h = self.hidden
        qkv = h * (self.heads + 2 * self.kv_heads) * self.head_dim
        return qkv + self.heads * self.head_dim * h + 3 * h * self.intermediate + 2 * h

    @property
    def decoder_params(self) -> int:
        return self.layers * self.layer_params + self.hidden  # + the final norm

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def vision_params(self) -> int:
        return self.vision.params if self.vision else 0

    @property
    def num_params(self) -> int:
        lm = self.decoder_params + self.embedding_params + self.lm_head_params
        return lm + self.vision_params

    @property
    def weight_bytes(self) -> int:
        return self.num_params * self.dtype_bytes

    @property
    def decode_weight_bytes(self) -> int:
        """Weights every decode step reads: decoder layers, final norm, lm_head."""
        return (self.decoder_params + self.lm_head_params) * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    def text_prefill_flops(self, tokens: int) -> float:
        """One request's language-model prefill: matmuls, causal attention, one lm_head row."""
        matmul = 2.0 * (self.decoder_params - (2 * self.layers + 1) * self.hidden) * tokens
        attention = 2.0 * self.layers * tokens * tokens * self.heads * self.head_dim
        return matmul + attention + 2.0 * self.lm_head_params

    def image_flops(self, views: int) -> float:
        """The image tower over ``views`` encoder passes (crops and global views)."""
        if self.vision is None or views <= 0:
            return 0.0
        return views * self.vision.flops_per_view

    def to_dict(self) -> dict[str, Any]:
        lm = {
            name: getattr(self, name)
            for name in (
                "hidden",
                "layers",
                "heads",
                "kv_heads",
                "head_dim",
                "intermediate",
                "vocab",
                "dtype_bytes",
            )
        }
        return {
            **lm,
            **(dict(self.vision.shown) if self.vision else {}),
            "num_params": self.num_params,
            "weight_bytes": self.weight_bytes,
            "decode_weight_bytes": self.decode_weight_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
        }


def dtype_bytes(dtype: str | None, config: Mapping[str, Any]) -> int:
    """Bytes per weight: the run's dtype, else the config's torch_dtype, else bf16."""
    for candidate in (dtype, config.get("torch_dtype"), config.get("dtype")):
        name = str(candidate or "").replace("torch.", "").lower()
        if name in DTYPE_BYTES:
            return DTYPE_BYTES[name]
    return 2


def model_figures(
    config: Mapping[str, Any], dtype: str | None = None, vision: VisionTower | None = None
) -> ModelFigures:
    """Figures of a decoder config.json with the family's image tower (``vision``); a
    config that nests its decoder (``text_config``, as Idefics3's) is read there."""
    outer = config
    config = config.get("text_config") or config
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    return ModelFigures(
        hidden=hidden,
        layers=int(config["num_hidden_layers"]),
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or hidden // heads),
        intermediate=int(config["intermediate_size"]),
        vocab=int(config["vocab_size"]),
        dtype_bytes=dtype_bytes(dtype, {**config, **outer}),
        vision=vision,
    )
