"""A float32 reference made by HF transformers on CPU (``-p reference transformers``), for
models small enough.

The model is loaded in float32 with eager attention (the plain reference), the prompt goes
through the checkpoint's own processor (the chat prompt already holds the family's image
tags; the processor expands them, as vLLM's multimodal path does with the same processor),
and the continuation is greedy as vLLM's: the argmax of the raw logits at every step (ties
to the lowest id), stopping after the tokenizer's EOS or one of generation_config's
``eos_token_id``, that token kept as the last one, as vLLM's ``token_ids`` keep it. Each
position is recorded as kit.engines.logprobs records vLLM's: the log_softmax of the float32
logits, the rank (1 + the tokens strictly more likely: vLLM counts those at least as likely,
which differs only at an exact tie) and the top-k (ranks 1..k, most likely first, ties by
token id). A token's text is ``tokenizer.decode([id])`` (vLLM also restores a SentencePiece
leading space that decode drops: texts are for display, tokens are compared by id). A
second pass, one forward over the prompt and the continuation, reads the same tokens'
logprobs as a prefill would (``forced_on="self"``).

:func:`check_transformers_reference` decides from config.json and the weight files'
headers alone, before any engine starts, whether the reference can be made here.
"""

from __future__ import annotations

import inspect
import json
import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from kit.core.params import ParameterError
from kit.engines.memory import CGROUP_LIMIT, GIB
from kit.models.builds import read_build_manifest
from kit.models.checkpoint import (
    CONFIG_FILE,
    WEIGHT_FILES,
    architectures,
    has_config,
    has_weight_files,
    is_weightless_folder,
    read_config,
)
from kit.models.family import ModelFamily
from kit.models.figures import dtype_bytes
from kit.numerics.prompts import NumericsRequest
from kit.records.numerics import Position, PromptNumerics, ranked

#: The float32 weights may take at most this share of the machine's memory: the forward
#: passes, the processor and the notebook need the rest.
MEMORY_SHARE = 0.5
FLOAT32_BYTES = 4
#: auto_map entries that load a checkpoint's own modeling code, in the order tried.
REMOTE_MODEL_CLASSES = (
    "AutoModelForImageTextToText",
    "AutoModelForVision2Seq",
    "AutoModelForCausalLM",
)
#: Names for messages, where the architecture's is not the model's.
MODEL_NAMES = {
    "Phi3VForCausalLM": "Phi-3.5-vision",
    "MiniCPMV": "MiniCPM-V",
    "MiniCPMO": "MiniCPM-o",
}
SAFETENSORS_INDEX = "model.safetensors.index.json"
INSTEAD = (
    "use a reference run instead (-p reference <run folder>: a numerics run of the model "
    "made elsewhere)"
)


def _refuse(problem: str, fix: str) -> ParameterError:
    return ParameterError(
        f"Parameter 'reference': transformers cannot make a float32 reference here: {problem}. "
        f"Fix: {fix}."
    )


# --- which class loads the model ---------------------------------------------------------


def transformers_class(config: Mapping[str, Any]) -> str | None:
    """The first of config.json's ``architectures`` that transformers has a class for (its
    lazy module lists them without importing a model)."""
    import transformers

    names = set(dir(transformers))
    return next((a for a in architectures(dict(config)) if a in names), None)


def remote_class(config: Mapping[str, Any]) -> str | None:
    """The Auto class whose auto_map entry names the folder's own modeling code."""
    auto_map = config.get("auto_map") or {}
    if not isinstance(auto_map, Mapping):
        return None
    return next((name for name in REMOTE_MODEL_CLASSES if auto_map.get(name)), None)


def _model_name(config: Mapping[str, Any]) -> str:
    archs = architectures(dict(config))
    known = next((MODEL_NAMES[a] for a in archs if a in MODEL_NAMES), None)
    shown = ", ".join(archs) or "none"
    return f"{known} ({shown})" if known else shown


