"""The model-family seam: every fact that depends on which vision-language model runs.

A family (kit.models.family) says how a chat prompt is written, how images are tagged and
counted in tokens, what its processor is called with, and what its image tower costs;
kit.models.registry finds the family of a checkpoint from config.json ``architectures``
(the shape of vLLM's own model registry) and resolves the kit's named models (``smoke``,
``phi35v-dummy``). demo, perf, MMMU, the roofline, server mode and reproduce call only
this seam. Each family has its own package here (phi3v/, idefics3/), named only by the
registry.
"""
