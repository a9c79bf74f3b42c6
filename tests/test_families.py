"""Every model family beside Phi3V that this machine's vLLM can load, on its tiny model: the
kit's token counts against vLLM's, the demo, an exact-length perf point and two MMMU
questions in one engine (tests/family_checks.py); for every tiny model, the family's chat
turn against the checkpoint's own chat template; and the rule that a family lives in its
own package.

Every family runs offline, where each count is also taken through vLLM's chat rendering
(``LLM.chat`` with the messages a server gets: what a server's count would be); a server
start costs this 2-core suite ~25 s more than an offline engine, per family (server mode is
tests/test_server_e2e.py's and tests/test_numerics_e2e.py's, on Phi3V)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from kit.core.paths import REPO_ROOT
from kit.models.registry import FAMILIES, NAMED_MODELS

from .conftest import REPO

TINY_OTHERS = [
    model.name
    for model in NAMED_MODELS.values()
    if model.kind == "tiny" and model.family != "phi3v" and FAMILIES[model.family].runs_here()
]


@pytest.fixture(scope="module", params=TINY_OTHERS)
def checks(request, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp(request.param) / "checks.json"
    backend = "offline"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.family_checks", request.param, str(out), backend],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_the_kit_counts_each_image_size_as_vllm_does(checks):
    for count in checks["counts"]:
        assert count["kit_prompt_tokens"] == count["vllm_prompt_tokens"], count
        if checks["backend"] == "offline":  # and as a server renders the chat messages
            assert count["kit_prompt_tokens"] == count["vllm_chat_prompt_tokens"], count
    assert len({c["kit_image_tokens"] for c in checks["counts"]}) > 1  # the sizes differ


@pytest.mark.slow
def test_the_demo_answers_with_the_prompt_length_the_kit_counted(checks):
    assert checks["demo"]["prompt_tokens"] > 0 and checks["demo"]["text"]


@pytest.mark.slow
def test_a_perf_point_has_exactly_input_len_prompt_tokens(checks):
    assert checks["perf"]["prompt_tokens"] == [1024]


@pytest.mark.slow
def test_mmmu_questions_are_asked_with_one_tag_per_image_and_parsed(checks):
    for answer in checks["mmmu"]:
        assert answer["tags"] == answer["images"] == 1, answer
        assert answer["parsed"] not in (None, "", []), answer


@pytest.mark.slow
def test_vllm_computes_what_transformers_computes_in_float32(checks):
    """Where transformers implements the family (Idefics3/SmolVLM): the same prompt lengths
    (so the kit's prompts and image preprocessing are the model's own), the same greedy
    tokens, and teacher-forced logprobs within float32 rounding. Elsewhere the reference
    is refused before anything runs, saying why."""
    numerics = checks["numerics"]
    if checks["family"] != "idefics3":
        assert "Parameter 'reference'" in numerics["refused"], numerics
        return
    assert numerics["prompt_tokens"] == numerics["reference_prompt_tokens"]
    comparison = numerics["comparison"]
    assert comparison["verdict"] in ("identical", "close"), comparison
    assert not numerics["forced_problems"]
    for prompt in comparison["prompts"]:
        assert prompt["first_divergence"] is None, prompt
        assert prompt["forced"]["positions"] > 0
        assert prompt["forced"]["max_abs_delta"] <= 1e-4, prompt


def _tiny_model(model: str):
    """Qwen2-VL's AutoProcessor loads its video processor, which needs torchvision: where
    vLLM cannot load the family either, tests/test_family_models.py checks the template."""
    family = NAMED_MODELS[model].family
    needs_torchvision = family in ("qwen2vl", "qwen25vl") and not FAMILIES[family].runs_here()
    reason = "Qwen2-VL's processor needs torchvision (tests/test_family_models.py checks it)"
    return pytest.param(model, marks=pytest.mark.skipif(needs_torchvision, reason=reason))


@pytest.mark.parametrize(
    "model", [_tiny_model(m.name) for m in NAMED_MODELS.values() if m.kind == "tiny"]
)
def test_the_family_s_turn_is_what_the_checkpoint_s_chat_template_renders(model):
    """A server renders the prompt from the checkpoint's chat template; the kit counts the
    family's own turn. They must be the same text, or a server's count differs from the
    kit's. Phi3V's template takes the text with its numbered tags written in; the others
    take image parts, then the text (what the kit sends a server)."""
    from transformers import AutoProcessor

    family = FAMILIES[NAMED_MODELS[model].family]
    processor = AutoProcessor.from_pretrained(NAMED_MODELS[model].ensure(), trust_remote_code=True)
    for images in (0, 1, 2):
        if family.image_tag_pattern.groups:  # numbered tags, typed into the text
            tags = "".join(family.image_tag.format(index=i + 1) for i in range(images))
            content: str | list = f"{tags}What is it?"
        else:
            content = [{"type": "image"}] * images + [{"type": "text", "text": "What is it?"}]
        # as vLLM resolves it: the processor's template, else the tokenizer's
        renderer = processor if getattr(processor, "chat_template", None) else processor.tokenizer
        rendered = renderer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        assert rendered == family.prompt("What is it?", images), (model, images)


def test_a_family_lives_in_its_own_package():
    """Only the registry names a family's package; nothing else in kit/ imports it."""
    kit = REPO_ROOT / "kit"
    packages = [p.parent for p in (kit / "models").glob("*/family.py")]
    assert len(packages) >= 4
    for package in packages:
        name = package.name
        pattern = re.compile(rf"\bkit\.models\.{name}\b")
        outside = [
            str(path.relative_to(kit))
            for path in kit.rglob("*.py")
            if package not in path.parents
            and path != kit / "models" / "registry.py"
            and pattern.search(path.read_text())
        ]
        assert outside == [], (name, outside)


def test_every_family_has_a_tiny_and_a_dummy_model_and_is_documented():
    """Phi3V, Idefics3 and MiniCPM-V run everywhere (docs/models.md: what runs where); every
    family has a tiny model for the pipeline and a full-size dummy for speed and memory."""
    runs = {name for name, family in FAMILIES.items() if family.runs_here()}
    assert {"phi3v", "idefics3", "minicpmv"} <= runs
    for name in FAMILIES:
        kinds = sorted(m.kind for m in NAMED_MODELS.values() if m.family == name)
        assert kinds == ["dummy", "tiny"], (name, kinds)
    for name in FAMILIES:  # each is documented
        assert f"`{name}`" in (REPO_ROOT / "docs" / "models.md").read_text(), name
