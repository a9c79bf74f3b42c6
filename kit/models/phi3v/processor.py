"""Phi-3.5-vision image preprocessing, written for the kit's tiny checkpoint.

The real checkpoint ships its own ``processing_phi3_v.py``, which imports torchvision
(unusable beside the CPU torch build). This module implements the same preprocessing with
PIL, numpy and torch only, and is copied verbatim into the tiny model folder, where vLLM
loads it through ``auto_map`` with ``trust_remote_code=True``. It must therefore stay
self-contained: no ``kit`` imports.

What vLLM's Phi3V code path uses: ``pixel_values`` [n, num_crops + 1, 3, 336, 336] (global
view first, zero-padded crops), ``image_sizes`` (the padded height and width),
``img_tokens`` and ``calc_num_image_tokens_from_image_size``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import transformers
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor
from transformers.processing_utils import ImagesKwargs, ProcessorMixin

CROP = 336  # CLIP ViT-L/14-336 input side
NUM_IMG_TOKENS = 144  # tokens per 336x336 view after the 2x2 merge
NEWLINE_TOKENS = 12  # one separator token per row of a 12-token-wide view
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_IMAGE_TAGS = 1000
IMAGE_TAG = re.compile(r"<\|image_\d+\|>")
LEGACY_TRANSFORMERS = int(transformers.__version__.split(".")[0]) < 5


class Phi3VImagesKwargs(ImagesKwargs, total=False):
    num_crops: int


def hd_scale(width: int, height: int, num_crops: int) -> int:
    """Largest s with s * ceil(s / r) <= num_crops, r = long side / short side."""
    ratio = max(width, height) / min(width, height)
    scale = 1
    while scale * math.ceil(scale / ratio) <= num_crops:
        scale += 1
    return scale - 1


def hd_resized_size(width: int, height: int, num_crops: int) -> tuple[int, int]:
    """(width, height) after the HD resize, before padding to multiples of 336."""
    transposed = width < height
    long_side, short_side = (height, width) if transposed else (width, height)
    ratio = long_side / short_side
    new_long = CROP * hd_scale(width, height, num_crops)
    new_short = int(new_long / ratio)
    return (new_short, new_long) if transposed else (new_long, new_short)


def hd_padded_size(width: int, height: int, num_crops: int) -> tuple[int, int]:
    """(width, height) of the HD canvas: the short side padded up to a multiple of 336."""
    new_w, new_h = hd_resized_size(width, height, num_crops)
    if new_w >= new_h:
        return new_w, math.ceil(new_h / CROP) * CROP
    return math.ceil(new_w / CROP) * CROP, new_h


def num_image_tokens(width: int, height: int, num_crops: int) -> int:
    """Tokens one image becomes: crops + global view, a separator, and row newlines."""
    padded_w, padded_h = hd_padded_size(width, height, num_crops)
    rows, cols = padded_h // CROP, padded_w // CROP
    return (rows * cols + 1) * NUM_IMG_TOKENS + 1 + (rows + 1) * NEWLINE_TOKENS


def _hd_canvas(image: Image.Image, num_crops: int) -> Image.Image:
    """Resize keeping aspect ratio, then pad the short side with white, centred."""
    new_w, new_h = hd_resized_size(image.width, image.height, num_crops)
    resized = image.resize((new_w, new_h), Image.BILINEAR)
    padded_w, padded_h = hd_padded_size(image.width, image.height, num_crops)
    canvas = Image.new("RGB", (padded_w, padded_h), (255, 255, 255))
    canvas.paste(resized, ((padded_w - new_w) // 2, (padded_h - new_h) // 2))
    return canvas


def _normalize(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def preprocess_image(image: Image.Image, num_crops: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """One image -> ([num_crops + 1, 3, 336, 336] views, (padded_h, padded_w))."""
    canvas = _normalize(_hd_canvas(image.convert("RGB"), num_crops))
    _, height, width = canvas.shape
    global_view = torch.nn.functional.interpolate(
        canvas.unsqueeze(0), size=(CROP, CROP), mode="bicubic", align_corners=False
    )
    rows, cols = height // CROP, width // CROP
    crops = (
        canvas.reshape(3, rows, CROP, cols, CROP)
        .permute(1, 3, 0, 2, 4)
        .reshape(rows * cols, 3, CROP, CROP)
    )
    views = torch.zeros(num_crops + 1, 3, CROP, CROP)
    views[0] = global_view[0]
    views[1 : 1 + rows * cols] = crops
    return views, (height, width)


class Phi3VImageProcessor(BaseImageProcessor):
    """HD transform + CLIP normalization, as Phi-3.5-vision's own image processor."""

    model_input_names = ["pixel_values", "image_sizes"]
    valid_kwargs = Phi3VImagesKwargs

    def __init__(self, num_crops: int = 4, num_img_tokens: int = NUM_IMG_TOKENS, **kwargs):
        kwargs.pop("image_mean", None)
        kwargs.pop("image_std", None)
        super().__init__(**kwargs)
        self.num_crops = num_crops
        self.num_img_tokens = num_img_tokens
        self.image_mean = list(CLIP_MEAN)
        self.image_std = list(CLIP_STD)

    def calc_num_image_tokens_from_image_size(self, width: int, height: int) -> int:
        return num_image_tokens(width, height, self.num_crops)

    def preprocess(self, images, num_crops: int | None = None, return_tensors=None, **kwargs):
        if isinstance(images, Image.Image):
            images = [images]
        crops = num_crops or self.num_crops
        views, sizes = zip(*(preprocess_image(image, crops) for image in images), strict=True)
        return BatchFeature(
            {
                "pixel_values": torch.stack(views),
                "image_sizes": torch.tensor(sizes, dtype=torch.long),
                "num_img_tokens": [
                    num_image_tokens(image.width, image.height, crops) for image in images
                ],
            },
            tensor_type=return_tensors,
        )

    def __call__(self, images, **kwargs):
        return self.preprocess(images, **kwargs)


