"""MiniCPM-V 2.6 (``MiniCPMV``): a SigLIP tower over an image's source view and slices,
a resampler to a fixed number of tokens per view, and a Qwen2 language model."""
