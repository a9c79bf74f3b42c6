"""The kit's Phi-3.5-vision image processor against the published image-token formula
(docs/methodology.md, "Exact-length prompts and the image-token formula")."""

import pytest
import torch
from PIL import Image

from kit.models.phi3v.processor import (
    Phi3VImageProcessor,
    hd_padded_size,
    num_image_tokens,
    preprocess_image,
)

# (width, height) -> tokens at num_crops 4 and 16, worked out with the formula by hand
FACT_TOKENS = {
    (1024, 1024): (757, 2509),
    (640, 480): (757, 1921),
    (1000, 500): (457, 2353),
}


@pytest.mark.parametrize("size", list(FACT_TOKENS))
@pytest.mark.parametrize("crops_index,num_crops", [(0, 4), (1, 16)])
def test_image_tokens_match_facts(size, crops_index, num_crops):
    assert num_image_tokens(*size, num_crops) == FACT_TOKENS[size][crops_index]


def test_tall_images_pad_their_width():
    # 500x1000 -> 336x672 canvas: 2 rows of 1 crop, one newline token set per row + 1
    assert hd_padded_size(500, 1000, 4) == (336, 672)
    assert num_image_tokens(500, 1000, 4) == (2 * 1 + 1) * 144 + 1 + (2 + 1) * 12
    assert hd_padded_size(1000, 500, 4) == (672, 336)


@pytest.mark.parametrize(
    "size,num_crops,padded_hw",
    [
        ((1024, 1024), 4, (672, 672)),
        ((1024, 1024), 16, (1344, 1344)),
        ((640, 480), 16, (1008, 1344)),
    ],
)
def test_pixel_values_shape_and_padded_sizes(size, num_crops, padded_hw):
    views, image_size = preprocess_image(Image.new("RGB", size, (200, 30, 30)), num_crops)
    assert views.shape == (num_crops + 1, 3, 336, 336)
    assert image_size == padded_hw
    used = (padded_hw[0] // 336) * (padded_hw[1] // 336)
    assert torch.count_nonzero(views[1 + used :]) == 0  # unused crops are zero padding
    assert torch.count_nonzero(views[1 : 1 + used]) > 0


def test_normalization_uses_clip_statistics():
    views, _ = preprocess_image(Image.new("RGB", (336, 336), (255, 255, 255)), 1)
    # white -> (1 - mean) / std per channel
    expected = torch.tensor([1.9303, 2.0749, 2.1459])
    assert torch.allclose(views[1, :, 0, 0], expected, atol=1e-3)


def test_image_processor_batches_and_counts_tokens():
    processor = Phi3VImageProcessor(num_crops=4)
    out = processor([Image.new("RGB", (1024, 1024)), Image.new("RGB", (1000, 500))])
    assert tuple(out["pixel_values"].shape) == (2, 5, 3, 336, 336)
    assert out["image_sizes"].tolist() == [[672, 672], [336, 672]]
    assert out["num_img_tokens"] == [757, 457]
    assert processor.calc_num_image_tokens_from_image_size(width=640, height=480) == 757


def test_processor_from_model_folder_expands_image_tags(smoke_model):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(smoke_model, trust_remote_code=True, num_crops=16)
    assert processor.calc_num_image_tokens_from_image_size(width=1024, height=1024) == 2509
    text = "<|user|>\n<|image_1|>\nDescribe.<|end|>\n<|assistant|>\n"
    out = processor(text=text, images=[Image.new("RGB", (1024, 1024))], return_tensors="pt")
    image_positions = (out["input_ids"][0] < 0).sum().item()
    assert image_positions == 2509
    with pytest.raises(ValueError, match="image tags"):
        processor(text="<|image_2|>", images=[Image.new("RGB", (64, 64))])


def test_text_only_call_tokenizes_like_the_published_processor(smoke_model):
    """vLLM may call the processor on text alone (0.24 does, for its processor cache); the
    published processor then only tokenizes, image tags included as plain text."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(smoke_model, trust_remote_code=True, num_crops=4)
    out = processor(text="<|image_1|>", num_crops=4)
    assert out["input_ids"] == [processor.tokenizer("<|image_1|>").input_ids]
    assert out["attention_mask"] == [[1] * len(out["input_ids"][0])]
    batch = processor(text=["<|image_1|>", "hi"], return_tensors=None)
    assert len(batch["input_ids"]) == 2 and "pixel_values" not in batch


def test_vllm_processing_with_its_processor_cache_on(smoke_model):
    """vLLM's own Phi3V multimodal processing (no engine) with the processor cache on: a
    cache miss and a cache hit give the same prompt and placeholders as no cache."""
    from vllm.config import ModelConfig
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.multimodal.cache.base import MultiModalProcessorOnlyCache
    from vllm.multimodal.processing import ProcessorInputs
    from vllm.multimodal.processing.context import TimingContext

    config = ModelConfig(
        model=str(smoke_model),
        trust_remote_code=True,
        mm_processor_kwargs={"num_crops": 4},
        mm_processor_cache_gb=1,
    )
    processor = MULTIMODAL_REGISTRY.create_processor(config)
    cache = MultiModalProcessorOnlyCache(config)
    prompt = processor.info.get_tokenizer()("<|user|>\n<|image_1|>\nHi<|end|>\n").input_ids
    image = Image.new("RGB", (640, 480), (10, 200, 30))

    def apply(with_cache):
        items = processor.info.parse_mm_data({"image": [image]})
        inputs = ProcessorInputs(prompt, items, cache=cache if with_cache else None)
        out = processor.apply(inputs, TimingContext(enabled=False))
        (placeholder,) = out["mm_placeholders"]["image"]
        return out["prompt_token_ids"], placeholder.length

    plain = apply(False)
    assert plain[1] == num_image_tokens(640, 480, 4) == 757
    assert apply(True) == plain  # miss: processed and stored
    assert apply(True) == plain  # hit: taken from the cache
