"""The embedded tiny checkpoint: complete, valid, deterministic, rebuilt when damaged."""

import hashlib
import json
import shutil

import pytest

from kit.models.builds import is_valid
from kit.models.phi3v import tiny
from kit.models.phi3v.tiny import (
    DEFAULT_SEED,
    PROCESSOR_SOURCE,
    identity,
    sources,
)
from kit.models.tiny_tokenizer import ensure_tokenizer


def test_folder_has_what_vllm_needs(smoke_model):
    names = {p.name for p in smoke_model.iterdir()}
    for required in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "processing_phi3_v.py",
        "generation_config.json",
    ):
        assert required in names
    config = json.loads((smoke_model / "config.json").read_text())
    assert config["architectures"] == ["Phi3VForCausalLM"]
    assert config["max_position_embeddings"] == 131072
    assert config["vocab_size"] == 32064
    assert config["hidden_size"] // config["num_attention_heads"] == 64
    assert config["img_processor"]["image_dim_out"] == 1024


def test_tokenizer_has_chat_specials_and_plain_image_tags(smoke_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smoke_model)
    for special in ("<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>", "<s>"):
        assert len(tokenizer(special, add_special_tokens=False).input_ids) == 1
    # vLLM matches <|image_1|> by its token sequence, so it must not be one special token
    assert len(tokenizer("<|image_1|>", add_special_tokens=False).input_ids) > 1
    assert len(tokenizer) >= 30000  # random ids must decode to visible text
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|user|>\nhi<|end|>\n<|assistant|>\n"


def test_weights_load_with_expected_names(smoke_model):
    from safetensors import safe_open

    with safe_open(smoke_model / "model.safetensors", "pt") as fh:
        names = set(fh.keys())
        assert fh.get_slice("model.vision_embed_tokens.glb_GN").get_shape() == [1, 1, 4096]
    assert "model.layers.1.self_attn.qkv_proj.weight" in names
    assert "lm_head.weight" in names
    assert any(n.startswith("model.vision_embed_tokens.img_processor.vision_model.") for n in names)


def test_damaged_folder_is_not_valid(smoke_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_model, copy)
    assert is_valid(copy, identity(DEFAULT_SEED), sources())
    (copy / "config.json").write_text("{}")
    assert not is_valid(copy, identity(DEFAULT_SEED), sources())


def test_folder_built_with_an_older_processor_is_rebuilt(smoke_model, tmp_path, monkeypatch):
    changed = tmp_path / "phi3v_processor.py"
    changed.write_text(PROCESSOR_SOURCE.read_text() + "\n# changed\n")
    assert is_valid(smoke_model, identity(DEFAULT_SEED), sources())
    monkeypatch.setattr(tiny, "PROCESSOR_SOURCE", changed)
    assert not is_valid(smoke_model, identity(DEFAULT_SEED), sources())


def digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.slow  # one build, ~50 s (most of it training the tokenizer)
def test_a_damaged_folder_is_rebuilt_byte_identical(smoke_model, tmp_path, monkeypatch):
    """ensure_smoke_model reuses a valid folder as it is, and rebuilds one whose weights
    were truncated (each file's sha256 is in the manifest); the build is deterministic, so
    the rebuilt folder is the original byte for byte."""
    trained = ensure_tokenizer(DEFAULT_SEED).parent  # in the suite's cache
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))
    shutil.copytree(trained, tmp_path / trained.name)  # not trained again (20 s) for this test
    folder = tiny.smoke_model_dir()
    assert folder.parent == tmp_path
    shutil.copytree(smoke_model, folder)
    inode = folder.stat().st_ino
    assert tiny.ensure_smoke_model() == folder and folder.stat().st_ino == inode  # reused
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a cut copy
    assert not is_valid(folder, identity(DEFAULT_SEED), sources())
    assert tiny.ensure_smoke_model() == folder
    assert folder.stat().st_ino != inode  # built anew, then moved in place
    assert is_valid(folder, identity(DEFAULT_SEED), sources())
    assert digests(folder) == digests(smoke_model)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".smoke")] == [
        f".{folder.name}.lock"
    ]  # no staging folder left behind
