"""The kit's vLLM general plugin (entry point ``vllm.general_plugins`` in pyproject.toml),
which vLLM loads in each of its processes, the engine core included.

On a CPU build of torch, ``torch.cuda.is_current_stream_capturing()`` raises ("Tried to
instantiate dummy base class") instead of answering. vLLM 0.32's MiniCPM-V resampler
(``Resampler2_5.forward``, since vLLM PR #41996) asks it on every image, unguarded, so every
MiniCPM-V image request fails on a CPU. Without CUDA there is no stream to capture, so False
is the true answer: the plugin gives it there, and changes nothing where CUDA is built in or
the call already answers. Every run that it applies to records :data:`CPU_CAPTURE_NOTE`.
"""

from __future__ import annotations

CPU_CAPTURE_NOTE = (
    "torch.cuda.is_current_stream_capturing() answers False (no CUDA stream on a CPU build of "
    "torch, where it raises; vLLM's MiniCPM-V resampler asks it): the kit's vLLM plugin"
)


def capture_query_raises() -> bool:
    """Whether this torch cannot answer the stream-capture question (a CPU build)."""
    import torch

    if torch.cuda.is_available():
        return False
    try:
        torch.cuda.is_current_stream_capturing()
    except RuntimeError:
        return True
    return False


def register() -> None:
    """Called by vLLM in each process; idempotent."""
    import torch

    if capture_query_raises():
        torch.cuda.is_current_stream_capturing = _not_capturing


def _not_capturing() -> bool:
    return False


def compat_note() -> str | None:
    """What the plugin changes in an engine started from this environment, for its record."""
    import torch

    if torch.cuda.is_current_stream_capturing is _not_capturing or capture_query_raises():
        return CPU_CAPTURE_NOTE
    return None
