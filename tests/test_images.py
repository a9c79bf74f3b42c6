"""The kit loads images exactly as vLLM does: EXIF orientation, transparency, odd modes, limits.

Pure tests (no engine). Where vLLM is installed, each picture is also loaded by vLLM's own
offline parser, its file loader and its data-URL loader, and must match the kit pixel for pixel.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from kit.core import image_io
from kit.core.image_io import FALLBACK_ALLOWED_FORMATS, to_data_url
from kit.core.images import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    decode_image_bytes,
    load_image,
    max_image_pixels,
)
from kit.core.params import ParameterError
from kit.models.phi3v.family import PHI3V

W, H = 96, 64  # stored (pre-orientation) size of the EXIF pictures
BLOCK = 24
GREY, RED, GREEN = (128, 128, 128), (230, 20, 20), (20, 200, 20)

# EXIF orientation -> where the stored top-left (red) and top-right (green) corners appear
# when the picture is displayed upright: t/b = top/bottom, l/r = left/right.
ORIENTATION_CORNERS = {
    1: ("tl", "tr"),
    2: ("tr", "tl"),
    3: ("br", "bl"),
    4: ("bl", "br"),
    5: ("tl", "bl"),
    6: ("tr", "br"),
    7: ("br", "tr"),
    8: ("bl", "tl"),
}


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)


@pytest.fixture(params=["vllm", "pillow"])
def backend(request, monkeypatch):
    """Run a test with vLLM's normalisation functions, then with the Pillow fallback."""
    if request.param == "vllm":
        pytest.importorskip("vllm.multimodal.image")
    else:
        monkeypatch.setattr(image_io, "vllm_image_module", lambda: None)
    return request.param


# -- pictures ----------------------------------------------------------------------------


def corner_marked(size: tuple[int, int] = (W, H)) -> Image.Image:
    image = Image.new("RGB", size, GREY)
    image.paste(RED, (0, 0, BLOCK, BLOCK))
    image.paste(GREEN, (size[0] - BLOCK, 0, size[0], BLOCK))
    return image


def exif_jpeg(path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    corner_marked().save(path, "JPEG", exif=exif, quality=95)
    return path


def rgba_png(path: Path) -> Path:
    image = Image.new("RGBA", (40, 30), (0, 0, 255, 0))  # fully transparent blue
    image.paste((200, 40, 40, 255), (0, 0, 20, 30))  # opaque left half
    image.paste((40, 40, 200, 128), (20, 0, 30, 30))  # half-transparent strip
    image.save(path)
    return path


def la_png(path: Path) -> Path:
    image = Image.new("LA", (30, 20), (10, 0))
    image.paste((90, 255), (0, 0, 15, 20))
    image.save(path)
    return path


def palette_png_with_transparency(path: Path) -> Path:
    image = Image.new("P", (30, 20), 0)
    image.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10] + [0] * (256 * 3 - 9))
    image.paste(1, (0, 0, 10, 20))
    image.paste(2, (10, 0, 20, 20))
    image.save(path, transparency=0)  # index 0 (black) is transparent
    return path


def cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (30, 20), (0, 200, 200, 30)).save(path, "JPEG", quality=95)
    return path


def grey16_png(path: Path) -> Path:
    row = struct.pack("<15H", *[40000] * 15) + struct.pack("<15H", *[200] * 15)
    Image.frombytes("I;16", (30, 20), row * 20).save(path)
    return path


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (30, 20), colour) for colour in (RED, (20, 20, 230), GREEN)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    return path


def one_pixel_png(path: Path) -> Path:
    Image.new("RGB", (1, 1), (1, 2, 3)).save(path)
    return path


def exif_png(path: Path) -> Path:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    corner_marked().save(path, "PNG", exif=exif)
    return path


PICTURES = {
    **{f"exif{o}.jpg": (lambda p, o=o: exif_jpeg(p, o)) for o in ORIENTATION_CORNERS},
    "exif6.png": exif_png,
    "rgba.png": rgba_png,
    "la.png": la_png,
    "palette.png": palette_png_with_transparency,
    "cmyk.jpg": cmyk_jpeg,
    "grey16.png": grey16_png,
    "animated.gif": animated_gif,
    "one.png": one_pixel_png,
}


