"""Random weights for the tiny MiniCPM-V 2.6 checkpoint, named as the published checkpoint
names them (what vLLM's ``MiniCPMV2_6`` loader maps): the Qwen2 language model under
``llm.``, the SigLIP tower under ``vpm.`` (Idefics2-style names) and the resampler under
``resampler.``. transformers has no MiniCPM-V model class to save them, so they are written
here with torch, seeded."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TinyDims:
    """The tiny checkpoint's dimensions (config.json is written from the same)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    vision_hidden: int
    vision_layers: int
    vision_intermediate: int
    vision_image_size: int  # the position-embedding grid: (image_size / patch)²
    patch: int
    query_num: int


class RandomTensors:
    """Named float32 tensors drawn from one seeded generator: normal(0, 0.02) matrices,
    unit norms, zero biases."""

    def __init__(self, seed: int) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(seed)
        self.tensors: dict[str, Any] = {}

    def normal(self, *shape: int, std: float = 0.02) -> Any:
        import torch

        return torch.randn(*shape, generator=self.generator) * std

    def norm(self, name: str, size: int, bias: bool = True) -> None:
        import torch

        self.tensors[f"{name}.weight"] = torch.ones(size)
        if bias:
            self.tensors[f"{name}.bias"] = torch.zeros(size)

    def linear(self, name: str, out: int, inp: int, bias: bool = True) -> None:
        import torch

        self.tensors[f"{name}.weight"] = self.normal(out, inp)
        if bias:
            self.tensors[f"{name}.bias"] = torch.zeros(out)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file(self.tensors, str(path), metadata={"format": "pt"})


def write_weights(
    path: Path,
    dims: TinyDims,
    seed: int,
    silenced: Iterable[int],
    extra: Callable[[RandomTensors], None] | None = None,
) -> None:
    """float32 tensors, normal(0, 0.02) with unit norms; ``silenced`` token ids (specials,
    ids past the tokenizer) get a zero lm_head row so random text neither stops at once nor
    decodes to nothing, as the Phi3V tiny model does. ``extra`` adds a variant's own
    tensors (MiniCPM-O's audio encoder), drawn after these."""
    import torch

    out = RandomTensors(seed)
    tensors, normal, norm, linear = out.tensors, out.normal, out.norm, out.linear

    h, head_dim = dims.hidden, dims.hidden // dims.heads
    tensors["llm.model.embed_tokens.weight"] = normal(dims.vocab, h)
    for i in range(dims.layers):
        p = f"llm.model.layers.{i}."
        linear(p + "self_attn.q_proj", dims.heads * head_dim, h)
        linear(p + "self_attn.k_proj", dims.kv_heads * head_dim, h)
        linear(p + "self_attn.v_proj", dims.kv_heads * head_dim, h)
        linear(p + "self_attn.o_proj", h, dims.heads * head_dim, bias=False)
        linear(p + "mlp.gate_proj", dims.intermediate, h, bias=False)
        linear(p + "mlp.up_proj", dims.intermediate, h, bias=False)
        linear(p + "mlp.down_proj", h, dims.intermediate, bias=False)
        norm(p + "input_layernorm", h, bias=False)
        norm(p + "post_attention_layernorm", h, bias=False)
    norm("llm.model.norm", h, bias=False)
    lm_head = normal(dims.vocab, h, std=1.0)
    lm_head[sorted(set(silenced))] = 0
    tensors["llm.lm_head.weight"] = lm_head

    v, vh = "vpm.", dims.vision_hidden
    tensors[v + "embeddings.patch_embedding.weight"] = normal(vh, 3, dims.patch, dims.patch)
    tensors[v + "embeddings.patch_embedding.bias"] = torch.zeros(vh)
    positions = (dims.vision_image_size // dims.patch) ** 2
    tensors[v + "embeddings.position_embedding.weight"] = normal(positions, vh)
    for i in range(dims.vision_layers):
        p = f"{v}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(p + f"self_attn.{proj}", vh, vh)
        norm(p + "layer_norm1", vh)
        norm(p + "layer_norm2", vh)
        linear(p + "mlp.fc1", dims.vision_intermediate, vh)
        linear(p + "mlp.fc2", vh, dims.vision_intermediate)
    norm(v + "post_layernorm", vh)

    r = "resampler."
    tensors[r + "query"] = normal(dims.query_num, h)
    linear(r + "kv_proj", h, vh, bias=False)
    tensors[r + "attn.in_proj_weight"] = normal(3 * h, h)
    tensors[r + "attn.in_proj_bias"] = torch.zeros(3 * h)
    linear(r + "attn.out_proj", h, h)
    for name in ("ln_q", "ln_kv", "ln_post"):
        norm(r + name, h)
    tensors[r + "proj"] = normal(h, h, std=h**-0.5)
    if extra is not None:
        extra(out)
    out.save(path)
