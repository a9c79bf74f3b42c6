"""Chat prompt formats of vision-language model families, kept as data.

Adding a family means adding a :class:`ModelFamily` entry: which architectures it covers,
how a user turn is wrapped, and how the k-th image is tagged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelFamily:
    name: str
    architectures: tuple[str, ...]
    user_turn: str  # with {images} and {text}
    image_tag: str  # with {index}, numbered from 1
    image_separator: str = ""

    def prompt(self, text: str, num_images: int = 1) -> str:
        """One user turn asking ``text`` about ``num_images`` images, ready for generation."""
        tags = self.image_separator.join(
            self.image_tag.format(index=i + 1) for i in range(num_images)
        )
        return self.user_turn.format(images=tags, text=text)


PHI3V = ModelFamily(
    name="phi3v",
    architectures=("Phi3VForCausalLM",),
    user_turn="<|user|>\n{images}{text}<|end|>\n<|assistant|>\n",
    image_tag="<|image_{index}|>\n",
)

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (PHI3V,)}


def family_for_architecture(architecture: str) -> ModelFamily:
    for family in FAMILIES.values():
        if architecture in family.architectures:
            return family
    known = ", ".join(a for f in FAMILIES.values() for a in f.architectures)
    raise ValueError(
        f"No prompt format is known for architecture {architecture!r} (known: {known}). "
        "Add a ModelFamily entry to kit/prompts.py."
    )


def family_for_model(model_dir: str | Path) -> ModelFamily:
    """The family named by a local checkpoint's config.json ``architectures``."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    architectures = config.get("architectures") or []
    if not architectures:
        raise ValueError(f"{model_dir}/config.json names no architectures")
    return family_for_architecture(architectures[0])
