"""MiniCPM-V 2.6: the kit's image processor (slicing, placeholder text, pixel layout), the
family's counts against the processor's own expansion and against vLLM's MiniCPM-V
processor (no engine), the weightless full-size folder and its roofline figures, and the
kit's vLLM plugin that lets vLLM's MiniCPM-V path run on a CPU build of torch (the engine
checks are tests/test_families.py's)."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from PIL import Image

from kit.models.minicpmv import tiny
from kit.models.minicpmv.family import MINICPMV, image_tokens, image_views
from kit.models.minicpmv.processor import (
    MiniCPMVImageProcessor,
    patches_side_by_side,
    refined_size,
    sliced_grid,
    view_size,
)
from kit.models.registry import read_model_figures
from kit.models.tokens import PromptTokenCounter

SIZES = ((336, 336), (1024, 512), (640, 480), (100, 50), (50, 900))


@pytest.fixture(scope="module")
def folder():
    return tiny.ensure_tiny()


@pytest.fixture(scope="module")
def processor(folder):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(folder, trust_remote_code=True)


def test_the_grid_follows_area_and_aspect_ratio_with_the_published_settings():
    """MiniCPM-V 2.6: views of 448², at most 9 slices."""
    assert sliced_grid(448, 448, 9, 448) is None  # one view's area: not sliced
    assert sliced_grid(336, 336, 9, 448) is None
    assert sliced_grid(1344, 896, 9, 448) == (3, 2)  # 6 views' area, aspect 3:2
    assert sliced_grid(896, 1344, 9, 448) == (2, 3)
    assert sliced_grid(1344, 1344, 9, 448) == (3, 3)
    assert sliced_grid(4000, 500, 9, 448) == (8, 1)  # a strip: 8:1 beats 9:1
    assert sliced_grid(4500, 500, 9, 448) == (9, 1)  # 11 areas, capped at 9
    assert sliced_grid(1000, 1000, 4, 448) == (2, 2)  # 5 areas capped at 4


def test_views_are_patch_multiples_of_about_the_scale_resolution():
    assert view_size(1344, 896, 448, 14) == (546, 364)
    assert view_size(100, 50, 448, 14) == (98, 56)  # small: kept, rounded to patches
    assert view_size(100, 50, 448, 14, upscale=True) == (630, 322)
    width, height = refined_size(1344, 896, (3, 2), 448, 14)
    assert (width % 3, height % 2) == (0, 0)
    assert (width // 3 % 14, height // 2 % 14) == (0, 0)


def test_the_placeholder_text_has_an_id_a_source_view_and_the_slices_row_by_row():
    processor = MiniCPMVImageProcessor(scale_resolution=448, image_feature_size=2)
    text = processor.get_slice_image_placeholder((1344, 896), image_idx=3)
    unk2 = "<unk><unk>"
    slices = f"<slice>{unk2}</slice>" * 3
    assert text == f"<image_id>3</image_id><image>{unk2}</image>{slices}\n{slices}"
    plain = processor.get_slice_image_placeholder((336, 336), use_image_id=False)
    assert plain == f"<image>{unk2}</image>"


def test_pixel_values_are_each_view_s_patches_side_by_side_with_its_patch_grid():
    processor = MiniCPMVImageProcessor(scale_resolution=112, image_feature_size=8)
    image = Image.effect_noise((640, 480), 64).convert("RGB")
    out = processor([image])
    (views,), (grids,), (sizes,) = out["pixel_values"], out["tgt_sizes"], out["image_sizes"]
    columns, rows = processor.get_sliced_grid((640, 480))
    assert len(views) == len(grids) == 1 + columns * rows
    assert sizes[0].tolist() == [640, 480]
    for view, (grid_h, grid_w) in zip(views, grids.tolist(), strict=True):
        assert view.shape == (3, 14, grid_h * grid_w * 14)


def test_a_patch_convolution_over_the_strip_gives_the_raster_order_of_patches():
    view = torch.randn(3, 28, 42)  # 2 x 3 patches
    conv = torch.nn.Conv2d(3, 5, kernel_size=14, stride=14)
    expected = conv(view[None]).flatten(2)  # row-major patch sequence
    strip = conv(patches_side_by_side(view, 14)[None]).flatten(2)
    assert torch.allclose(strip, expected, atol=1e-5)


def test_the_family_counts_the_processor_s_own_expansion(processor):
    counter = PromptTokenCounter(str(tiny.tiny_dir()), MINICPMV, 4)
    for images in ([(336, 336)], [(1024, 512)], [(100, 50)], [(336, 336), (640, 480)]):
        prompt = MINICPMV.prompt("What is in the image?", len(images))
        pictures = [Image.new("RGB", size) for size in images]
        ids = processor(text=prompt, images=pictures)["input_ids"][0]
        assert counter.prompt_tokens(prompt, images) == len(ids), images


def test_image_tokens_and_views_of_the_tiny_model(processor):
    """Views of 112 px, 8 tokens each with its two markers, 3 for the image id, and a
    newline between grid rows."""
    for width, height in SIZES:
        grid = processor.image_processor.get_sliced_grid((width, height))
        columns, rows = grid or (0, 1)
        views = 1 + columns * rows
        assert image_views(processor, width, height, 4) == views
        assert image_tokens(processor, width, height) == 3 + views * 10 + (rows - 1)
    assert image_tokens(processor, 336, 336) == 105 and image_tokens(processor, 1024, 512) == 94


def test_the_tiny_folder_has_the_kit_s_remote_code_and_tiny_dimensions(folder):
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MiniCPMV"] and config["version"] == 2.6
    assert (config["hidden_size"], config["num_hidden_layers"], config["query_num"]) == (128, 2, 8)
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM's CPU attention
    for name, source in tiny.SOURCES.items():
        assert (folder / name).read_bytes() == source.read_bytes()


def test_the_full_size_folder_has_the_published_dimensions_and_no_weights():
    from transformers import AutoConfig

    folder = tiny.ensure_full_size()
    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"]) == (3584, 28)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (28, 4)
    assert (config["intermediate_size"], config["vocab_size"]) == (18944, 151666)
    assert config["rope_theta"] == 1e6 and config["max_position_embeddings"] == 32768
    vision = config["vision_config"]
    assert (vision["hidden_size"], vision["num_hidden_layers"]) == (1152, 27)
    assert (vision["num_attention_heads"], vision["intermediate_size"]) == (16, 4304)
    assert (vision["patch_size"], vision["image_size"]) == (14, 980)
    assert (config["query_num"], config["image_size"], config["version"]) == (64, 448, 2.6)
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    assert (preprocessor["max_slice_nums"], preprocessor["scale_resolution"]) == (9, 448)
    assert config["kit_dummy_weights"] is True and not list(folder.glob("*.safetensors"))
    loaded = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    assert loaded.vision_config.hidden_size == 1152  # an object, as vLLM builds the tower


def test_the_roofline_reads_the_full_size_folder():
    figures = read_model_figures(str(tiny.ensure_full_size()))
    assert figures is not None and figures.vision is not None
    assert (figures.hidden, figures.layers, figures.kv_heads) == (3584, 28, 4)
    assert (figures.head_dim, figures.dtype_bytes) == (128, 2)
    assert figures.vision.shown["siglip_layers"] == 27
    # SigLIP-400M (~0.4 B) and the resampler: the published model is ~8 B in all
    assert 0.38e9 < figures.vision.params < 0.5e9
    assert 7.5e9 < figures.num_params < 8.5e9
    assert figures.image_flops(10) == 10 * figures.vision.flops_per_view > 0


@pytest.mark.slow  # imports vLLM and builds its processor (no engine): ~10 s
def test_the_kit_counts_as_vllm_s_own_minicpmv_processor(folder):
    """vLLM's real MiniCPM-V input processing (the kit's image processor inside vLLM's
    wrapper, the placeholder matched and replaced) without an engine, which cannot run an
    image on CPU (test below)."""
    from vllm.config import ModelConfig
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.multimodal.processing.context import TimingContext
    from vllm.multimodal.processing.inputs import ProcessorInputs

    config = ModelConfig(
        model=str(folder), trust_remote_code=True, max_model_len=4096,
        limit_mm_per_prompt={"image": 2},
    )  # fmt: skip
    vllm_processor = MULTIMODAL_REGISTRY.create_processor(config)
    counter = PromptTokenCounter(str(folder), MINICPMV, 4)
    for images in ([(336, 336)], [(1024, 512)], [(640, 480)], [(336, 336), (640, 480)]):
        prompt = MINICPMV.prompt("What is in the image?", len(images))
        items = vllm_processor.info.parse_mm_data({"image": [Image.new("RGB", s) for s in images]})
        inputs = ProcessorInputs(counter.tokenizer.encode(prompt), items)
        result = vllm_processor.apply(inputs, TimingContext(enabled=False))
        assert len(result["prompt_token_ids"]) == counter.prompt_tokens(prompt, images), images


def test_the_kit_s_vllm_plugin_lets_the_resampler_ask_cuda_on_a_cpu_build():
    """vLLM 0.32's ``Resampler2_5.forward`` calls ``torch.cuda.is_current_stream_capturing()``,
    which a CPU build of torch cannot answer ("Tried to instantiate dummy base class"). The
    kit's vLLM plugin, which vLLM loads in its processes through the package's entry point,
    answers False there (no CUDA stream), and the run records it."""
    from importlib.metadata import entry_points

    from kit.engines import vllm_plugin

    (plugin,) = [
        e for e in entry_points(group="vllm.general_plugins") if e.name == "kit_cpu_compat"
    ]
    assert plugin.load() is vllm_plugin.register
    if torch.cuda.is_available():
        pytest.skip("a CUDA build answers")
    from vllm.model_executor.models.minicpmv import Resampler2_5

    assert "torch.cuda.is_current_stream_capturing()" in inspect.getsource(Resampler2_5.forward)
    original = torch.cuda.is_current_stream_capturing
    try:
        if original is not vllm_plugin._not_capturing:  # not yet patched in this process
            with pytest.raises(RuntimeError, match="dummy base class"):
                original()
        vllm_plugin.register()
        vllm_plugin.register()  # vLLM may load plugins more than once
        assert torch.cuda.is_current_stream_capturing() is False
        assert vllm_plugin.compat_note() == vllm_plugin.CPU_CAPTURE_NOTE
    finally:
        torch.cuda.is_current_stream_capturing = original
