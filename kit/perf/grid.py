"""The perf grid's pure checks: the sweep axes and image shapes parsed, and whether a point fits.

Papermill may pass a list as a comma-separated string (``-p input_len 8192,16384``) and the
vendor wrote image shapes as ``1024,1024``; both are parsed here into positive integers, with
a message naming the parameter. A point whose prompt cannot hold its template and image tokens,
or whose prompt plus output exceeds ``max_model_len``, is refused with the values that would
fit; a batch that cannot sit in the KV cache at once gets a warning, since vLLM then serialises
part of it (as in the vendor's L40s 31744 x 4 row).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import numpy as np


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+]?\d+", text):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        value = int(text)
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        value = int(value)
    elif not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return int(value)


def parse_int_list(value: Any, name: str) -> list[int]:
    """Parse a scalar, list, or comma-separated string ("8192,16384", as papermill -p may
    pass) into a list of positive ints; duplicates dropped, order kept."""
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        items: list[Any] = [p for p in (s.strip() for s in text.split(",")) if p]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise ValueError(f"{name}: no values given ({value!r})")
    out: list[int] = []
    for item in items:
        n = _positive_int(item, name)
        if n not in out:
            out.append(n)
    return out


def expand_grid(input_len: Any, batch_size: Any, max_output_len: Any) -> list[dict[str, int]]:
    """Cartesian product of the sweep axes, input_len outermost (the vendor table's order)."""
    axes = {
        "input_len": parse_int_list(input_len, "input_len"),
        "batch_size": parse_int_list(batch_size, "batch_size"),
        "max_output_len": parse_int_list(max_output_len, "max_output_len"),
    }
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def parse_vision_shape(value: Any, name: str = "input_vision_shape") -> list[tuple[int, int]]:
    """Parse 'H,W;H,W' (one pair per image, like the vendor's --input-vision-shape=1024,1024)
    into [(H, W), ...]. Also accepts 'HxW' pairs or an already parsed sequence of pairs;
    'none' means text-only prompts (no image)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return []
    if isinstance(value, str):
        images = [s.strip() for s in value.strip().split(";")]
        if not value.strip() or any(not s for s in images):
            raise ValueError(f"{name}: expected 'H,W' per image separated by ';', got {value!r}")
        pairs: list[Any] = [re.split(r"\s*[,xX]\s*", s) for s in images]
    elif isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name}: no image shapes given")
        scalar = (int, np.integer, str)
        if len(value) == 2 and all(
            isinstance(v, scalar) and not re.search(r"[,xX;]", str(v)) for v in value
        ):
            value = [value]  # a single (H, W)
        pairs = [re.split(r"\s*[,xX]\s*", v.strip()) if isinstance(v, str) else v for v in value]
    else:
        raise ValueError(f"{name}: expected 'H,W;H,W' or a list of (H, W), got {value!r}")
    shapes: list[tuple[int, int]] = []
    for i, pair in enumerate(pairs, start=1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{name}: image {i} must be 'H,W' (two integers), got {pair!r}")
        h = _positive_int(pair[0], f"{name} (image {i} height)")
        w = _positive_int(pair[1], f"{name} (image {i} width)")
        shapes.append((h, w))
    return shapes


def check_fits(
    input_len: int, max_output_len: int, max_model_len: int, min_prompt_tokens: int
) -> None:
    """Raise ValueError before starting the engine if the scenario cannot run as asked.

    ``min_prompt_tokens`` is what the prompt costs with no filler text (chat template +
    image tokens); input_len below it cannot be honoured. input_len + max_output_len above
    max_model_len would make vLLM reject the prompt or cut generation short.
    """
    for name, v in (
        ("input_len", input_len),
        ("max_output_len", max_output_len),
        ("max_model_len", max_model_len),
    ):
        _positive_int(v, name)
    if input_len < min_prompt_tokens:
        raise ValueError(
            f"input_len={input_len} is below the {min_prompt_tokens} tokens the prompt template "
            f"and image(s) already take: set input_len >= {min_prompt_tokens}, or use fewer/"
            "smaller images or fewer num_crops."
        )
    if input_len + max_output_len > max_model_len:
        fixes = []
        if max_model_len - max_output_len >= min_prompt_tokens:
            fixes.append(f"lower input_len to <= {max_model_len - max_output_len}")
        if max_model_len - input_len >= 1:
            fixes.append(f"lower max_output_len to <= {max_model_len - input_len}")
        fixes.append(f"raise max_model_len to >= {input_len + max_output_len}")
        raise ValueError(
            f"input_len + max_output_len = {input_len} + {max_output_len} = "
            f"{input_len + max_output_len} exceeds max_model_len={max_model_len}: "
            + ", or ".join(fixes)
            + "."
        )


def kv_cache_warning(
    batch_size: int,
    input_len: int,
    max_output_len: int,
    kv_cache_tokens: int,
    block_size: int | None = None,
) -> str | None:
    """Warning text when the whole batch cannot sit in the KV cache at once, else None.

    vLLM then runs the requests partly one after another, so TPS drops and TTFT/prefill
    include waiting: the vendor's L40s 31744 x 4 row (TPS 29.52, ~139 s wall for ~32 s
    of decode) is such a case. With ``block_size`` each request is rounded up to whole
    KV blocks, as the engine allocates them.
    """
    per_request = input_len + max_output_len
    if block_size:
        per_request = math.ceil(per_request / block_size) * block_size
    needed = batch_size * per_request
    if needed <= kv_cache_tokens:
        return None
    fit = kv_cache_tokens // per_request
    return (
        f"KV cache holds {kv_cache_tokens} tokens but batch_size={batch_size} x "
        f"(input_len {input_len} + max_output_len {max_output_len}) needs {needed}: only "
        f"{fit} request(s) fit at once, so the batch will be partly serialized (lower TPS, "
        "queueing inside TTFT/prefill), as in the vendor's L40s 31744 x 4 row. Lower "
        "batch_size or input_len, or give the KV cache more memory to measure a concurrent batch."
    )
