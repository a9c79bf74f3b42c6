"""Reproducibility kit for vision-language model inference on vLLM.

The package is layered (docs/architecture.md): kit.core at the bottom, then kit.models and
kit.records, kit.engines and kit.report, kit.runs, the notebooks' capabilities (kit.demo,
kit.explore, kit.perf, kit.mmmu, kit.download, kit.compare), kit.reproduce, and kit.cli.
"""

__version__ = "0.1.0"
