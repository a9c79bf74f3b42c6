"""The cost of a ViT image encoder (CLIP, SigLIP) for the roofline, shared by the families
that use one: parameters and FLOPs of its patch embedding and pre-norm transformer layers.

A layer is attention (q, k, v and out projections with biases), a two-matrix MLP with
biases, and two layer norms; its FLOPs over ``tokens`` are 2 x its matrix parameters per
token plus the attention scores and their weighted sum (4 x tokens^2 x hidden).
"""

from __future__ import annotations


def vit_layer_params(hidden: int, inner: int) -> int:
    attention = 4 * (hidden * hidden + hidden)
    mlp = 2 * hidden * inner + inner + hidden
    return attention + mlp + 4 * hidden


def vit_flops(hidden: int, inner: int, layers: int, patch: int, patches: int, tokens: int) -> float:
    """One encoder pass: the patch embedding over ``patches`` and ``layers`` layers over
    ``tokens`` (the patches, and a class token where the encoder has one)."""
    per_token = vit_layer_params(hidden, inner) - 4 * hidden  # the norms do no matmul
    embedding = 2.0 * 3 * patch * patch * hidden * patches
    return embedding + layers * (2.0 * per_token * tokens + 4.0 * tokens * tokens * hidden)
