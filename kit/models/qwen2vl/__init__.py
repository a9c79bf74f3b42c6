"""Qwen2-VL and Qwen2.5-VL: a ViT at native resolution whose 14 px patches are merged 2x2
into the language model's tokens (dynamic resolution between min and max pixels)."""
