"""The MMMU notebook's parameters: dataset, split, subjects, image policy and batching.

The defaults are the vendor's accuracy run where it has one (validation, image_1 only, greedy,
``max_output_len`` 10); ``batch_size`` 1 is its one question per call, 0 lets vLLM batch
chunks. ``preflight`` checks the dataset before the engine's own checks. The parameters that
decide the answers (``ANSWER_PARAMETERS``) are the run's fingerprint: a ``--resume`` that
changes one is refused before it touches the folder. vLLM's multimodal processor cache is off
unless ``engine_args`` sets it, since every MMMU image is seen once and the cache would only
grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError, check_generation
from kit.engines.params import AnswerParams
from kit.mmmu.dataset import FIXTURE, check_dataset, check_split, resolve_dataset, resolve_subjects
from kit.mmmu.predictions import PREDICTIONS_META_FILE, refuse_changed_answers
from kit.mmmu.questions import IMAGE_POLICIES

ALL = "all"


#: Engine arguments this notebook sets unless engine_args gives them. Every MMMU image is seen
#: once, so vLLM's multimodal processor cache (4 GiB by default, kept in the frontend AND the
#: engine core) only grows with the number of questions; off, peak memory stays flat.
ENGINE_DEFAULTS = {"mm_processor_cache_gb": 0}


#: Parameters that change answers: a resumed run must keep them. Besides the question and
#: the sampling, what changes the kernels' rounding: how questions are batched (a batched
#: kernel rounds differently), the scheduling, the context length, tensor parallelism, the
#: backend and any engine argument (a folder from before these were recorded is checked on
#: the ones it has).
ANSWER_PARAMETERS = (
    "model",
    "dataset",
    "split",
    "image_policy",
    "num_crops",
    "max_output_len",
    "temperature",
    "dtype",
    "seed",
    "batch_size",
    "chunk_size",
    "scheduling",
    "max_model_len",
    "tensor_parallel_size",
    "backend",
    "engine_args",
)


@dataclass
class MMMUParams(AnswerParams):
    dataset: str = FIXTURE  # MMMU-layout folder, hub id (MMMU/MMMU), or "fixture"
    split: str = "validation"
    subjects: list[str] = field(default_factory=lambda: [ALL])
    limit: int | None = None  # questions per subject; None = all
    image_policy: str = "first"  # "first" = image_1 only (official, vendor); "all"
    max_output_len: int = 10
    temperature: float = 0.0
    batch_size: int = 0  # 0 = chunks of chunk_size, vLLM batches; 1 = vendor's sequential
    chunk_size: int = 32  # questions per llm.generate call when batch_size is 0
    gallery_size: int = 12  # wrong answers shown in the report

    def check(self) -> None:
        super().check()
        if not self.dataset.strip():
            raise ParameterError(
                "Parameter 'dataset' is empty: give an MMMU folder, the hub id MMMU/MMMU, or "
                "'fixture' for the synthetic test set."
            )
        check_split(self.split)
        resolve_subjects(self.subject_names())
        if self.limit is not None and self.limit < 1:
            raise ParameterError(
                "Parameter 'limit' (questions per subject) must be at least 1, or None for all."
            )
        if self.image_policy not in IMAGE_POLICIES:
            raise ParameterError(
                f"Parameter 'image_policy' must be 'first' (image_1 only: the official and "
                f"vendor protocol) or 'all' (every image the question and options reference), "
                f"got {self.image_policy!r}."
            )
        check_generation(self.max_output_len, self.temperature, "vendor: 10", "0 = greedy, vendor")
        if self.batch_size < 0:
            raise ParameterError(
                "Parameter 'batch_size' must be 0 (let vLLM batch, chunk by chunk), 1 (one "
                "question at a time, the vendor's mode) or a larger fixed batch."
            )
        if self.chunk_size < 1:
            raise ParameterError("Parameter 'chunk_size' must be at least 1.")
        if self.gallery_size < 0:
            raise ParameterError("Parameter 'gallery_size' must be >= 0 (0 = no gallery).")

    def subject_names(self) -> list[str] | None:
        """None for all subjects ([] or ['all']), else the names given."""
        names = [s for s in self.subjects if s]
        return None if not names or names == [ALL] else names

    def preflight(self) -> None:
        """The dataset folder exists and holds the subjects and columns; then the engine's."""
        root = resolve_dataset(self.dataset, self.split, self.subject_names())
        check_dataset(root, self.split, self.subject_names())
        super().preflight()

    def check_resume(self, folder: Path) -> None:
        """Before a --resume touches the folder: refuse parameters that change the answers."""
        meta = folder / PREDICTIONS_META_FILE
        if meta.is_file():
            refuse_changed_answers(meta, self.answer_fingerprint())

    def answer_fingerprint(self) -> dict[str, Any]:
        """The parameters that decide the answers (predictions.meta.json). ``chunk_size``
        groups questions into one batch only when ``batch_size`` is 0."""
        values = {k: getattr(self, k) for k in ANSWER_PARAMETERS}
        values["engine_args"] = {**ENGINE_DEFAULTS, **self.engine_args}  # as the engine got them
        if self.batch_size > 0:
            values["chunk_size"] = None
        return values

    @property
    def effective_batch(self) -> int:
        """Questions per llm.generate call."""
        return self.batch_size if self.batch_size > 0 else self.chunk_size
