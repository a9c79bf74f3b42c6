"""Idefics3 and SmolVLM (``Idefics3ForConditionalGeneration``): a SigLIP encoder over image
tiles and a global view, pixel-shuffled into the text model's embeddings."""
