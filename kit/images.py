"""Loading user images with clear errors, and the kit's own demo picture."""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError

from kit import PACKAGE_DIR, REPO_ROOT
from kit.params import ParameterError

DEMO_IMAGE = PACKAGE_DIR / "assets" / "demo_robot.png"


def resolve_image_path(path: str, parameter: str = "image") -> Path:
    """``demo`` -> the shipped picture; relative paths are tried from cwd, then the repo."""
    if path == "demo":
        return DEMO_IMAGE
    candidate = Path(path).expanduser()
    for option in (candidate, REPO_ROOT / candidate):
        if option.is_file():
            return option.resolve()
    raise ParameterError(
        f"Parameter {parameter!r}: image file {path!r} does not exist (looked in "
        f"{Path.cwd()} and {REPO_ROOT}). Pass an existing image path, or 'demo' for the "
        "kit's demo picture."
    )


def load_image(path: str, parameter: str = "image") -> Image.Image:
    """Open and fully decode an image as RGB, or raise a ParameterError saying why not."""
    resolved = resolve_image_path(path, parameter)
    try:
        with Image.open(resolved) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ParameterError(
            f"Parameter {parameter!r}: {str(resolved)!r} cannot be read as an image ({exc}). "
            "Pass a PNG, JPEG or another format Pillow can open."
        ) from exc


def load_images(paths: list[str], parameter: str = "image") -> list[Image.Image]:
    if not paths:
        raise ParameterError(f"Parameter {parameter!r} is empty: give at least one image path.")
    return [load_image(path, parameter) for path in paths]


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


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    """A distinct, seeded picture of any size (benchmarks need distinct images per request)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randint(0, 255) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.uniform(10, width / 2), y0 + rng.uniform(10, height / 2)
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return image
