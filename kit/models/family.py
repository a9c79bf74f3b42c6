"""What the kit must know of a vision-language model family, as one object per family.

The rest of the kit asks a :class:`ModelFamily` instead of knowing a model: how a user
turn with images is written (the offline prompt; a server renders the same from its chat
template), which text in a prompt is an image placeholder, how many tokens an image
becomes (from the family's own processor, checked against vLLM's ``prompt_token_ids``),
what the processor is called with, and what its image tower costs (the roofline).
kit.models.registry maps config.json ``architectures`` to families.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError


@dataclass(frozen=True)
class VisionTower:
    """An image encoder's cost, for the roofline: parameters (projector included) and the
    FLOPs of one encoder pass (a "view": a crop or the global image)."""

    params: int
    flops_per_view: float
    shown: Mapping[str, int] = field(default_factory=dict)  # figures the report lists


def processor_image_tokens(processor: Any, width: int, height: int) -> int:
    """An image's tokens as the family's transformers processor counts them
    (``_get_num_multimodal_tokens``, which transformers keeps for vLLM's Transformers
    backend): the count for families whose processor has it."""
    counted = processor._get_num_multimodal_tokens(image_sizes=[[height, width]])
    return int(counted["num_image_tokens"][0])


@dataclass(frozen=True)
class NamedModel:
    """A model the kit builds itself, asked for by name (``model: smoke``)."""

    name: str
    family: str
    weights: str  # "random": tiny, real forward pass, answers are noise; "dummy": no weights
    ensure: Callable[..., Path]  # the folder, built on first use
    about: str
    # A dummy's config.json is a published checkpoint's: its hub id, and the commit of it that
    # the download notebook fetches by default (a commit public sources cite; "" when none is
    # known: the default branch is fetched and the commit it resolved to recorded)
    mirrors: str = ""
    mirrors_revision: str = ""

    @property
    def kind(self) -> str:
        """ "tiny": a small checkpoint with random weights; "dummy": real dimensions, weights
        made by vLLM (load_format: dummy)."""
        return "tiny" if self.weights == "random" else "dummy"


@dataclass(frozen=True)
class ModelFamily:
    name: str
    architectures: tuple[str, ...]  # config.json ``architectures`` it covers
    vllm_module: str  # the module of vllm.model_executor.models that runs it
    user_turn: str  # one user turn ready for generation, with {images} and {text}
    image_tag: str  # the k-th image's placeholder, with {index} numbered from 1 (if numbered)
    image_tag_pattern: re.Pattern[str]  # finds a placeholder; a group, if any: its number
    image_tokens: Callable[[Any, int, int], int]  # (processor, width, height) -> tokens
    image_views: Callable[[Any, int, int, int], int]  # (processor, w, h, crops) -> passes
    vision_tower: Callable[[Mapping[str, Any]], VisionTower | None]  # from config.json
    crops_argument: str | None = "num_crops"  # the processor's keyword; None: no such setting
    max_crops: int = 16
    crops_note: str = ""  # what the family's crop counts mean, for messages
    # "pieces": vLLM tokenizes the text between placeholders piece by piece (Phi3V's
    # processor); "whole": the prompt at once, each placeholder one token the image replaces
    text_counting: str = "pieces"
    tower_note: str = "the image encoder and projector over each request's views"  # roofline
    image_separator: str = ""
    # (model_path, trust_remote_code, **settings) -> processor, where AutoProcessor is not
    # enough (a processor part that needs a library this machine cannot load)
    load_processor: Callable[..., Any] | None = None
    # the turn without images, where the chat template writes it otherwise (None: user_turn)
    text_only_turn: str | None = None

    def runs_here(self) -> bool:
        """Whether this machine's vLLM can import the family's model code (some modules
        need a torchvision that the CPU build of torch cannot load)."""
        import importlib

        try:
            importlib.import_module(f"vllm.model_executor.models.{self.vllm_module}")
        except Exception:  # ImportError, or torchvision's RuntimeError at import
            return False
        return True

    def prompt(self, text: str, num_images: int = 1) -> str:
        """One user turn asking ``text`` about ``num_images`` images, ready for generation."""
        if num_images == 0 and self.text_only_turn is not None:
            return self.text_only_turn.format(text=text)
        tags = self.image_separator.join(
            self.image_tag.format(index=i + 1) for i in range(num_images)
        )
        return self.user_turn.format(images=tags, text=text)

    def processor_kwargs(self, crops: int) -> dict[str, Any]:
        """What vLLM passes to the processor (``mm_processor_kwargs``) for ``crops``: nothing
        for a family without the setting (its processor would reject the keyword)."""
        return {} if self.crops_argument is None else {self.crops_argument: crops}

    def settings_note(self) -> str | None:
        """What the report says of num_crops when it does not apply to this family."""
        if self.crops_argument is not None:
            return None
        return f"num_crops does not apply to {self.name}: left out of the processor's settings"

    def check_crops(self, crops: int) -> None:
        if self.crops_argument is None:
            return
        if not 1 <= crops <= self.max_crops:
            note = f" ({self.crops_note})" if self.crops_note else ""
            raise ParameterError(
                f"Parameter 'num_crops' must be between 1 and {self.max_crops} for "
                f"{self.name}{note}, got {crops}."
            )

    def split_text(self, prompt: str) -> list[str]:
        """The text between the image placeholders (vLLM tokenizes each piece alone)."""
        return self.image_tag_pattern.split(prompt)[:: self.image_tag_pattern.groups + 1]

    def tag_numbers(self, prompt: str) -> list[int]:
        """The image numbers of the placeholders in ``prompt``, in order (unnumbered ones
        count from 1)."""
        found = list(self.image_tag_pattern.finditer(prompt))
        if not self.image_tag_pattern.groups:
            return list(range(1, len(found) + 1))
        return [int(m.group(1)) for m in found]

    def tag(self, index: int) -> str:
        """The k-th image's placeholder as a user would type it."""
        return self.image_tag.format(index=index).strip()