# --- how big it is ------------------------------------------------------------------------


def safetensors_parameters(path: Path) -> int:
    """Elements of every tensor in one .safetensors file, from its header alone (8 bytes of
    length, then JSON of dtype, shape and offsets)."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(
        math.prod(entry["shape"])
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, Mapping)
    )


def weight_parameters(folder: str | Path, config: Mapping[str, Any]) -> int:
    """The checkpoint's parameter count: from the safetensors headers (the files the index
    names, where there is one), else the weight files' bytes over config.json's dtype."""
    folder = Path(folder)
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map") or {}
        files = sorted({folder / name for name in weight_map.values()})
    else:
        files = sorted(folder.glob("*.safetensors"))
    if files:
        return sum(safetensors_parameters(f) for f in files)
    stored = sum(
        f.stat().st_size for pattern in ("*.bin", "*.pt", "*.pth") for f in folder.glob(pattern)
    )
    return stored // dtype_bytes(None, config)


def machine_memory() -> int:
    """The machine's memory in bytes, or the container's limit where it is lower."""
    total = int(psutil.virtual_memory().total)
    try:
        limit = CGROUP_LIMIT.read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def memory_limit() -> int:
    """The most float32 weight bytes a reference may load here."""
    return int(machine_memory() * MEMORY_SHARE)


# --- the check before anything runs ----------------------------------------------------------


def check_transformers_reference(
    model_path: str, family: ModelFamily, trust_remote_code: bool
) -> None:
    """ParameterError (naming parameter 'reference' and the fix) where a float32
    transformers reference cannot be made: a hub id rather than a folder, a folder without
    weights, an architecture transformers has no class for (and no remote modeling code in
    the folder, or remote code not trusted), or float32 weights over MEMORY_SHARE of this
    machine's memory. Reads config.json and the safetensors headers only."""
    if not has_config(model_path):
        raise _refuse(
            f"{model_path!r} is not a checkpoint folder (a hub id?), and the reference reads "
            "the weights from disk",
            f"download the checkpoint (python -m kit run download ...) and pass its folder as "
            f"the model, or {INSTEAD}",
        )
    config = read_config(model_path)
    if is_weightless_folder(model_path) or not has_weight_files(model_path):
        why = (
            "a dummy folder: vLLM makes random weights for it, which transformers cannot share"
            if is_weightless_folder(model_path)
            else f"no {', '.join(WEIGHT_FILES)} file"
        )
        raise _refuse(
            f"{model_path} holds no weights ({why})",
            f"use a checkpoint with weights (a download, or a tiny model such as smoke-idefics3), "
            f"or {INSTEAD}",
        )
    if transformers_class(config) is None:
        import transformers

        remote = remote_class(config)
        name = _model_name(config)
        if remote is None:
            built = read_build_manifest(model_path) is not None
            raise _refuse(
                f"{name} has no class in transformers {transformers.__version__}; a downloaded "
                "checkpoint's own remote code would be used (its config.json's auto_map names "
                f"it: {' / '.join(REMOTE_MODEL_CLASSES)}), but {model_path}/{CONFIG_FILE} names "
                "no modeling code"
                + (
                    f" (a {family.name} folder the kit built holds only its processor's)"
                    if built
                    else ""
                ),
                INSTEAD,
            )
        if not trust_remote_code:
            raise _refuse(
                f"{name} has no class in transformers {transformers.__version__}; the "
                f"checkpoint's own modeling code ({remote} in auto_map) would be used, and "
                "trust_remote_code is false",
                f"-p trust_remote_code true, or {INSTEAD}",
            )
    parameters = weight_parameters(model_path, config)
    needed, limit = parameters * FLOAT32_BYTES, memory_limit()
    if needed > limit:
        wanted = math.ceil(needed / MEMORY_SHARE / GIB)
        raise _refuse(
            f"{_model_name(config)} has {parameters:,} parameters ({parameters / 1e9:.2f} B), "
            f"{needed / GIB:.2f} GiB in float32, over {MEMORY_SHARE:.0%} of this machine's "
            f"{machine_memory() / GIB:.2f} GiB of memory ({limit / GIB:.2f} GiB)",
            f"make the reference on a machine with at least {wanted} GiB of memory, or {INSTEAD}",
        )


