"""The one way device names are compared: "L40s", "L40S" and "NVIDIA L40S" are told apart
from "L40" by a key that ignores case, spaces and punctuation."""

from __future__ import annotations

import re


def device_key(name: str | None) -> str:
    """Lookup key of a device name: lower-case letters and digits only ("L40 S" -> "l40s")."""
    return re.sub(r"[^0-9a-z]", "", str(name or "").lower())


def same_device(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and device_key(a) == device_key(b)
