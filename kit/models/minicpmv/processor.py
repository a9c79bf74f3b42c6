"""MiniCPM-V 2.6 image preprocessing, written for the kit's checkpoints.

The published checkpoint ships its image processor as remote code, and vLLM loads it from
the folder's ``auto_map['AutoImageProcessor']`` (``MiniCPMVProcessingInfo``), wrapping it
in vLLM's own ``MiniCPMVProcessor`` with the checkpoint's tokenizer. This module implements
the published slicing (LLaVA-UHD) with PIL, numpy and torch only and is copied verbatim
into every MiniCPM-V folder the kit builds, so it stays self-contained (no ``kit`` imports).

An image becomes a downscaled source view plus, when it is larger than
``scale_resolution``², a grid of slices (at most ``max_slice_nums``) whose shape follows
the image's aspect ratio. Each view is ``image_feature_size`` tokens after the resampler.
What vLLM uses: ``image_feature_size``, ``max_slice_nums``, ``get_sliced_grid``,
``get_slice_image_placeholder`` (the text that replaces ``(<image>./</image>)``: an
``<image_id>k</image_id>`` marker, the source view in ``<image>...</image>``, the slices in
``<slice>...</slice>`` with a newline between grid rows, each view ``<unk>`` x
``image_feature_size``), ``im_id_start``/``im_id_end``, and from ``__call__``:
``pixel_values`` (per prompt, a list of [3, patch, patches * patch] tensors: each view's
patches side by side in raster order), ``image_sizes`` ((width, height) per image) and
``tgt_sizes`` (per prompt, [views, 2]: each view's patch grid as (rows, columns)).
MiniCPM-O 2.6 slices and counts images the same; its processor also holds an audio
feature extractor (``MiniCPMOProcessor``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import transformers
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor
from transformers.processing_utils import ProcessorMixin

IMAGE_PATTERN = "(<image>./</image>)"  # a prompt's placeholder for one image
LEGACY_TRANSFORMERS = int(transformers.__version__.split(".")[0]) < 5


def _to_multiple(length: float, unit: int) -> int:
    """``length`` rounded to the nearest multiple of ``unit``, at least one ``unit``."""
    return max(round(length / unit) * unit, unit)


def view_size(
    width: float, height: float, scale_resolution: int, patch_size: int, upscale: bool = False
) -> tuple[int, int]:
    """A view's (width, height): rescaled to an area of ``scale_resolution``² at the same
    aspect ratio when larger (or always, with ``upscale``), sides multiples of the patch."""
    if upscale or width * height > scale_resolution * scale_resolution:
        ratio = width / height
        height = int(scale_resolution / math.sqrt(ratio))
        width = int(height * ratio)
    return _to_multiple(width, patch_size), _to_multiple(height, patch_size)


def sliced_grid(
    width: int, height: int, max_slice_nums: int, scale_resolution: int
) -> tuple[int, int] | None:
    """(columns, rows) of the slices, or None when the image stays one view: about one
    slice per ``scale_resolution``² of area (at most ``max_slice_nums``), the grid among
    those counts and the one next to them whose aspect ratio is closest to the image's."""
    wanted = min(math.ceil(width * height / (scale_resolution * scale_resolution)), max_slice_nums)
    if wanted <= 1:
        return None
    log_ratio = math.log(width / height)
    best, best_error = None, math.inf
    for count in (wanted - 1, wanted, wanted + 1):
        if count == 1 or count > max_slice_nums:
            continue
        for columns in range(1, count + 1):
            if count % columns:
                continue
            error = abs(log_ratio - math.log(columns / (count // columns)))
            if error < best_error:  # the first of equals wins
                best, best_error = (columns, count // columns), error
    return best


def refined_size(
    width: int, height: int, grid: tuple[int, int], scale_resolution: int, patch_size: int
) -> tuple[int, int]:
    """The (width, height) the image is resized to before cutting it into ``grid``: each
    slice a view of about ``scale_resolution``², sides multiples of the patch."""
    columns, rows = grid
    cell_w, cell_h = view_size(
        _to_multiple(width, columns) / columns,
        _to_multiple(height, rows) / rows,
        scale_resolution,
        patch_size,
        upscale=True,
    )
    return cell_w * columns, cell_h * rows


def patches_side_by_side(view: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[3, H, W] -> [3, patch, (H/patch * W/patch) * patch]: the patches in raster order,
    so a patch-sized convolution over the strip gives the view's patch sequence."""
    channels, height, width = view.shape
    rows, columns = height // patch_size, width // patch_size
    grid = view.reshape(channels, rows, patch_size, columns, patch_size)
    return grid.permute(0, 2, 1, 3, 4).reshape(channels, patch_size, -1)


class MiniCPMVImageProcessor(BaseImageProcessor):
    """The source view and the slices of each image, normalized and laid out per patch."""

    model_input_names = ["pixel_values", "image_sizes", "tgt_sizes"]

    def __init__(
        self,
        max_slice_nums: int = 9,
        scale_resolution: int = 448,
        patch_size: int = 14,
        image_feature_size: int = 64,
        use_image_id: bool = True,
        im_start: str = "<image>",
        im_end: str = "</image>",
        slice_start: str = "<slice>",
        slice_end: str = "</slice>",
        unk: str = "<unk>",
        im_id_start: str = "<image_id>",
        im_id_end: str = "</image_id>",
        norm_mean=(0.5, 0.5, 0.5),
        norm_std=(0.5, 0.5, 0.5),
        version: float = 2.6,
        **kwargs,
    ):
        for unused in ("slice_mode", "image_mean", "image_std"):
            kwargs.pop(unused, None)
        super().__init__(**kwargs)
        self.max_slice_nums = int(max_slice_nums)
        self.scale_resolution = int(scale_resolution)
        self.patch_size = int(patch_size)
        self.image_feature_size = int(image_feature_size)
        self.use_image_id = bool(use_image_id)
        self.im_start_token, self.im_end_token = im_start, im_end
        self.slice_start_token, self.slice_end_token = slice_start, slice_end
        self.unk_token = unk
        self.im_id_start, self.im_id_end = im_id_start, im_id_end
        self.norm_mean, self.norm_std = list(norm_mean), list(norm_std)
        self.version = version

    def get_sliced_grid(self, image_size, max_slice_nums=None, nerver_split=False):
        """(columns, rows) of ``image_size`` = (width, height)'s slices, or None."""
        if nerver_split:  # the published keyword, spelled so
            return None
        width, height = (int(side) for side in image_size)
        slices = self.max_slice_nums if max_slice_nums is None else int(max_slice_nums)
        return sliced_grid(width, height, slices, self.scale_resolution)

    def get_slice_image_placeholder(
        self, image_size, image_idx=0, max_slice_nums=None, use_image_id=None
    ) -> str:
        """The text an image's placeholder becomes (see the module's docstring)."""
        view = self.unk_token * self.image_feature_size
        text = f"{self.im_start_token}{view}{self.im_end_token}"
        if self.use_image_id if use_image_id is None else use_image_id:
            text = f"{self.im_id_start}{image_idx}{self.im_id_end}{text}"
        grid = self.get_sliced_grid(image_size, max_slice_nums)
        if grid is not None:
            columns, rows = grid
            row = f"{self.slice_start_token}{view}{self.slice_end_token}" * columns
            text += "\n".join([row] * rows)
        return text

    def slice_views(self, image: Image.Image, max_slice_nums=None) -> list[Image.Image]:
        """The source view, then the slices row by row."""
        image = image.convert("RGB")
        grid = self.get_sliced_grid(image.size, max_slice_nums)
        res, patch = self.scale_resolution, self.patch_size
        source = view_size(*image.size, res, patch, upscale=grid is None)
        views = [image.resize(source, Image.Resampling.BICUBIC)]
        if grid is None:
            return views
        refined = image.resize(
            refined_size(*image.size, grid, res, patch), Image.Resampling.BICUBIC
        )
        cell_w, cell_h = refined.width // grid[0], refined.height // grid[1]
        for top in range(0, refined.height, cell_h):
            for left in range(0, refined.width, cell_w):
                views.append(refined.crop((left, top, left + cell_w, top + cell_h)))
        return views

    def _normalized(self, view: Image.Image) -> torch.Tensor:
        scaled = np.asarray(view, dtype=np.float32) / 255.0
        mean, std = np.array(self.norm_mean, np.float32), np.array(self.norm_std, np.float32)
        return torch.from_numpy(((scaled - mean) / std).transpose(2, 0, 1).copy())

    def preprocess(self, images, do_pad=True, max_slice_nums=None, return_tensors=None, **kwargs):
        """Images -> per prompt: its views' pixel strips, image sizes and patch grids.
        ``images`` is one image, a list (one prompt) or a list of lists (one per prompt).
        The outputs are torch tensors in nested lists whatever ``return_tensors`` says: the
        views' shapes differ, so they cannot be stacked."""
        if isinstance(images, Image.Image):
            images = [[images]]
        elif images and isinstance(images[0], Image.Image):
            images = [list(images)]
        pixel_values, image_sizes, tgt_sizes = [], [], []
        for prompt_images in images:
            strips, sizes, grids = [], [], []
            for image in prompt_images:
                if not isinstance(image, Image.Image):  # a video frame: [height, width, 3]
                    image = Image.fromarray(np.asarray(image))
                for view in self.slice_views(image, max_slice_nums):
                    strips.append(patches_side_by_side(self._normalized(view), self.patch_size))
                    grids.append((view.height // self.patch_size, view.width // self.patch_size))
                sizes.append(torch.tensor(image.size))
            pixel_values.append(strips)
            image_sizes.append(sizes)
            tgt_sizes.append(torch.tensor(grids, dtype=torch.int64).reshape(-1, 2))
        return BatchFeature(
            {"pixel_values": pixel_values, "image_sizes": image_sizes, "tgt_sizes": tgt_sizes}
        )

    def __call__(self, images, **kwargs):
        return self.preprocess(images, **kwargs)


class MiniCPMVProcessor(ProcessorMixin):
    """Tokenizer + image processor. vLLM uses only its tokenizer (it wraps the image
    processor in its own processor); the kit counts with both, and ``__call__`` expands
    each placeholder as vLLM does: the text between placeholders and each image's text
    tokenized on their own."""

    if LEGACY_TRANSFORMERS:  # transformers 4 finds sub-processors through these names
        attributes = ["image_processor", "tokenizer"]
        image_processor_class = "AutoImageProcessor"
        tokenizer_class = "AutoTokenizer"

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    def __call__(self, text=None, images=None, return_tensors=None, **kwargs):
        text = text or ""
        if not isinstance(text, str):
            raise ValueError("MiniCPMVProcessor takes one prompt")
        pieces = text.split(IMAGE_PATTERN)
        images = list(images or [])
        if len(pieces) - 1 != len(images):
            raise ValueError(f"{len(pieces) - 1} image placeholders but {len(images)} images")
        encode = self.tokenizer.encode
        ids = list(encode(pieces[0], add_special_tokens=False))
        for index, (image, piece) in enumerate(zip(images, pieces[1:], strict=True)):
            placeholder = self.image_processor.get_slice_image_placeholder(
                image.size, image_idx=index, use_image_id=True
            )
            ids += encode(placeholder, add_special_tokens=False)
            ids += encode(piece, add_special_tokens=False)
        data = {"input_ids": [ids], "attention_mask": [[1] * len(ids)]}
        if images:
            data.update(self.image_processor(images).data)
        return BatchFeature(data)


class MiniCPMOProcessor(MiniCPMVProcessor):
    """MiniCPM-O 2.6's: MiniCPM-V's, with the audio feature extractor (a Whisper one, from
    the same preprocessor_config.json) that vLLM's MiniCPM-O processor takes from it."""

    if LEGACY_TRANSFORMERS:
        attributes = ["image_processor", "feature_extractor", "tokenizer"]
        feature_extractor_class = "WhisperFeatureExtractor"

    def __init__(
        self, image_processor=None, feature_extractor=None, tokenizer=None, chat_template=None
    ):
        ProcessorMixin.__init__(
            self, image_processor, feature_extractor, tokenizer, chat_template=chat_template
        )


__all__ = ["MiniCPMVImageProcessor", "MiniCPMVProcessor", "MiniCPMOProcessor", "IMAGE_PATTERN"]
