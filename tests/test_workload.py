"""Exact-length benchmark prompts on the tiny model's tokenizer and processor (no engine)."""

import pytest

from kit.core.params import ParameterError, build
from kit.models.phi3v.family import PHI3V
from kit.models.tokens import PromptTokenCounter
from kit.perf.params import PerfParams, plan_points, workload_builder
from kit.perf.workload import WorkloadBuilder, WorkloadError, new_salt


@pytest.fixture(scope="module")
def counters(smoke_model):
    return {n: PromptTokenCounter(str(smoke_model), PHI3V, n) for n in (4, 16)}


@pytest.fixture(scope="module")
def vllm_prompt_tokens(smoke_model):
    """How many prompt tokens vLLM makes of a prompt and its images: the renderer that
    ``LLM.generate`` runs (vLLM's tokenization, then its Phi3V multimodal processor, which
    replaces each image tag with the image's tokens), built without an engine."""
    pytest.importorskip("vllm.multimodal.image")
    from vllm.config import ModelConfig, VllmConfig
    from vllm.renderers.registry import renderer_from_config

    renderers = {}

    def count(num_crops: int, prompt: str, images: list) -> int:
        if num_crops not in renderers:
            config = ModelConfig(
                model=str(smoke_model),
                trust_remote_code=True,
                max_model_len=16384,
                limit_mm_per_prompt={"image": 2},
                mm_processor_kwargs={"num_crops": num_crops},  # as kit.engines.offline passes it
            )
            renderers[num_crops] = renderer_from_config(VllmConfig(model_config=config))
        request = {"prompt": prompt, "multi_modal_data": {"image": images}}
        (engine_input,) = renderers[num_crops].render_cmpl([request])
        return len(engine_input["prompt_token_ids"])

    return count


@pytest.mark.parametrize("num_crops", [4, 16])
@pytest.mark.parametrize("shapes", [[(1024, 1024)], [(480, 640)], [(1024, 1024), (512, 512)]])
@pytest.mark.parametrize("input_len", [6000, 8192])
def test_prompts_are_exactly_input_len(counters, vllm_prompt_tokens, num_crops, shapes, input_len):
    builder = WorkloadBuilder(counters[num_crops], shapes)
    request = builder.build(input_len, seed=input_len + num_crops)
    assert request.num_tokens == input_len
    seen_by_vllm = vllm_prompt_tokens(num_crops, request.prompt, request.images)
    assert seen_by_vllm == input_len  # vLLM's own count, not the kit's counter
    assert [image.size for image in request.images] == [(w, h) for h, w in shapes]
    assert request.prompt.count("<|image_") == len(shapes)


def test_requests_are_distinct(counters):
    builder = WorkloadBuilder(counters[4], [(336, 336)])
    batch = builder.batch(1024, 4, seed=1) + builder.batch(1024, 4, seed=2)
    assert len({r.prompt for r in batch}) == 8
    assert len({r.images[0].tobytes() for r in batch}) == 8
    assert builder.batch(1024, 2, seed=1)[0].prompt == batch[0].prompt  # seeded


def test_each_run_s_salt_changes_every_word_and_picture_and_keeps_the_length(counters):
    """Two runs of the same command draw different salts (kit.perf.workload.new_salt):
    same seeds, other words and pixels, the same exact length; one salt is repeatable."""
    first, second = new_salt(), new_salt()
    assert first != second and len(first) == 16
    runs = [WorkloadBuilder(counters[4], [(336, 336)], salt) for salt in (first, second, first)]
    batches = [builder.batch(1024, 2, seed=7) for builder in runs]
    assert all(r.num_tokens == 1024 for batch in batches for r in batch)
    for a, b in zip(batches[0], batches[1], strict=True):
        assert a.text != b.text
        assert a.images[0].tobytes() != b.images[0].tobytes()
    assert [r.prompt for r in batches[0]] == [r.prompt for r in batches[2]]


def test_a_server_s_count_moves_every_prompt_and_keeps_the_word_list(counters):
    """kit.perf.calibration: prompts built by a server that counts 444 more image tokens
    are 444 fewer words long, and the vocabulary is not scanned a second time."""
    builder = WorkloadBuilder(counters[4], [(336, 336)], salt="s")
    builder.smallest(seed=-1)  # the calibration request: the word list is found here
    calibrated = builder.counted_by_server(444)
    assert calibrated.words is builder.words
    assert calibrated.image_tokens == builder.image_tokens + 444
    assert calibrated.min_tokens == builder.min_tokens + 444
    assert calibrated.build(2048, seed=1).num_tokens == 2048
    assert len(calibrated.build(2048, 1).text.split()) < len(builder.build(2048, 1).text.split())


def test_too_short_input_len_is_refused(counters):
    builder = WorkloadBuilder(counters[4], [(1024, 1024)])
    with pytest.raises(WorkloadError, match="below"):
        builder.build(500, seed=0)


def test_plan_rejects_points_that_cannot_fit(smoke_model):
    params = build(
        PerfParams,
        {
            "model": "smoke",
            "input_len": [1024, 4000],
            "max_output_len": 200,
            "max_model_len": 4096,
            "input_vision_shape": "1024,1024",
        },
    )
    builder = workload_builder(params, str(smoke_model), PHI3V)
    with pytest.raises(ParameterError, match="exceeds max_model_len"):
        plan_points(params, builder)
    params.input_len = [700]
    with pytest.raises(ParameterError, match="below the"):
        plan_points(params, builder)


def test_perf_params_parse_lists_and_shapes():
    params = build(
        PerfParams,
        {
            "input_len": "8192,31744",
            "batch_size": [1, 4],
            "input_vision_shape": "1024,1024;512,512",
        },
    )
    assert len(params.grid()) == 4 and params.limit_images == 2
    assert params.engine_params().engine_args["enable_prefix_caching"] is False
    assert params.engine_params().engine_args["mm_processor_cache_gb"] == 0
    with pytest.raises(ParameterError, match="input_vision_shape"):
        build(PerfParams, {"input_vision_shape": "1024"})


def test_length_mismatch_fails_the_run():
    from kit.engines.timing import RequestTiming
    from kit.engines.types import Completion
    from kit.perf.sweep import LengthMismatch, RequestFailed, verify_lengths
    from kit.perf.workload import BenchRequest

    def answered(prompt_tokens: int, output_tokens: int, error: str | None = None) -> Completion:
        timing = RequestTiming(None, None, None, None, None, None, prompt_tokens, output_tokens)
        return Completion("x", "length", prompt_tokens, output_tokens, timing, error=error)

    request = BenchRequest(text="p", prompt="p", images=[], num_tokens=10)
    verify_lengths([answered(10, 4)], [request], 4)
    with pytest.raises(LengthMismatch, match="9 prompt tokens"):
        verify_lengths([answered(9, 4)], [request], 4)
    with pytest.raises(LengthMismatch, match="3 tokens instead of 4"):
        verify_lengths([answered(10, 3)], [request], 4)
    # a server that does not honour ignore_eos: its lengths are recorded, not refused
    verify_lengths([answered(10, 3)], [request], 4, exact_output=False)
    with pytest.raises(RequestFailed, match="HTTP 500"):
        verify_lengths([answered(0, 0, error="HTTP 500: boom")], [request], 4)