# --- the reference -------------------------------------------------------------------------


def load_model(model_path: str, trust_remote_code: bool) -> Any:
    """The model in float32 with eager attention, on CPU, in eval mode."""
    import torch
    import transformers

    config = read_config(model_path)
    name = transformers_class(config)
    if name is not None:
        cls, remote = getattr(transformers, name), False
    else:
        auto = remote_class(config)
        if auto is None:  # check_transformers_reference refuses it first
            raise RuntimeError(f"{model_path}: transformers has no class for it")
        cls, remote = getattr(transformers, auto), True
    model = cls.from_pretrained(
        model_path,
        dtype=torch.float32,
        attn_implementation="eager",
        trust_remote_code=remote and trust_remote_code,
    )
    return model.eval()


def load_processor(model_path: str, family: ModelFamily, trust_remote_code: bool) -> Any:
    """The family's processor as kit.models.tokens.PromptTokenCounter loads it."""
    if family.load_processor is not None:
        return family.load_processor(model_path, trust_remote_code)
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_path, trust_remote_code=trust_remote_code)


def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The ids vLLM stops greedy decoding at: the tokenizer's EOS and generation_config's
    ``eos_token_id`` (one id or a list)."""
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    candidates: Iterable[Any] = configured if isinstance(configured, list | tuple) else [configured]
    for token in (getattr(tokenizer, "eos_token_id", None), *candidates):
        if token is not None and int(token) not in ids:
            ids.append(int(token))
    return ids


def position(logprobs: Any, token: int, top_k: int, text: Callable[[int], str]) -> Position:
    """One position from a row of float32 logprobs over the vocabulary: the token's logprob,
    its rank (1 + the tokens strictly more likely) and ranks 1..k (ties by token id)."""
    import torch

    own = logprobs[token]
    # Every token at least as likely as the k-th (more than k only where it ties with
    # others), sorted most likely first, ties by token id: cheaper than sorting the vocabulary
    kth = torch.topk(logprobs, min(top_k, logprobs.shape[-1])).values[-1]
    ids = torch.nonzero(logprobs >= kth).flatten().tolist()
    top = ranked(zip(ids, logprobs[ids].tolist(), strict=True))
    return Position(
        token=int(token),
        text=text(int(token)),
        logprob=float(own),
        rank=1 + int((logprobs > own).sum()),
        top_k=tuple(top[:top_k]),
    )


def _extended(inputs: Mapping[str, Any], continuation: Any) -> dict[str, Any]:
    """The processor's inputs with ``continuation`` (1 x n ids) after the prompt: the
    attention mask with ones, other per-token ids (token types) with zeros (text)."""
    import torch

    ids = inputs["input_ids"]
    out = dict(inputs)
    for key, value in inputs.items():
        if (
            not isinstance(value, torch.Tensor)
            or value.shape != ids.shape
            or value.is_floating_point()
        ):
            continue
        if key == "input_ids":
            tail = continuation.to(value.dtype)
        elif key == "attention_mask":
            tail = torch.ones_like(continuation, dtype=value.dtype)
        else:
            tail = torch.zeros_like(continuation, dtype=value.dtype)
        out[key] = torch.cat([value, tail], dim=1)
    return out


def _generate(
    model: Any, inputs: Mapping[str, Any], stops: list[int], max_tokens: int
) -> tuple[list[int], list[Any]]:
    """Greedy ids and the raw float32 logits of each step (transformers' generate with the
    KV cache, no logits processor: the model's generation_config is replaced by one holding
    only its special ids, so no repetition penalty or other default of it applies)."""
    import torch
    from transformers import GenerationConfig

    previous = model.generation_config
    pad = previous.pad_token_id if previous.pad_token_id is not None else stops[0]
    model.generation_config = GenerationConfig(
        bos_token_id=previous.bos_token_id, eos_token_id=stops, pad_token_id=pad
    )
    try:
        out = model.generate(
            **inputs,
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_tokens,
            output_logits=True,
            return_dict_in_generate=True,
        )
    finally:
        model.generation_config = previous
    prompt_length = inputs["input_ids"].shape[1]
    ids = out.sequences[0, prompt_length:].tolist()
    logits = [step[0].to(torch.float32) for step in out.logits]
    if len(logits) != len(ids):
        raise RuntimeError(f"generate returned {len(ids)} tokens and {len(logits)} logits rows")
    for i, (token, row) in enumerate(zip(ids, logits, strict=True)):
        if int(torch.argmax(row)) != token:
            raise RuntimeError(
                f"transformers' generate chose token {token} at step {i}, the raw logits' "
                f"argmax is {int(torch.argmax(row))}: a logits processor ran"
            )
    return ids, logits


def _forced_logits(model: Any, inputs: Mapping[str, Any], continuation: list[int]) -> Any:
    """The float32 logits that predict each continuation token, from one forward over the
    prompt and the continuation less its last token (n rows for n tokens)."""
    import torch

    n = len(continuation)
    extended = _extended(inputs, torch.tensor([continuation[:-1]], dtype=torch.long))
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        extended["logits_to_keep"] = n
    logits = model(**extended, use_cache=False).logits[0, -n:].to(torch.float32)
    if logits.shape[0] != n:
        raise RuntimeError(f"the forced pass returned {logits.shape[0]} rows for {n} tokens")
    return logits


def reference_prompt(
    model: Any,
    processor: Any,
    request: NumericsRequest,
    top_k: int,
    max_tokens: int,
    stops: list[int],
) -> PromptNumerics:
    """One request's greedy continuation and its forced pass."""
    import torch

    tokenizer = processor.tokenizer
    pieces: dict[int, str] = {}

    def text(token: int) -> str:
        if token not in pieces:
            pieces[token] = tokenizer.decode([token])
        return pieces[token]

    inputs = dict(
        processor(text=request.prompt, images=request.images or None, return_tensors="pt")
    )
    with torch.no_grad():
        ids, logits = _generate(model, inputs, stops, max_tokens)
        forced_logits = _forced_logits(model, inputs, ids)
    generated = tuple(
        position(torch.log_softmax(row, dim=-1), token, top_k, text)
        for token, row in zip(ids, logits, strict=True)
    )
    forced = tuple(
        position(row, token, top_k, text)
        for token, row in zip(ids, torch.log_softmax(forced_logits, dim=-1), strict=True)
    )
    return PromptNumerics(
        id=request.id,
        kind=request.kind,
        num_images=len(request.images),
        prompt_tokens=int(inputs["input_ids"].shape[1]),
        generated=generated,
        forced=forced,
        forced_on="self",
        generated_text=tokenizer.decode(ids, skip_special_tokens=True),
    )


def transformers_reference(
    model_path: str,
    family: ModelFamily,
    requests: Sequence[NumericsRequest],
    top_k: int,
    max_tokens: int,
    trust_remote_code: bool = True,
) -> list[PromptNumerics]:
    """Every request's float32 greedy continuation and forced pass, made by transformers on
    CPU (:func:`check_transformers_reference` first: its ParameterError where it cannot)."""
    check_transformers_reference(model_path, family, trust_remote_code)
    model = load_model(model_path, trust_remote_code)
    processor = load_processor(model_path, family, trust_remote_code)
    stops = stop_ids(model, processor.tokenizer)
    return [reference_prompt(model, processor, r, top_k, max_tokens, stops) for r in requests]
