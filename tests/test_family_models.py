"""The named models of the families vLLM cannot load here (Qwen2-VL, Qwen2.5-VL, LLaVA,
LLaVA-NeXT) and the full-size SmolVLM, with no engine: each dummy's config.json carries the
published dimensions and no weights, and its roofline figures are plausible; each tiny
folder is tiny, loads with transformers, and the kit counts its image tokens as
transformers' processor for the same folder does; and a run of such a model on this machine
is refused by the checks, before an engine starts, naming torchvision.

Qwen2-VL's AutoProcessor also loads its video processor, which needs torchvision, so here its
processor is put together from the folder's image processor, tokenizer and chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.core.images import synthetic_image
from kit.core.params import ParameterError
from kit.models.checkpoint import DUMMY_MARKER, has_weight_files, is_weightless_folder
from kit.models.registry import FAMILIES, NAMED_MODELS, model_list, read_model_figures
from kit.models.tokens import PromptTokenCounter

from .conftest import REPO

VISION = "vision_config."
QWEN_TEXT = {
    "hidden_size": 3584,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "intermediate_size": 18944,
    "vocab_size": 152064,
    "rope_theta": 1000000.0,
    "rope_scaling.mrope_section": [16, 24, 24],
}
CLIP = {
    VISION + "hidden_size": 1024,
    VISION + "num_hidden_layers": 24,
    VISION + "num_attention_heads": 16,
    VISION + "intermediate_size": 4096,
    VISION + "image_size": 336,
    VISION + "patch_size": 14,
    "vision_feature_layer": -2,
    "projector_hidden_act": "gelu",
}
PUBLISHED = {  # the checkpoints' values, restated here independently of the builders
    "qwen2vl-7b-dummy": {
        **QWEN_TEXT,
        "max_position_embeddings": 32768,
        VISION + "depth": 32,
        VISION + "embed_dim": 1280,
        VISION + "num_heads": 16,
        VISION + "mlp_ratio": 4,
        VISION + "patch_size": 14,
        VISION + "spatial_merge_size": 2,
        VISION + "temporal_patch_size": 2,
        VISION + "hidden_size": 3584,
    },
    "qwen25vl-7b-dummy": {
        **QWEN_TEXT,
        "max_position_embeddings": 128000,
        VISION + "depth": 32,
        VISION + "hidden_size": 1280,
        VISION + "intermediate_size": 3420,
        VISION + "num_heads": 16,
        VISION + "out_hidden_size": 3584,
        VISION + "window_size": 112,
        VISION + "fullatt_block_indexes": [7, 15, 23, 31],
        VISION + "patch_size": 14,
        VISION + "spatial_merge_size": 2,
        VISION + "temporal_patch_size": 2,
    },
    "llava15-7b-dummy": {
        "text_config.hidden_size": 4096,
        "text_config.num_hidden_layers": 32,
        "text_config.num_attention_heads": 32,
        "text_config.intermediate_size": 11008,
        "text_config.vocab_size": 32064,
        "text_config.max_position_embeddings": 4096,
        "image_token_index": 32000,
        **CLIP,
    },
    "llava-next-mistral-7b-dummy": {
        "text_config.hidden_size": 4096,
        "text_config.num_hidden_layers": 32,
        "text_config.num_attention_heads": 32,
        "text_config.num_key_value_heads": 8,
        "text_config.intermediate_size": 14336,
        "text_config.vocab_size": 32064,
        "text_config.max_position_embeddings": 32768,
        "text_config.rope_theta": 1000000.0,
        "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        "image_token_index": 32000,
        **CLIP,
    },
    "smolvlm-dummy": {
        "text_config.hidden_size": 2048,
        "text_config.num_hidden_layers": 24,
        "text_config.num_attention_heads": 32,
        "text_config.num_key_value_heads": 32,
        "text_config.intermediate_size": 8192,
        "text_config.vocab_size": 49155,
        "text_config.max_position_embeddings": 16384,
        "text_config.rope_theta": 273768.0,
        VISION + "hidden_size": 1152,
        VISION + "num_hidden_layers": 27,
        VISION + "num_attention_heads": 16,
        VISION + "intermediate_size": 4304,
        VISION + "patch_size": 14,
        VISION + "image_size": 384,
        "scale_factor": 3,
    },
}
# What the kit's figures give (kit.models.figures and each family's vision_tower): total
# parameters near the published model sizes, the image tower's parameters, and the FLOPs of
# one encoder pass (Qwen: one 14 px patch; LLaVA: one 336 px view; SmolVLM: one 384 px tile)
FIGURES = {
    "qwen2vl-7b-dummy": ((8.2e9, 8.4e9), (6.5e8, 7.0e8), (1.1e9, 1.5e9)),
    "qwen25vl-7b-dummy": ((8.2e9, 8.4e9), (6.5e8, 7.0e8), (1.1e9, 1.5e9)),
    "llava15-7b-dummy": ((6.95e9, 7.15e9), (3.0e8, 3.2e8), (3.6e11, 4.2e11)),
    "llava-next-mistral-7b-dummy": ((7.45e9, 7.65e9), (3.0e8, 3.2e8), (3.6e11, 4.2e11)),
    "smolvlm-dummy": ((2.15e9, 2.35e9), (4.1e8, 4.5e8), (6.2e11, 7.2e11)),
}
TINY = ["smoke-qwen2vl", "smoke-qwen25vl", "smoke-llava", "smoke-llava-next"]
QWEN = {"qwen2vl", "qwen25vl"}
SIZES = ((336, 336), (1024, 512), (640, 480), (1280, 720))  # (width, height)
QUESTION = "What is in the picture?"


def dotted(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def folder_json(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_a_dummy_carries_the_published_dimensions_and_no_weights(name):
    from transformers import AutoTokenizer

    model = NAMED_MODELS[name]
    folder = model.ensure()
    config = folder_json(folder, "config.json")
    assert model.kind == "dummy" and config[DUMMY_MARKER] is True
    assert is_weightless_folder(folder) and not has_weight_files(folder)
    for key, value in PUBLISHED[name].items():
        if key == "image_token_index":  # the kit's tokenizer's <image>, the published id too
            assert config[key] == value
            continue
        assert dotted(config, key) == value, (name, key)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = config.get("text_config") or config
    assert len(tokenizer) <= text["vocab_size"]  # the tiny tokenizer's ids lie inside
    placeholder = "<|image_pad|>" if model.family in QWEN else "<image>"
    image_id = config.get("image_token_id", config.get("image_token_index"))
    assert tokenizer.convert_tokens_to_ids(placeholder) == image_id


@pytest.mark.parametrize("name", list(FIGURES))
def test_a_dummy_s_roofline_figures_come_from_its_config(name):
    figures = read_model_figures(str(NAMED_MODELS[name].ensure()))
    assert figures is not None and figures.vision is not None
    (low, high), (vlow, vhigh), (flow, fhigh) = FIGURES[name]
    assert low < figures.num_params < high, figures.num_params
    assert vlow < figures.vision_params < vhigh, figures.vision_params
    assert flow < figures.vision.flops_per_view < fhigh, figures.vision.flops_per_view
    assert figures.dtype_bytes == 2 and figures.kv_bytes_per_token > 0


def test_the_qwen_dummies_have_the_published_processor_settings():
    for name in ("qwen2vl-7b-dummy", "qwen25vl-7b-dummy"):
        processor = folder_json(NAMED_MODELS[name].ensure(), "processor_config.json")
        for part in ("image_processor", "video_processor"):
            settings = processor[part]
            assert settings["size"] == {"shortest_edge": 3136, "longest_edge": 12845056}
            assert (settings["patch_size"], settings["merge_size"]) == (14, 2)
            assert settings["temporal_patch_size"] == 2


def test_the_llava_and_smolvlm_dummies_load_their_published_processors():
    from transformers import AutoProcessor

    llava = AutoProcessor.from_pretrained(NAMED_MODELS["llava15-7b-dummy"].ensure())
    assert llava.image_processor.crop_size["height"] == 336 and llava.patch_size == 14
    next_ = AutoProcessor.from_pretrained(NAMED_MODELS["llava-next-mistral-7b-dummy"].ensure())
    assert (
        next_.image_processor.image_grid_pinpoints
        == PUBLISHED["llava-next-mistral-7b-dummy"]["image_grid_pinpoints"]
    )
    smol = AutoProcessor.from_pretrained(NAMED_MODELS["smolvlm-dummy"].ensure())
    assert smol.image_seq_len == 81
    assert smol.image_processor.size["longest_edge"] == 1536
    assert smol.image_processor.max_image_size["longest_edge"] == 384


@pytest.mark.parametrize("name", TINY)
def test_a_tiny_folder_is_tiny_with_seeded_weights(name):
    folder = NAMED_MODELS[name].ensure()
    config = folder_json(folder, "config.json")
    text, vision = config["text_config"], config["vision_config"]
    assert (text["hidden_size"], text["num_hidden_layers"]) == (128, 2)
    assert text["hidden_size"] // text["num_attention_heads"] == 64  # a standard head size
    layers = vision.get("depth") or vision["num_hidden_layers"] + config["vision_feature_layer"] + 1
    assert layers == 1  # the vision layers run
    assert has_weight_files(folder) and not is_weightless_folder(folder)
    assert (folder / "model.safetensors").stat().st_size < 40e6


@pytest.fixture(scope="module", params=TINY)
def tiny(request) -> tuple:
    """(family, processor, kit counter) of a tiny folder; the processor is the kit's, which
    for Qwen here is the checkpoint's without its video processor (it needs torchvision)."""
    model = NAMED_MODELS[request.param]
    folder = model.ensure()
    family = FAMILIES[model.family]
    counter = PromptTokenCounter(str(folder), family, 1)
    if model.family in QWEN and not family.runs_here():
        from transformers import AutoProcessor

        with pytest.raises(ImportError, match="orchvision"):  # why the kit loads its own
            AutoProcessor.from_pretrained(folder)
    return family, counter.processor, counter


