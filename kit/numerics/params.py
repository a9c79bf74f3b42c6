"""The numerics notebook's parameters: the prompt set, how much of each answer to record,
and the reference to check against.

``reference`` is "" (record only), ``transformers`` (a float32 reference made here by HF
transformers, for models small enough), or another numerics run: its folder or its
numerics.jsonl. Everything about the reference is checked in ``preflight``, before an
engine starts: the file reads whole, and it was made with the same prompt set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kit.core.params import ParameterError
from kit.engines.params import AnswerParams
from kit.numerics.prompts import DEFAULT_PROMPT_SET, load_prompt_set
from kit.records.numerics import NUMERICS_FILE, PromptNumerics, read_numerics_jsonl
from kit.records.results import RESULTS_FILE, load_document

TRANSFORMERS = "transformers"
MAX_TOP_K = 20  # vLLM's default max_logprobs


@dataclass
class NumericsParams(AnswerParams):
    prompt_set: str = DEFAULT_PROMPT_SET
    prompts: list[str] = field(default_factory=list)  # ids to run; empty: the whole set
    top_k: int = 5  # alternatives recorded per position
    max_tokens: int = 64  # greedy tokens per prompt (fewer where the model stops)
    reference: str = ""  # "", "transformers", or a numerics run's folder / numerics.jsonl
    dataset: str = ""  # an MMMU folder: its first questions are added to the prompts
    mmmu_questions: int = 4  # how many, with a dataset

    def check(self) -> None:
        if self.limit_images is None:  # as many as the prompts need
            chosen = load_prompt_set(self.prompt_set).select(self.prompts).prompts
            self.limit_images = max([1, *(len(p.images) for p in chosen)])
        super().check()
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise ParameterError(
                f"Parameter 'top_k' must be between 1 and {MAX_TOP_K} (vLLM's max_logprobs), "
                f"got {self.top_k}."
            )
        if self.max_tokens < 1:
            raise ParameterError("Parameter 'max_tokens' must be at least 1.")
        if self.mmmu_questions < 0:
            raise ParameterError("Parameter 'mmmu_questions' must be 0 or more.")
        self.reference = self.reference.strip()

    def preflight(self) -> None:
        prompt_set = load_prompt_set(self.prompt_set).select(self.prompts)
        if self.reference == TRANSFORMERS:
            from kit.models.registry import family_for_model, resolve_model
            from kit.numerics.transformers_reference import check_transformers_reference

            path = resolve_model(self.model)
            check_transformers_reference(path, family_for_model(path), self.trust_remote_code)
        elif self.reference:
            records, digest = read_reference(self.reference)
            if digest is not None and digest != prompt_set.digest:
                raise ParameterError(
                    f"Parameter 'reference': {self.reference!r} was made with another prompt "
                    f"set (digest {digest}, this run's {prompt_set.source} is "
                    f"{prompt_set.digest}). Run both with the same prompt_set file."
                )
            if not records:
                raise ParameterError(f"Parameter 'reference': {self.reference!r} holds no prompts.")
        if self.dataset:
            from kit.mmmu.dataset import check_dataset, resolve_dataset

            check_dataset(resolve_dataset(self.dataset), "validation")
        super().preflight()


def reference_file(value: str) -> Path:
    """The numerics.jsonl a reference names (a run folder or the file itself)."""
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / NUMERICS_FILE
    if not path.is_file():
        raise ParameterError(
            f"Parameter 'reference': {value!r} is neither a numerics run folder (with "
            f"{NUMERICS_FILE}) nor such a file. Give a run folder under outputs/, its "
            f"{NUMERICS_FILE}, or 'transformers'."
        )
    return path


def read_reference(value: str) -> tuple[list[PromptNumerics], str | None]:
    """The reference's records and the digest of the prompt set that made them (None where
    no results.json lies beside the file)."""
    path = reference_file(value)
    try:
        records = read_numerics_jsonl(path)
    except (OSError, ValueError) as exc:
        raise ParameterError(
            f"Parameter 'reference': {exc}. Give a complete numerics run."
        ) from None
    digest = None
    beside = path.parent / RESULTS_FILE
    if beside.is_file():
        try:
            run = load_document(beside).get("numerics_run") or {}
        except Exception:  # an unreadable results.json: the records alone decide
            run = {}
        digest = run.get("prompt_set_digest") if isinstance(run, dict) else None
    return records, digest
