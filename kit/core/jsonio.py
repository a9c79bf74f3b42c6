"""Strict JSON for every file the kit writes: no NaN or Infinity, which strict readers reject.

``json.dumps`` writes bare ``NaN`` by default; a results.json holding one cannot be read by
browsers, ``jq`` or most other languages. Run records write non-finite floats as ``null`` (a
measurement that does not exist); everything else refuses them (``allow_nan=False``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kit.core.files import write_atomic


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (in lists, tuples and dicts too) as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text: ValueError on NaN or infinity (a data record holding one is a bug to
    surface); objects JSON does not know (paths, dates) as their str()."""
    kwargs.setdefault("default", str)
    return json.dumps(value, allow_nan=False, **kwargs)


def write_json(path: Path, value: Any) -> Path:
    """Write a record as indented strict JSON, whole or not at all (kit.core.files). A
    non-finite measurement becomes null rather than failing the run at its last step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, dumps(finite(value), indent=2) + "\n")
