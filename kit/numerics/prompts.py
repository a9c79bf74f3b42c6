"""The numerics prompt set: read from params/ (versioned, matched by id across runs), and
turned into requests for one model.

A prompt is model-independent in the file; its request is built for the model at hand: the
chat prompt in the family's format, the pictures drawn or loaded, and a long context made
from a fixed passage to ``context_tokens`` tokens of the model's own tokenizer (so "8k" is
8k for every model). MMMU questions are added from a dataset folder when one is given, in
the official order, each with its first image, as the MMMU notebook sends them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from kit.core.images import load_images, synthetic_image
from kit.core.params import ParameterError
from kit.core.paths import PARAMS_DIR, REPO_ROOT
from kit.models.family import ModelFamily

DEFAULT_PROMPT_SET = "params/numerics-prompts-v1.yaml"
KINDS = ("text", "image", "images", "long", "mmmu")
SYNTHETIC = "synthetic:"

#: The long-context passage: numbered sections, so no two are the same text.
PASSAGE = (
    "Section {n}. The harbour town kept its records in a ledger of {n} pages. Every "
    "morning the keeper counted the boats, noted the weather and the height of the tide, "
    "and wrote down who had arrived and who had left. "
)


@dataclass(frozen=True)
class PromptSpec:
    """One prompt of the set, as the file gives it."""

    id: str
    kind: str
    question: str
    images: tuple[str, ...] = ()  # "demo", "synthetic:WxH:SEED", or a file path
    context_tokens: int = 0  # long prompts: the passage's length before the question


@dataclass(frozen=True)
class PromptSet:
    """A versioned prompt set and where it came from (its digest tells two files apart)."""

    version: int
    source: str
    digest: str
    prompts: tuple[PromptSpec, ...]

    def select(self, ids: Sequence[str]) -> PromptSet:
        """Only ``ids`` (in the set's order); empty keeps all. ParameterError naming an
        unknown id."""
        if not ids:
            return self
        known = {p.id for p in self.prompts}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ParameterError(
                f"Parameter 'prompts': {', '.join(map(repr, unknown))} not in the prompt set "
                f"{self.source} (it has {', '.join(sorted(known))}). Fix the ids, or pass "
                "-p prompts '[]' for all of them."
            )
        wanted = set(ids)
        chosen = tuple(p for p in self.prompts if p.id in wanted)
        return PromptSet(self.version, self.source, self.digest, chosen)


@dataclass
class NumericsRequest:
    """A prompt built for one model: the chat prompt (image tags included), the user text
    a server's chat template gets, and the decoded pictures."""

    id: str
    kind: str
    question: str
    prompt: str
    images: list[Image.Image] = field(default_factory=list)


def resolve_prompt_set(value: str) -> Path:
    """A path as given, relative to the working directory or else to the repository (so
    the default works from a notebook's folder too)."""
    path = Path(value).expanduser()
    for candidate in (path, REPO_ROOT / path, PARAMS_DIR / path):
        if candidate.is_file():
            return candidate
    raise ParameterError(
        f"Parameter 'prompt_set': {value!r} is not a file. Give a prompt set such as "
        f"{DEFAULT_PROMPT_SET} (the default), or a YAML file of the same layout."
    )


def _fail(source: str, where: str, problem: str) -> ParameterError:
    return ParameterError(
        f"Parameter 'prompt_set': {source}, {where}: {problem}. Fix the file (its layout is "
        f"{DEFAULT_PROMPT_SET}'s), or use the default set."
    )


def _spec(entry: Any, index: int, source: str) -> PromptSpec:
    where = f"prompt {index + 1}"
    if not isinstance(entry, dict):
        raise _fail(source, where, "not a mapping of id, kind, question")
    unknown = set(entry) - {"id", "kind", "question", "images", "context_tokens"}
    if unknown:
        raise _fail(source, where, f"unknown key(s) {', '.join(sorted(unknown))}")
    pid, kind, question = entry.get("id"), entry.get("kind"), entry.get("question")
    if not isinstance(pid, str) or not pid.strip():
        raise _fail(source, where, "no id")
    where = f"prompt {pid!r}"
    if kind not in KINDS:
        raise _fail(source, where, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(question, str) or not question.strip():
        raise _fail(source, where, "no question")
    images = entry.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise _fail(source, where, "images must be a list of strings")
    context = entry.get("context_tokens", 0)
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise _fail(source, where, f"context_tokens {context!r} is not a whole number ≥ 0")
    for image in images:
        if image.startswith(SYNTHETIC):
            _synthetic_size(image, source, where)
    return PromptSpec(pid, kind, question, tuple(images), context)


def _synthetic_size(spec: str, source: str = "", where: str = "") -> tuple[int, int, int]:
    try:
        size, seed = spec[len(SYNTHETIC) :].split(":")
        width, height = (int(v) for v in size.lower().split("x"))
        return width, height, int(seed)
    except ValueError:
        raise _fail(source, where, f"{spec!r} is not synthetic:WIDTHxHEIGHT:SEED") from None


def load_prompt_set(value: str = DEFAULT_PROMPT_SET) -> PromptSet:
    """The set in ``value``, checked whole: every problem is a ParameterError naming the
    file and the prompt, raised before an engine starts."""
    path = resolve_prompt_set(value)
    data = path.read_bytes()
    source = str(value)
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise _fail(source, "the file", f"not YAML ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("prompts"), list):
        raise _fail(source, "the file", "no 'prompts' list")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail(source, "the file", "no integer 'version'")
    specs = tuple(_spec(entry, i, source) for i, entry in enumerate(document["prompts"]))
    ids = [s.id for s in specs]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise _fail(source, "the file", f"id(s) {', '.join(twice)} appear twice")
    return PromptSet(version, source, hashlib.sha256(data).hexdigest()[:16], specs)


def load_pictures(spec: PromptSpec) -> list[Image.Image]:
    """The prompt's pictures: drawn (synthetic:WxH:SEED) or loaded (ParameterError naming a
    missing or unreadable file)."""
    out = []
    for image in spec.images:
        if image.startswith(SYNTHETIC):
            width, height, seed = _synthetic_size(image)
            out.append(synthetic_image(width, height, seed=seed))
        else:
            out.extend(load_images([image], "prompt_set"))
    return out


def long_context(count: Callable[[str], int], tokens: int) -> str:
    """The passage, section by section, up to ``tokens`` tokens as ``count`` counts them
    (the largest whole number of sections within it)."""
    text, n = "", 1
    # Sections are about the same length: jump near the end, then step one at a time.
    per_section = max(1, count(PASSAGE.format(n=100)))
    n = max(1, tokens // per_section - 2)
    text = "".join(PASSAGE.format(n=i) for i in range(1, n))
    while True:
        longer = text + PASSAGE.format(n=n)
        if count(longer) > tokens:
            return text
        text, n = longer, n + 1


def build_requests(
    prompt_set: PromptSet,
    family: ModelFamily,
    count_tokens: Callable[[str], int],
) -> list[NumericsRequest]:
    """Every prompt of the set as a request for ``family``'s model."""
    out = []
    for spec in prompt_set.prompts:
        question = spec.question
        if spec.context_tokens:
            question = long_context(count_tokens, spec.context_tokens) + "\n\n" + question
        images = load_pictures(spec)
        out.append(
            NumericsRequest(
                spec.id, spec.kind, question, family.prompt(question, len(images)), images
            )
        )
    return out
