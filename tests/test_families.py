"""Every model family beside Phi3V that this machine's vLLM can load, on its tiny model: the
kit's token counts against vLLM's, the demo, an exact-length perf point and two MMMU
questions (one engine: tests/family_checks.py), one request through a server the kit
starts, and the rule that a family lives in its own package."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from kit.core.paths import REPO_ROOT
from kit.models.registry import FAMILIES, NAMED_MODELS

from .conftest import REPO, kit_in_process

TINY_OTHERS = [
    model.name
    for model in NAMED_MODELS.values()
    if model.kind == "tiny" and model.family != "phi3v" and FAMILIES[model.family].runs_here()
]


@pytest.fixture(scope="module", params=TINY_OTHERS)
def checks(request, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp(request.param) / "checks.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.family_checks", request.param, str(out)],
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
@pytest.mark.parametrize("model", TINY_OTHERS)
def test_a_demo_through_a_server_the_kit_starts(model, tmp_path):
    """vllm serve renders the prompt from the checkpoint's chat template; the kit's count of
    the same turn must equal the server's."""
    proc = kit_in_process(
        "run", "demo", "-f", "params/smoke-demo.yaml", "-p", "model", model,
        "-p", "backend", "server", "-p", "max_output_len", "8",
        env={"KIT_OUTPUTS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = tmp_path.glob("*-demo-*")
    demo = json.loads((folder / "results.json").read_text())["demo"]
    assert demo["num_prompt_tokens"] == demo["expected_prompt_tokens"]


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


def test_the_families_that_run_on_cpu_have_a_tiny_model():
    """Phi3V and Idefics3 run everywhere; the families that need torchvision have no tiny
    model yet (docs/models.md), so on a machine where it loads they are not required to."""
    runs = {name for name, family in FAMILIES.items() if family.runs_here()}
    assert {"phi3v", "idefics3"} <= runs
    tiny = {m.family for m in NAMED_MODELS.values() if m.kind == "tiny"}
    assert {"phi3v", "idefics3"} <= tiny
    for name in FAMILIES:  # each is documented
        assert f"`{name}`" in (REPO_ROOT / "docs" / "models.md").read_text(), name