def make(tmp_path: Path, name: str) -> Path:
    return PICTURES[name](tmp_path / name)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds one row of data: a bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1)))
        + chunk(b"IEND", b"")
    )


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()


def corner_colour(image: Image.Image, corner: str) -> tuple[int, int, int]:
    x = BLOCK // 2 if corner[1] == "l" else image.width - 1 - BLOCK // 2
    y = BLOCK // 2 if corner[0] == "t" else image.height - 1 - BLOCK // 2
    return image.getpixel((x, y))


def close_to(colour: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(c - e) <= tolerance for c, e in zip(colour, expected, strict=True))


# -- what the kit's loader gives (both backends) -------------------------------------------


@pytest.mark.parametrize("orientation", sorted(ORIENTATION_CORNERS))
def test_exif_orientation_is_applied(tmp_path, backend, orientation):
    image = load_image(str(make(tmp_path, f"exif{orientation}.jpg")))
    assert image.size == ((W, H) if orientation < 5 else (H, W))
    red_corner, green_corner = ORIENTATION_CORNERS[orientation]
    assert close_to(corner_colour(image, red_corner), RED)
    assert close_to(corner_colour(image, green_corner), GREEN)
    assert image.mode == "RGB"
    assert image.getexif().get(ExifTags.Base.Orientation) is None
    assert image.info == {}  # nothing left for vLLM to apply a second time


def test_transparency_is_composited_onto_white(tmp_path, backend):
    image = load_image(str(make(tmp_path, "rgba.png")))
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == (200, 40, 40)  # opaque
    assert image.getpixel((35, 5)) == (255, 255, 255)  # transparent: white, not black
    assert close_to(image.getpixel((25, 5)), (147, 147, 227), 2)  # half-transparent blend


def test_grey_alpha_and_palette_transparency_use_white(tmp_path, backend):
    la = load_image(str(make(tmp_path, "la.png")))
    assert la.getpixel((5, 5)) == (90, 90, 90) and la.getpixel((25, 5)) == (255, 255, 255)
    palette = load_image(str(make(tmp_path, "palette.png")))
    assert palette.getpixel((5, 5)) == (250, 10, 10)
    assert palette.getpixel((25, 5)) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame(tmp_path, backend):
    image = load_image(str(make(tmp_path, "animated.gif")))
    assert image.mode == "RGB" and image.size == (30, 20)
    assert close_to(image.getpixel((5, 5)), RED, 4)


def test_16_bit_grey_is_clipped_as_vllm_clips_it(tmp_path, backend):
    """Pillow's conversion, used by vLLM, clips 16-bit values to 255 instead of scaling them:
    the model sees a saturated picture, and the kit shows and counts that same picture."""
    path = make(tmp_path, "grey16.png")
    with Image.open(path) as original:
        assert original.mode == "I;16" and original.getpixel((0, 0)) == 40000
    image = load_image(str(path))
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((29, 0)) == (200, 200, 200)


@pytest.mark.parametrize("name", ["cmyk.jpg", "grey16.png", "one.png"])
def test_other_modes_become_rgb(tmp_path, backend, name):
    path = make(tmp_path, name)
    image = load_image(str(path))
    with Image.open(path) as original:
        assert image.mode == "RGB" and image.size == original.size


def test_fallback_matches_vllm_for_every_picture(tmp_path, monkeypatch):
    pytest.importorskip("vllm.multimodal.image")
    paths = [make(tmp_path, name) for name in PICTURES]
    with_vllm = [load_image(str(path)) for path in paths]
    monkeypatch.setattr(image_io, "vllm_image_module", lambda: None)
    for path, expected in zip(paths, with_vllm, strict=True):
        assert same_pixels(load_image(str(path)), expected), path.name


