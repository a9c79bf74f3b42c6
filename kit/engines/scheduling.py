"""Scheduling modes: the engine arguments and environment of ``vendor`` and ``vllm`` scheduling.

``vendor`` schedules a batch as the vendor's vLLM 0.6.1 (V0) did, so perf numbers compare
like for like: every request is in the scheduler before the first step, chunked prefill off,
``max_num_batched_tokens`` = ``max_model_len``. ``vllm`` keeps the installed vLLM's defaults.
docs/methodology.md ("Scheduling modes") explains why.
"""

from __future__ import annotations

from typing import Any

# What each scheduling mode means; docs/methodology.md ("Scheduling modes") explains why.
SCHEDULING_MODES = {
    "vendor": (
        "as the vendor's vLLM 0.6.1 (V0): every request of a batch is in the scheduler before "
        "its first step (in-process engine core), chunked prefill off, max_num_batched_tokens "
        "= max_model_len, max_num_seqs 256"
    ),
    "vllm": "the installed vLLM's own defaults (V1 front end and engine core in two processes)",
}

V0_MAX_NUM_SEQS = 256  # vLLM 0.6's default


def scheduling_args(scheduling: str, max_model_len: int) -> dict[str, Any]:
    """Engine arguments a scheduling mode sets (pure)."""
    if scheduling != "vendor":
        return {}
    return {
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max_model_len,
        "max_num_seqs": V0_MAX_NUM_SEQS,
    }


def scheduling_environment(scheduling: str) -> dict[str, str]:
    """Environment a scheduling mode needs before vLLM builds its engine.

    V1's LLM runs the engine core in a second process that starts stepping on the first
    request it receives, while the front end is still preprocessing the next image: a
    "batch" is then prefilled one request after another. With multiprocessing off the
    engine core lives in this process (vLLM's InprocClient) and only steps inside
    ``LLM.generate``'s loop, after every request of the batch has been added.
    """
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0" if scheduling == "vendor" else "1"}
