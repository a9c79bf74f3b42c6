"""Loading user images as the model sees them, with clear errors, and the kit's own pictures.

Every loaded image is normalised the way vLLM normalises it (EXIF orientation applied,
transparency composited onto white; see kit.core.image_io), so the picture a report shows,
the size the kit counts image tokens from and the pixels the engine gets are one image.
"""

from __future__ import annotations

import math
import os
import random
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError

from kit.core.image_io import allowed_formats, normalize, open_untrusted
from kit.core.params import ParameterError
from kit.core.paths import ASSETS_DIR, REPO_ROOT

DEMO_IMAGE = ASSETS_DIR / "demo_robot.png"

MAX_PIXELS_ENV = "KIT_MAX_IMAGE_PIXELS"


# vLLM's VLLM_MAX_IMAGE_PIXELS default, which is also Pillow's decompression-bomb error limit.
DEFAULT_MAX_PIXELS = 178_956_970

DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)

_PILLOW_LIMIT_LOCK = threading.Lock()


def max_image_pixels() -> int | None:
    """The largest image (width x height) the kit decodes: $KIT_MAX_IMAGE_PIXELS, 0 = no limit."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ParameterError(
            f"Environment variable {MAX_PIXELS_ENV}={text!r} is not a pixel count. Set it to "
            "a whole number such as 400000000, to 0 for no limit, or unset it "
            f"for the default {DEFAULT_MAX_PIXELS}."
        )
    return value or None


def resolve_image_path(path: str, parameter: str = "image") -> Path:
    """``demo`` -> the shipped picture; relative paths are tried from cwd, then the repo."""
    if path == "demo":
        return DEMO_IMAGE
    candidate = Path(path).expanduser()
    options = (candidate, REPO_ROOT / candidate)
    for option in options:
        if option.is_file():
            return option.resolve()
    for option in options:
        if option.is_dir():
            raise ParameterError(
                f"Parameter {parameter!r}: {str(option)!r} is a directory, not an image file. "
                "Pass the path of an image file in it (list several paths for several images)."
            )
    looked = dict.fromkeys(str(option.parent.resolve()) for option in options)
    raise ParameterError(
        f"Parameter {parameter!r}: image file {path!r} does not exist (looked in "
        f"{' and '.join(looked)}). Pass an existing image path, or 'demo' for the "
        "kit's demo picture."
    )


def load_image(path: str, parameter: str = "image") -> Image.Image:
    """Read and normalise an image file as vLLM would, or raise a ParameterError saying why not."""
    resolved = resolve_image_path(path, parameter)
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise ParameterError(
            f"Parameter {parameter!r}: {str(resolved)!r} cannot be read ({exc}). Check the "
            "file's permissions, or pass another image."
        ) from exc
    return decode_image_bytes(data, str(resolved), parameter)


def load_images(paths: list[str], parameter: str = "image") -> list[Image.Image]:
    if not paths:
        raise ParameterError(f"Parameter {parameter!r} is empty: give at least one image path.")
    return [load_image(path, parameter) for path in paths]


def decode_image_bytes(data: bytes, source: str, parameter: str = "image") -> Image.Image:
    """Decode image bytes into the RGB image the model sees; ``source`` names them in errors."""
    if not data:
        raise ParameterError(
            f"Parameter {parameter!r}: {source!r} cannot be read as an image: it is empty "
            "(0 bytes). Pass the complete file (re-export or copy it again)."
        )
    limit = max_image_pixels()
    formats = allowed_formats()  # imports vLLM, if any, outside the error handling
    with _kit_pixel_limit_only():
        try:
            image = open_untrusted(data)
        except UnidentifiedImageError as exc:
            raise ParameterError(
                f"Parameter {parameter!r}: {source!r} cannot be read as an image: it is not in "
                f"a format vLLM accepts ({_format_names(formats)}), or its header is "
                "damaged. Convert it to PNG or JPEG."
            ) from exc
        except DECODE_ERRORS as exc:
            raise _corrupt(parameter, source, exc) from exc
        width, height = image.size
        if limit is not None and width * height > limit:
            raise _too_large(parameter, source, width, height, limit)
        try:
            image.load()
            return normalize(image)
        except DECODE_ERRORS as exc:
            raise _corrupt(parameter, source, exc) from exc


def _format_names(formats: tuple[str, ...]) -> str:
    common = [name for name in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF") if name in formats]
    return ", ".join(common) + f" and {len(formats) - len(common)} more"


def _too_large(parameter: str, source: str, width: int, height: int, limit: int) -> ParameterError:
    pixels = width * height
    origin = (
        "the default, as in vLLM and Pillow"
        if limit == DEFAULT_MAX_PIXELS
        else f"set by {MAX_PIXELS_ENV}"
    )
    return ParameterError(
        f"Parameter {parameter!r}: {source!r} is {width}x{height} = {pixels:,} pixels, above "
        f"the kit's limit of {limit:,} pixels ({origin}), which guards against decompression "
        "bombs. If you trust the file, raise the limit with the environment variable "
        f"{MAX_PIXELS_ENV} (e.g. `{MAX_PIXELS_ENV}={pixels} python -m kit ...`, or "
        f"os.environ[{MAX_PIXELS_ENV!r}] = '{pixels}' in a notebook before loading; 0 = no "
        "limit), or better, pass a downscaled copy: the model resizes every image to a few "
        "336x336 tiles anyway."
    )


def _corrupt(parameter: str, source: str, exc: Exception) -> ParameterError:
    return ParameterError(
        f"Parameter {parameter!r}: {source!r} cannot be read as an image: it is truncated or "
        f"corrupt ({type(exc).__name__}: {exc}). Pass an intact copy (re-export or download "
        "it again)."
    )


@contextmanager
def _kit_pixel_limit_only() -> Iterator[None]:
    """Pillow's own bomb check (a process-wide setting) would refuse images above vLLM's
    default before the kit's limit applies; the kit checks the header size itself instead."""
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def draw_demo_image(size: int = 512, seed: int = 7) -> Image.Image:
    """A robot on rocks under a starry sky, drawn with PIL (no downloaded pictures)."""
    rng = random.Random(seed)
    s = size / 512
    image = Image.new("RGB", (size, size), (12, 16, 40))
    draw = ImageDraw.Draw(image)
    for _ in range(160):  # stars
        x, y, r = rng.uniform(0, size), rng.uniform(0, size * 0.6), rng.uniform(0.5, 2.2) * s
        shade = rng.randint(170, 255)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(shade, shade, rng.randint(200, 255)))
    for _ in range(14):  # rocks
        cx, w = rng.uniform(0, size), rng.uniform(60, 160) * s
        top = size * rng.uniform(0.72, 0.84)
        grey = rng.randint(70, 120)
        draw.polygon(
            [(cx - w / 2, size), (cx - w / 3, top), (cx + w / 4, top - 12 * s), (cx + w / 2, size)],
            fill=(grey, grey - 10, grey - 20),
        )
    body, metal, dark = (120, 124, 132), (90, 94, 100), (40, 42, 48)
    draw.rectangle((200 * s, 230 * s, 312 * s, 370 * s), fill=body, outline=dark, width=int(4 * s))
    draw.rectangle((222 * s, 150 * s, 290 * s, 222 * s), fill=metal, outline=dark, width=int(4 * s))
    draw.ellipse((238 * s, 166 * s, 274 * s, 202 * s), fill=(60, 150, 230), outline=dark)
    draw.line((256 * s, 150 * s, 256 * s, 120 * s), fill=dark, width=int(4 * s))
    draw.ellipse((249 * s, 112 * s, 263 * s, 126 * s), fill=(230, 80, 60))
    for side in (-1, 1):  # arms, the right one holding a cylinder
        x0 = 256 * s + side * 56 * s
        x1 = x0 + side * 46 * s
        draw.line((x0, 250 * s, x1, 320 * s), fill=metal, width=int(14 * s))
        draw.line(
            (236 * s + (side + 1) * 20 * s, 370 * s) + (236 * s + (side + 1) * 20 * s, 430 * s),
            fill=metal,
            width=int(18 * s),
        )
    draw.rounded_rectangle(
        (335 * s, 300 * s, 375 * s, 380 * s),
        radius=int(10 * s),
        fill=(100, 100, 108),
        outline=dark,
        width=int(3 * s),
    )
    for k in range(8):  # a dial on the chest
        angle = k * math.pi / 4
        draw.line(
            (
                256 * s,
                300 * s,
                256 * s + 18 * s * math.cos(angle),
                300 * s + 18 * s * math.sin(angle),
            ),
            fill=dark,
            width=int(2 * s),
        )
    return image


def synthetic_image(width: int, height: int, seed: int | str) -> Image.Image:
    """A distinct, seeded picture of any size (benchmarks need distinct images per request)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randint(0, 255) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.uniform(10, width / 2), y0 + rng.uniform(10, height / 2)
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return image