def test_allowed_formats_match_vllm():
    vllm_image = pytest.importorskip("vllm.multimodal.image")
    assert FALLBACK_ALLOWED_FORMATS == vllm_image.ALLOWED_IMAGE_FORMATS


# -- the same pixels as vLLM's own loaders -------------------------------------------------


@pytest.fixture(scope="module")
def vllm_loaders():
    pytest.importorskip("vllm.multimodal.image")
    from vllm.multimodal.media.connector import MediaConnector
    from vllm.multimodal.media.image import ImageMediaIO
    from vllm.multimodal.parse import MultiModalDataParser

    parser = MultiModalDataParser()

    def offline(image: Image.Image) -> Image.Image:
        """What the processor gets from LLM.generate(multi_modal_data={"image": image})."""
        return parser.parse_mm_data({"image": [image]})["image"].get(0)

    def from_file(path: Path) -> Image.Image:
        return ImageMediaIO().load_file(path).media

    def from_url(url: str) -> Image.Image:
        """How the OpenAI server decodes an image_url (chat_utils -> MediaConnector)."""
        return MediaConnector().fetch_image(url).media

    return offline, from_file, from_url


@pytest.mark.parametrize("name", list(PICTURES))
def test_kit_image_equals_vllm_image(tmp_path, vllm_loaders, name):
    offline, from_file, from_url = vllm_loaders
    path = make(tmp_path, name)
    kit_image = load_image(str(path))
    with Image.open(path) as raw:
        assert same_pixels(offline(raw), kit_image)  # a raw PIL image given to vLLM
    assert same_pixels(from_file(path), kit_image)  # a file vLLM loads itself
    assert same_pixels(offline(kit_image), kit_image)  # vLLM changes nothing further
    assert same_pixels(from_url(to_data_url(kit_image)), kit_image)  # server


def test_vllm_transposes_pil_images_passed_offline(tmp_path, vllm_loaders):
    """Why the kit must normalise: a PIL image that still carries its EXIF orientation (as
    ``convert("RGB")`` leaves it) is rotated by vLLM after the kit counted its tokens."""
    offline, _, _ = vllm_loaders
    with Image.open(make(tmp_path, "exif6.jpg")) as raw:
        converted = raw.convert("RGB")
    assert converted.size == (W, H)
    assert offline(converted).size == (H, W)


def test_vllm_server_refuses_the_bomb_whatever_its_own_limit(vllm_loaders):
    """Pillow's limit fires inside vLLM's loader before VLLM_MAX_IMAGE_PIXELS is consulted."""
    from vllm.multimodal.media.image import ImageMediaIO

    with pytest.raises(Image.DecompressionBombError):
        ImageMediaIO().load_bytes(png_header_only(20000, 20000))


def test_image_tokens_agree_with_vllm_processor(tmp_path, smoke_model):
    """vLLM's real Phi3V multimodal processor (no engine) gives an EXIF-6 picture as many
    image tokens as the kit counts from the size of its loaded image."""
    pytest.importorskip("vllm.multimodal.image")
    from vllm.config import ModelConfig
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.multimodal.processing import ProcessorInputs
    from vllm.multimodal.processing.context import TimingContext

    from kit.models.tokens import PromptTokenCounter

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = tmp_path / "wide.jpg"
    corner_marked((200, 100)).save(path, "JPEG", exif=exif)  # upright: 100 wide, 200 tall
    image = load_image(str(path))
    counter = PromptTokenCounter(str(smoke_model), PHI3V, num_crops=4)
    assert counter.image_tokens(*image.size) != counter.image_tokens(200, 100)

    config = ModelConfig(
        model=str(smoke_model), trust_remote_code=True, mm_processor_kwargs={"num_crops": 4}
    )
    processor = MULTIMODAL_REGISTRY.create_processor(config)
    prompt_ids = processor.info.get_tokenizer()("<|user|>\n<|image_1|>\nHi<|end|>\n").input_ids
    for given in (image, Image.open(path)):  # the kit's image, and the raw file's
        items = processor.info.parse_mm_data({"image": [given]})
        out = processor.apply(ProcessorInputs(prompt_ids, items), TimingContext(enabled=False))
        (placeholder,) = out["mm_placeholders"]["image"]
        assert placeholder.length == counter.image_tokens(*image.size)