class Phi3VProcessor(ProcessorMixin):
    """Tokenizer + image processor; expands ``<|image_k|>`` tags as the real processor does."""

    if LEGACY_TRANSFORMERS:  # transformers 4 finds sub-processors through these names
        attributes = ["image_processor", "tokenizer"]
        image_processor_class = "AutoImageProcessor"
        tokenizer_class = "AutoTokenizer"

    def __init__(
        self, image_processor=None, tokenizer=None, chat_template=None, num_crops=None, **kwargs
    ):
        super().__init__(image_processor, tokenizer, chat_template=chat_template)
        if num_crops is not None:
            self.image_processor.num_crops = int(num_crops)
        self.img_tokens = [f"<|image_{i + 1}|>" for i in range(MAX_IMAGE_TAGS)]

    @property
    def num_crops(self) -> int:
        return self.image_processor.num_crops

    def calc_num_image_tokens_from_image_size(self, width: int, height: int) -> int:
        return self.image_processor.calc_num_image_tokens_from_image_size(width, height)

    def __call__(self, text=None, images=None, num_crops=None, return_tensors=None, **kwargs):
        if not images:
            # As the published processor: without images the text is only tokenized, tags
            # included as plain text. vLLM calls it so (e.g. vLLM 0.24 with its multimodal
            # processor cache on: text "<|image_1|>" alone).
            texts = [text] if isinstance(text, str) or text is None else list(text)
            encoded = [self.tokenizer(t or "").input_ids for t in texts]
            data = {"input_ids": encoded, "attention_mask": [[1] * len(ids) for ids in encoded]}
            return BatchFeature(data, tensor_type=return_tensors)
        image_inputs = self.image_processor(images, num_crops=num_crops)
        token_ids = self._tokenize_with_images(text or "", image_inputs.get("num_img_tokens", []))
        data = {
            "input_ids": [token_ids],
            "attention_mask": [[1] * len(token_ids)],
        }
        data["pixel_values"] = image_inputs["pixel_values"]
        data["image_sizes"] = image_inputs["image_sizes"]
        return BatchFeature(data, tensor_type=return_tensors)

    def _tokenize_with_images(self, text: str, image_token_counts: list[int]) -> list[int]:
        """Each text chunk tokenized alone; each tag becomes -k repeated (k = image number)."""
        chunks = [self.tokenizer(chunk).input_ids for chunk in IMAGE_TAG.split(text)]
        tags = [int(tag[len("<|image_") : -2]) for tag in IMAGE_TAG.findall(text)]
        if sorted(set(tags)) != list(range(1, len(tags) + 1)):
            raise ValueError(f"image tags must be numbered 1..{len(tags)} without gaps: {tags}")
        if len(tags) != len(image_token_counts):
            raise ValueError(
                f"{len(tags)} image tags in the text but {len(image_token_counts)} images"
            )
        ids: list[int] = list(chunks[0])
        for tag, chunk in zip(tags, chunks[1:], strict=True):
            ids += [-tag] * image_token_counts[tag - 1] + list(chunk)
        return ids
