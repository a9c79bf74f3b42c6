"""MMMU questions as numerics prompts: the first questions of the validation split in the
official order that have an image, each with its first image and the official prompt text,
as the MMMU notebook sends them. Their ids ("mmmu-<question id>") match across runs made
with the same dataset."""

from __future__ import annotations

from kit.mmmu.dataset import load_split, resolve_dataset
from kit.mmmu.questions import official_order, official_prompt, select_images
from kit.models.family import ModelFamily
from kit.numerics.prompts import NumericsRequest


def mmmu_requests(dataset: str, count: int, family: ModelFamily) -> list[NumericsRequest]:
    root = resolve_dataset(dataset, "validation")
    # One question per subject is enough to pick the first `count` in official order.
    questions = official_order(load_split(root, "validation", limit=max(1, count)))
    out: list[NumericsRequest] = []
    for question in questions:
        if len(out) == count:
            break
        if not select_images(question, "first"):
            continue
        text = official_prompt(question)
        images = question.load_images("first")
        out.append(
            NumericsRequest(f"mmmu-{question.id}", "mmmu", text, family.prompt(text, 1), images)
        )
    return out