# -- limits and broken files --------------------------------------------------------------


def test_bomb_is_one_clear_paragraph(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20000, 20000))
    with pytest.raises(ParameterError) as caught:
        load_image(str(path))
    message = str(caught.value)
    assert str(path) in message and "20000x20000" in message
    assert "400,000,000" in message and f"{DEFAULT_MAX_PIXELS:,}" in message
    assert f"{MAX_PIXELS_ENV}=400000000" in message and "\n" not in message
    assert caught.value.__cause__ is None  # the kit checked the header; no Pillow traceback


def test_limit_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 20)).save(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "399")
    with pytest.raises(
        ParameterError,
        match=rf"20x20 = 400 pixels.*limit of 399 pixels \(set by {MAX_PIXELS_ENV}\)",
    ):
        load_image(str(path))
    monkeypatch.setenv(MAX_PIXELS_ENV, "400")
    assert load_image(str(path)).size == (20, 20)


def test_raised_limit_overrides_pillows_own(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (20, 20), (9, 9, 9)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses above 200 pixels
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "0")  # no kit limit
    assert load_image(str(path)).getpixel((0, 0)) == (9, 9, 9)
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's setting is restored


@pytest.mark.parametrize(
    "value,expected", [("", DEFAULT_MAX_PIXELS), ("0", None), ("500_000_000", 500_000_000)]
)
def test_limit_values(monkeypatch, value, expected):
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    assert max_image_pixels() == expected


@pytest.mark.parametrize("value", ["lots", "-1", "1e9"])
def test_bad_limit_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    with pytest.raises(ParameterError, match=f"{MAX_PIXELS_ENV}='{value}'.*unset it"):
        max_image_pixels()


def test_default_limit_is_vllms_and_pillows(monkeypatch):
    assert DEFAULT_MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS
    pytest.importorskip("vllm.multimodal.image")
    import vllm.envs

    monkeypatch.delenv("VLLM_MAX_IMAGE_PIXELS", raising=False)
    assert vllm.envs.VLLM_MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS


def _truncated_png(path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.mark.parametrize(
    "name,write,expected",
    [
        ("cut.png", _truncated_png, "truncated or corrupt"),
        ("cut.jpg", _truncated_jpeg, "truncated or corrupt"),
        ("text.png", lambda p: p.write_text("not a picture"), "not in a format vLLM accepts"),
        ("empty.png", lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        ("page.eps", lambda p: Image.new("RGB", (8, 8)).save(p, "EPS"), "format vLLM accepts"),
    ],
)
def test_broken_files_get_clear_messages(tmp_path, name, write, expected):
    path = tmp_path / name
    write(path)
    with pytest.raises(ParameterError, match=expected) as caught:
        load_image(str(path), "image")
    message = str(caught.value)
    assert message.startswith("Parameter 'image':") and str(path) in message
    assert "cannot be read as an image" in message
    assert "\n" not in message


def test_vllm_also_refuses_broken_files(tmp_path, vllm_loaders):
    _, from_file, _ = vllm_loaders
    for name, write in (("cut.png", _truncated_png), ("cut.jpg", _truncated_jpeg)):
        write(tmp_path / name)
        with pytest.raises(ValueError):
            from_file(tmp_path / name)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ParameterError, match="is a directory, not an image file"):
        load_image(str(tmp_path), "image")


def test_missing_file_keeps_its_message(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_image(str(tmp_path / "nope.png"), "image")


def test_bytes_name_their_source():
    with pytest.raises(ParameterError, match="'upload.png' cannot be read as an image"):
        decode_image_bytes(b"GIF89a-no", "upload.png", "upload")


def test_data_url_is_png_of_the_normalised_image(tmp_path):
    image = load_image(str(make(tmp_path, "exif6.jpg")))
    url = to_data_url(image)
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.format == "PNG" and same_pixels(decoded.convert("RGB"), image)