def test_the_kit_counts_a_tiny_folder_s_images_as_transformers_does(tiny):
    family, processor, counter = tiny
    counts = []
    for width, height in SIZES:
        prompt = family.prompt(QUESTION, 1)
        image = synthetic_image(width, height, seed=f"{width}x{height}")
        reference = len(processor(text=[prompt], images=[image]).input_ids[0])
        counts.append(counter.image_tokens(width, height))
        assert counter.prompt_tokens(prompt, [(width, height)]) == reference, (width, height)
    assert all(0 < c < 1024 for c in counts), counts  # an exact-length perf point fits
    prompt = family.prompt(QUESTION, 2)
    images = [synthetic_image(640, 480, seed="a"), synthetic_image(336, 336, seed="b")]
    reference = len(processor(text=[prompt], images=images).input_ids[0])
    assert counter.prompt_tokens(prompt, [(640, 480), (336, 336)]) == reference


def test_a_tiny_folder_s_chat_template_renders_the_family_s_turn(tiny):
    """What tests/test_families.py checks through AutoProcessor, which cannot load Qwen2-VL's
    processor here: the processor's (or tokenizer's) template against the family's turn."""
    family, processor, _ = tiny
    for images in (1, 2):
        content = [{"type": "image"}] * images + [{"type": "text", "text": "What is it?"}]
        rendered = processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        assert rendered == family.prompt("What is it?", images)
        rendered = processor.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        assert rendered == family.prompt("What is it?", images)  # a server without processor


