"""The numerics notebook's inputs without an engine: the versioned prompt set, long contexts
in the model's tokens, the parameter checks that refuse a bad run before anything starts,
and reading a backend's logprobs (vLLM's objects and a server's JSON) into positions."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from kit.core.params import ParameterError
from kit.engines.logprobs import (
    forced_from_prompt_logprobs,
    position_from_chat,
    position_from_vllm,
)
from kit.numerics.params import NumericsParams
from kit.numerics.prompts import (
    DEFAULT_PROMPT_SET,
    PASSAGE,
    build_requests,
    load_prompt_set,
    long_context,
)
from kit.runs.parameters import preflight

from .conftest import REPO


def words(text: str) -> int:
    return len(text.split())


def test_the_default_set_has_sixteen_prompts_of_every_kind_up_to_8k_tokens():
    prompt_set = load_prompt_set()
    assert prompt_set.version == 1 and len(prompt_set.prompts) == 16
    kinds = {p.kind for p in prompt_set.prompts}
    assert kinds == {"text", "image", "images", "long"}
    assert max(p.context_tokens for p in prompt_set.prompts) <= 8192
    assert max(len(p.images) for p in prompt_set.prompts) == 3
    assert len({p.id for p in prompt_set.prompts}) == 16
    again = load_prompt_set(DEFAULT_PROMPT_SET)
    assert again.digest == prompt_set.digest and len(prompt_set.digest) == 16


def test_a_long_context_is_the_most_whole_sections_within_its_tokens():
    for target in (100, 1000, 4096):
        text = long_context(words, target)
        assert words(text) <= target
        assert words(text) + words(PASSAGE.format(n=999)) > target  # one more would not fit
        assert text.startswith("Section 1.")


def test_requests_carry_the_family_prompt_and_the_pictures(tmp_path):
    from kit.models.registry import family_for_model, resolve_model

    family = family_for_model(resolve_model("smoke"))
    chosen = load_prompt_set().select(["images-three", "long-1k"])
    three, long = build_requests(chosen, family, words)
    assert [im.size for im in three.images] == [(480, 640), (512, 512), (800, 600)]
    assert three.prompt == family.prompt(three.question, 3)
    assert long.question.endswith("Summarise the passage above in three sentences.")
    assert 900 < words(long.question) <= 1024 + 10


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("version: 1\nprompts: [{id: a, kind: text}]\n", "no question"),
        ("version: 1\nprompts: [{id: a, kind: video, question: q}]\n", "kind 'video'"),
        ("prompts: [{id: a, kind: text, question: q}]\n", "no integer 'version'"),
        (
            "version: 1\nprompts: [{id: a, kind: text, question: q}, "
            "{id: a, kind: text, question: r}]\n",
            "appear twice",
        ),
        (
            "version: 1\nprompts: [{id: a, kind: image, question: q, images: ['synthetic:big']}]\n",
            "synthetic:WIDTHxHEIGHT:SEED",
        ),
        ("version: 1\nprompts: [{id: a, kind: text, question: q, colour: red}]\n", "unknown key"),
    ],
)
def test_a_malformed_prompt_set_is_named_with_the_prompt_and_the_fix(tmp_path, content, says):
    path = tmp_path / "set.yaml"
    path.write_text(content)
    with pytest.raises(ParameterError) as caught:
        load_prompt_set(str(path))
    assert "Parameter 'prompt_set'" in str(caught.value) and says in str(caught.value)


def test_refusals_come_before_any_engine(tmp_path):
    def refused(**values) -> str:
        with pytest.raises(ParameterError) as caught:
            preflight(NumericsParams, values)
        return str(caught.value)

    assert "not in the prompt set" in refused(prompts=["no-such-prompt"])
    assert "Parameter 'top_k'" in refused(top_k=50)
    assert "Parameter 'prompt_set'" in refused(prompt_set=str(tmp_path / "missing.yaml"))
    assert "neither a numerics run folder" in refused(reference=str(tmp_path))
    broken = tmp_path / "numerics.jsonl"
    broken.write_text('{"id": "a"}\n')
    assert "line 1" in refused(reference=str(broken))
    # a reference made with another prompt set: its results.json says so
    run = tmp_path / "run"
    run.mkdir()
    record = {
        "id": "text-capital", "kind": "text", "num_images": 0, "prompt_tokens": 3,
        "generated": [], "forced": None, "forced_on": None, "generated_text": "",
    }  # fmt: skip
    (run / "numerics.jsonl").write_text(json.dumps(record) + "\n")
    (run / "results.json").write_text(
        json.dumps(
            {
                "schema_version": 2,
                "numerics_run": {"prompt_set": "x", "prompt_set_digest": "0" * 16},
            }
        )
    )
    assert "another prompt set" in refused(reference=str(run))
    assert "no class in transformers" in refused(reference="transformers")


def logprob(value: float, rank: int, text: str = "") -> SimpleNamespace:
    return SimpleNamespace(logprob=value, rank=rank, decoded_token=text)


def test_a_vllm_position_keeps_the_token_and_only_ranks_up_to_k():
    entry = {7: logprob(-3.0, 9, "x"), 1: logprob(-0.5, 1), 2: logprob(-1.0, 2), 3: logprob(-2, 3)}
    position = position_from_vllm(7, entry, top_k=2)
    assert (position.token, position.text, position.logprob, position.rank) == (7, "x", -3.0, 9)
    assert position.top_k == ((1, -0.5), (2, -1.0))


def test_a_chat_position_takes_its_rank_from_the_top_logprobs():
    item = {
        "token": "token_id:5",
        "logprob": -1.5,
        "top_logprobs": [
            {"token": "token_id:4", "logprob": -0.5},
            {"token": "token_id:5", "logprob": -1.5},
        ],
    }
    position = position_from_chat(item, top_k=5)
    assert (position.token, position.rank, position.top_k) == (5, 2, ((4, -0.5), (5, -1.5)))
    with pytest.raises(ValueError, match="token_id"):
        position_from_chat({**item, "token": "hello"}, top_k=5)


def test_a_re_tokenized_continuation_is_forced_on_the_prefix_that_survived():
    prompt, continuation = [10, 11, 12], [20, 21, 22, 23]
    entries = [None, *({t: logprob(-0.1, 1)} for t in [11, 12, 20, 21, 30, 31])]
    ran = [10, 11, 12, 20, 21, 30, 31]  # 22, 23 came back as 30, 31
    forced = forced_from_prompt_logprobs(ran, entries, prompt, continuation, top_k=1)
    assert [p.token for p in forced.positions] == [20, 21]
    assert "from token 2 on" in forced.problem and "first 2 of 4" in forced.problem
    whole = forced_from_prompt_logprobs(
        [*prompt, *continuation], [None, *({t: logprob(-0.1, 1)} for t in [11, 12, *continuation])],
        prompt, continuation, top_k=1,
    )  # fmt: skip
    assert whole.problem is None and len(whole.positions) == 4
    other = forced_from_prompt_logprobs([10, 99, 12, 20], entries, prompt, continuation, top_k=1)
    assert other.positions is None and "another prompt" in other.problem


def test_the_smoke_params_file_is_a_float32_run_of_the_tiny_model():
    text = (REPO / "params" / "smoke-numerics.yaml").read_text()
    assert "dtype: float32" in text and "model: smoke" in text
