"""The float32 transformers reference (``-p reference transformers``): what it refuses before
an engine starts, and the records it makes on the tiny Idefics3, with no vLLM engine."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from kit.core.params import ParameterError
from kit.models.checkpoint import DUMMY_MARKER
from kit.models.idefics3.family import IDEFICS3
from kit.models.phi3v.family import PHI3V
from kit.models.registry import family_for_model, resolve_model
from kit.models.tokens import PromptTokenCounter
from kit.numerics import transformers_reference as tr
from kit.numerics.prompts import PromptSet, PromptSpec, build_requests
from kit.records.numerics import PromptNumerics, read_numerics_jsonl, write_numerics_jsonl

TOP_K = 5
MAX_TOKENS = 16
PROMPTS = PromptSet(
    version=1,
    source="test",
    digest="test",
    prompts=(
        PromptSpec("text-capital", "text", "What is the capital of France?"),
        PromptSpec("image-small", "image", "Describe the shapes.", ("synthetic:336x336:12",)),
    ),
)


def write_safetensors(folder, **shapes):
    from safetensors.torch import save_file

    save_file(
        {name: torch.zeros(shape) for name, shape in shapes.items()}, folder / "model.safetensors"
    )


def folder_with(tmp_path, config, weights=True):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if weights:
        write_safetensors(folder, a=(3, 4), b=(5,))
    return folder


# --- refusals: config.json and headers only --------------------------------------------------


def test_tiny_phi3v_is_refused_for_its_missing_modeling_code(smoke_model):
    with pytest.raises(ParameterError) as caught:
        tr.check_transformers_reference(str(smoke_model), PHI3V, True)
    message = str(caught.value)
    assert message.startswith("Parameter 'reference'")
    assert "Phi-3.5-vision" in message and "no class in transformers" in message
    assert "remote code" in message and "-p reference <run folder>" in message
    assert "folder the kit built holds only its processor's" in message
    assert "\n" not in message


def test_dummy_folder_is_refused(tmp_path):
    config = {"architectures": ["Idefics3ForConditionalGeneration"], DUMMY_MARKER: True}
    with pytest.raises(ParameterError, match="holds no weights") as caught:
        tr.check_transformers_reference(str(folder_with(tmp_path, config)), IDEFICS3, True)
    assert "-p reference <run folder>" in str(caught.value)


def test_folder_without_weight_files_is_refused(tmp_path):
    config = {"architectures": ["Idefics3ForConditionalGeneration"]}
    folder = folder_with(tmp_path, config, weights=False)
    with pytest.raises(ParameterError, match=r"holds no weights \(no \*.safetensors"):
        tr.check_transformers_reference(str(folder), IDEFICS3, True)


def test_hub_id_is_refused():
    with pytest.raises(ParameterError, match="not a checkpoint folder"):
        tr.check_transformers_reference("HuggingFaceTB/SmolVLM-Instruct", IDEFICS3, True)


def test_too_big_a_model_is_refused_naming_its_size(tmp_path, monkeypatch):
    folder = folder_with(tmp_path, {"architectures": ["Idefics3ForConditionalGeneration"]})
    tr.check_transformers_reference(str(folder), IDEFICS3, True)  # 17 parameters fit
    monkeypatch.setattr(tr, "memory_limit", lambda: 17 * 4 - 1)
    with pytest.raises(ParameterError) as caught:
        tr.check_transformers_reference(str(folder), IDEFICS3, True)
    message = str(caught.value)
    assert "17 parameters (0.00 B), 0.00 GiB in float32" in message
    assert "this machine's" in message and "-p reference <run folder>" in message


def test_remote_modeling_code_needs_trust(tmp_path):
    config = {
        "architectures": ["SomeVLM"],
        "auto_map": {"AutoModelForCausalLM": "modeling.SomeVLM"},
    }
    folder = str(folder_with(tmp_path, config))
    with pytest.raises(ParameterError, match="trust_remote_code true"):
        tr.check_transformers_reference(folder, IDEFICS3, False)
    tr.check_transformers_reference(folder, IDEFICS3, True)


def test_unknown_architecture_without_remote_code_is_refused(tmp_path):
    config = {"architectures": ["SomeVLM"], "auto_map": {"AutoConfig": "configuration.C"}}
    with pytest.raises(ParameterError, match="SomeVLM has no class in transformers"):
        tr.check_transformers_reference(str(folder_with(tmp_path, config)), IDEFICS3, True)


def test_parameters_are_counted_from_the_headers(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    write_safetensors(folder, a=(3, 4), b=(5,))
    (folder / "model.safetensors").rename(folder / "part-1.safetensors")
    write_safetensors(folder, c=(2, 2, 2))
    (folder / "model.safetensors").rename(folder / "part-2.safetensors")
    shutil.copy(folder / "part-1.safetensors", folder / "consolidated.safetensors")  # not indexed
    weight_map = {"a": "part-1.safetensors", "b": "part-1.safetensors", "c": "part-2.safetensors"}
    (folder / tr.SAFETENSORS_INDEX).write_text(json.dumps({"weight_map": weight_map}))
    assert tr.weight_parameters(folder, {}) == 12 + 5 + 8
    (folder / tr.SAFETENSORS_INDEX).unlink()
    assert tr.weight_parameters(folder, {}) == 12 + 5 + 8 + 17


def test_the_tiny_idefics3_passes_the_check():
    path = resolve_model("smoke-idefics3")
    tr.check_transformers_reference(path, family_for_model(path), True)


# --- one position, as vLLM records it ---------------------------------------------------------


def test_position_ranks_and_top_k_follow_vllms_convention():
    logprobs = torch.log_softmax(torch.tensor([1.0, 3.0, 2.0, 3.0, 0.5, 2.0]), dim=-1)
    best = tr.position(logprobs, 1, 3, str)
    assert best.rank == 1 and best.text == "1"
    assert [t for t, _ in best.top_k] == [1, 3, 2]  # ties by token id, k of them
    assert best.top_k[0][1] == best.logprob == pytest.approx(float(logprobs[1]))
    outside = tr.position(logprobs, 4, 2, str)
    assert outside.rank == 6 and [t for t, _ in outside.top_k] == [1, 3]  # own logprob only
    # 1 + the tokens strictly more likely: a tie shares the better rank (vLLM counts >=,
    # which would give 4 here; they differ only at exact ties)
    assert tr.position(logprobs, 5, 2, str).rank == 3


# --- the reference on the tiny Idefics3 -------------------------------------------------------


@pytest.fixture(scope="module")
def idefics3():
    path = resolve_model("smoke-idefics3")
    family = family_for_model(path)
    counter = PromptTokenCounter(path, family, num_crops=1)
    requests = build_requests(
        PROMPTS, family, lambda text: len(counter.tokenizer.encode(text, add_special_tokens=False))
    )
    return path, family, counter, requests


@pytest.fixture(scope="module")
def records(idefics3):
    path, family, _, requests = idefics3
    return [tr.transformers_reference(path, family, requests, TOP_K, MAX_TOKENS) for _ in range(2)]


def test_the_reference_is_deterministic(records):
    first, second = records
    assert [r.to_dict() for r in first] == [r.to_dict() for r in second]


def test_records_describe_the_prompts(idefics3, records):
    _, _, counter, requests = idefics3
    for request, record in zip(requests, records[0], strict=True):
        assert (record.id, record.kind) == (request.id, request.kind)
        assert record.num_images == len(request.images)
        sizes = [image.size for image in request.images]
        assert record.prompt_tokens == counter.prompt_tokens(request.prompt, sizes)
        assert len(record.generated) == MAX_TOKENS  # random weights: no EOS this early
        ids = [p.token for p in record.generated]
        assert record.generated_text == counter.tokenizer.decode(ids, skip_special_tokens=True)
        assert record.forced_on == "self"
    assert [r.num_images for r in records[0]] == [0, 1]


def test_greedy_tokens_rank_first_with_k_alternatives(records):
    for record in records[0]:
        for p in (*record.generated, *(record.forced or ())):
            assert p.rank == 1
            assert len(p.top_k) == TOP_K
            assert p.top_k[0] == (p.token, p.logprob)
            assert [lp for _, lp in p.top_k] == sorted((lp for _, lp in p.top_k), reverse=True)
            assert p.text


def test_the_forced_pass_reads_what_was_generated(records):
    for record in records[0]:
        assert record.forced is not None
        assert [p.token for p in record.forced] == [p.token for p in record.generated]
        for forced, generated in zip(record.forced, record.generated, strict=True):
            assert forced.logprob == pytest.approx(generated.logprob, abs=1e-4)
            assert [t for t, _ in forced.top_k] == [t for t, _ in generated.top_k]


def test_records_survive_numerics_jsonl(tmp_path, records):
    path = write_numerics_jsonl(tmp_path / "numerics.jsonl", records[0])
    assert read_numerics_jsonl(path) == records[0]
    assert PromptNumerics.of(records[0][1].to_dict()) == records[0][1]


def test_greedy_stops_after_an_eos_it_keeps(idefics3, records):
    path, family, _, requests = idefics3
    model = tr.load_model(path, True)
    processor = tr.load_processor(path, family, True)
    assert tr.stop_ids(model, processor.tokenizer) == [
        processor.tokenizer.eos_token_id,  # vLLM stops at the tokenizer's EOS too
        model.generation_config.eos_token_id,
    ]
    third = records[0][0].generated[2].token  # made an EOS: the continuation ends there
    record = tr.reference_prompt(model, processor, requests[0], TOP_K, MAX_TOKENS, [third])
    assert [p.token for p in record.generated] == [p.token for p in records[0][0].generated[:3]]
    assert record.generated == records[0][0].generated[:3]
    assert len(record.forced or ()) == 3


def test_the_tiny_model_is_nearly_uniform(idefics3, records):
    """Random weights: every greedy logprob lies within a nat or so of -ln(vocab), so a
    comparison on this model checks the plumbing, not the numerics of a trained model."""
    _, _, counter, _ = idefics3
    uniform = -math.log(len(counter.tokenizer))
    logprobs = [p.logprob for r in records[0] for p in r.generated]
    assert all(abs(lp - uniform) < 1.5 for lp in logprobs)
