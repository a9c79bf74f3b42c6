"""LLaVA-1.5 and LLaVA-NeXT: a CLIP ViT-L/14-336 and a two-layer projector; NeXT adds
"anyres" tiles of the image at the best of its grid resolutions."""