def test_a_tiny_folder_generates_through_transformers(tiny):
    """Config, weights and processor fit together: transformers' own model answers a prompt
    with an image (the nearest this machine gets to vLLM's run of them)."""
    import torch
    from transformers import AutoModelForImageTextToText

    family, processor, counter = tiny
    model = AutoModelForImageTextToText.from_pretrained(counter.model_path)
    image = synthetic_image(640, 480, seed="generate")
    inputs = processor(text=[family.prompt(QUESTION, 1)], images=[image], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4


def test_the_models_list_names_them_with_whether_they_run_here():
    listing = {entry["name"]: entry for entry in model_list()}
    for name in [*TINY, *PUBLISHED]:
        entry = listing[name]
        assert entry["kind"] == NAMED_MODELS[name].kind
        assert entry["runs_here"] is FAMILIES[entry["family"]].runs_here()
    assert listing["smolvlm-dummy"]["runs_here"] is True  # vLLM's Idefics3 imports here


@pytest.mark.parametrize("name", ["smoke-qwen2vl", "llava-next-mistral-7b-dummy"])
def test_a_run_of_a_family_vllm_cannot_load_here_is_refused_before_an_engine(name):
    from kit.demo.params import DemoParams
    from kit.runs.parameters import RunRequest, merge_parameters, preflight

    if FAMILIES[NAMED_MODELS[name].family].runs_here():
        pytest.skip("this machine's vLLM loads the family (a GPU machine)")
    request = RunRequest(
        "demo",
        DemoParams,
        files=[str(REPO / "params" / "smoke-demo.yaml")],
        params=[("model", name), ("allow_dummy_weights", "true")],
    )
    with pytest.raises(ParameterError) as caught:
        preflight(DemoParams, merge_parameters(request))
    message = str(caught.value)
    assert message.startswith("Parameter 'model'") and "\n" not in message
    assert "torchvision" in message and "CPU build of torch" in message
    assert "docs/gpu.md" in message
