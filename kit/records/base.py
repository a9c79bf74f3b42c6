"""What every results.json section class shares: the error for an unusable file, and
tolerant reading (a missing or malformed section reads as "not recorded", unknown keys of
a newer kit are ignored)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any


class ResultsError(ValueError):
    """A results.json that cannot be used (missing, unreadable, other schema, malformed)."""


def mapping(value: Any) -> Mapping[str, Any]:
    """A section as a mapping; anything else (missing, null, a stray value) as empty."""
    return value if isinstance(value, Mapping) else {}


def known_fields(cls: type, section: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``section`` that name fields of ``cls``."""
    return {f.name: section[f.name] for f in fields(cls) if f.name in section}
