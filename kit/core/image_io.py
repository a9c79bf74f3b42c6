"""Images exactly as vLLM prepares them for the model, so the kit counts, shows and sends the same.

vLLM normalises every image before its processor sees it: a PIL image passed offline
(``multi_modal_data``) goes through the multimodal data parser, and a file or data URL through
its image media loader. Both apply the EXIF orientation (``ImageOps.exif_transpose``) and
convert to RGB, compositing transparency onto white. The kit applies the same steps once,
with vLLM's own functions when vLLM is installed (imported lazily, so this module also works
without it) and an equivalent Pillow implementation otherwise; tests check that they agree.

In vLLM: ``vllm/multimodal/parse.py`` ``MultiModalDataParser._parse_image_data`` (offline PIL
images) and ``vllm/multimodal/media/image.py`` ``ImageMediaIO.load_bytes`` (files, data URLs)
both call ``normalize_image`` and ``convert_image_mode`` from ``vllm/multimodal/image.py``.
"""

from __future__ import annotations

import base64
import functools
import io
from types import ModuleType

from PIL import Image, ImageOps

# Formats vLLM's server opens (vllm.multimodal.image.ALLOWED_IMAGE_FORMATS); used only when
# vLLM is absent. Formats that run external programs (EPS: Ghostscript) are not in it.
FALLBACK_ALLOWED_FORMATS: tuple[str, ...] = (
    "AVIF",
    "BLP",
    "BMP",
    "CUR",
    "DCX",
    "DDS",
    "DIB",
    "FITS",
    "FLI",
    "FTEX",
    "GBR",
    "GIF",
    "ICNS",
    "ICO",
    "IM",
    "IMT",
    "IPTC",
    "JPEG",
    "JPEG2000",
    "MCIDAS",
    "MSP",
    "PCD",
    "PCX",
    "PIXAR",
    "PNG",
    "PPM",
    "PSD",
    "QOI",
    "SGI",
    "SPIDER",
    "SUN",
    "TGA",
    "TIFF",
    "WEBP",
    "XBM",
    "XPM",
    "XVTHUMB",
)

TRANSPARENT_BACKGROUND = (255, 255, 255)  # vLLM's default rgba_background_color

DATA_URL_FORMAT = "PNG"  # lossless: the server decodes exactly the kit's pixels


@functools.cache
def vllm_image_module() -> ModuleType | None:
    """``vllm.multimodal.image``, or None where vLLM is not installed."""
    try:
        from vllm.multimodal import image
    except ImportError:
        return None
    return image


def allowed_formats() -> tuple[str, ...]:
    vllm_image = vllm_image_module()
    return vllm_image.ALLOWED_IMAGE_FORMATS if vllm_image else FALLBACK_ALLOWED_FORMATS


def open_untrusted(data: bytes) -> Image.Image:
    """Open (not decode) image bytes, restricted to the formats vLLM's server accepts."""
    return Image.open(io.BytesIO(data), formats=allowed_formats())


def pillow_normalize(image: Image.Image) -> Image.Image:
    """The Pillow equivalent of vLLM's normalisation, for installs without vLLM."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # vLLM also keeps the pixels as they are when EXIF is malformed
        pass
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        flattened = Image.new("RGB", rgba.size, TRANSPARENT_BACKGROUND)
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        return flattened
    return image.convert("RGB")


def vllm_normalize(image: Image.Image) -> Image.Image:
    """What vLLM's multimodal data parser does to a PIL image given to ``LLM.generate``."""
    vllm_image = vllm_image_module()
    if vllm_image is None:
        return pillow_normalize(image)
    converted: Image.Image = vllm_image.convert_image_mode(vllm_image.normalize_image(image), "RGB")
    return converted


def normalize(image: Image.Image) -> Image.Image:
    """The RGB image the model sees, as a new image without metadata.

    Without EXIF or transparency info left, vLLM's own normalisation of the result changes
    nothing, so the image the kit counts and shows is the one the processor gets.
    """
    normalized = vllm_normalize(image)
    if normalized is image:
        normalized = image.copy()
    normalized.info = {}
    return normalized


def to_data_url(image: Image.Image) -> str:
    """A base64 PNG data URL that vLLM's server decodes to the same pixels and size.

    The server loads data URLs with its image media loader, which repeats the normalisation;
    on an already normalised image that is a no-op, and PNG keeps every pixel.
    """
    buffer = io.BytesIO()
    normalize(image).save(buffer, format=DATA_URL_FORMAT)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/png;base64,{encoded}"
