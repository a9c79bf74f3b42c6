"""What vLLM's caches served while the kit timed requests, as results.json records it for a
perf point (``perf.points[].caches``) and for the demo's request (``demo.caches``).

A prefix-cache hit skips prefill of the cached tokens and a multimodal-cache hit skips the
image processor, so a timing that had either is not the cold number its name promises.
The counts come from vLLM itself (kit.engines: ``num_cached_tokens`` offline, the server's
``/metrics`` counters over HTTP); reports show them beside the numbers they qualify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeGuard

from kit.records.base import known_fields, mapping


@dataclass(frozen=True)
class CacheUse:
    """What the engine's caches served while a point was timed: prompt tokens found in the
    prefix cache (of those looked up) and images found in the multimodal cache (of those
    looked up). Any hit means the timings are not those of a cold request. None: not
    reported (a server without ``/metrics``)."""

    source: str  # where the counts come from
    prefix_hit_tokens: int | None = None
    prefix_query_tokens: int | None = None
    mm_hits: int | None = None
    mm_queries: int | None = None

    @property
    def hit(self) -> bool | None:
        """Whether any cache served the timed requests (None: nothing was reported)."""
        counts = [self.prefix_hit_tokens, self.mm_hits]
        if all(count is None for count in counts):
            return None
        return any(count for count in counts)

    def plus(self, other: CacheUse) -> CacheUse:
        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return CacheUse(
            source=self.source,
            prefix_hit_tokens=add(self.prefix_hit_tokens, other.prefix_hit_tokens),
            prefix_query_tokens=add(self.prefix_query_tokens, other.prefix_query_tokens),
            mm_hits=add(self.mm_hits, other.mm_hits),
            mm_queries=add(self.mm_queries, other.mm_queries),
        )

    def describe(self) -> str:
        """One line for reports: what was looked up and what was served."""
        if self.hit is None:
            return f"cache hits not reported ({self.source})"
        parts = []
        if self.prefix_hit_tokens is not None:
            parts.append(
                f"prefix cache {self.prefix_hit_tokens} of {self.prefix_query_tokens or 0} "
                "prompt tokens"
            )
        if self.mm_hits is not None:
            parts.append(f"multimodal cache {self.mm_hits} of {self.mm_queries or 0} images")
        counts = ", ".join(parts)
        if self.hit:
            return f"CACHED: {counts} served from cache ({self.source}): not a cold measurement"
        return f"no cache hits ({counts}; {self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit": self.hit}

    @classmethod
    def of(cls, section: Any) -> CacheUse | None:
        section = mapping(section)
        if not section:
            return None
        return cls(**{"source": "not recorded", **known_fields(cls, section)})


def served_from_cache(caches: CacheUse | None) -> TypeGuard[CacheUse]:
    """Whether a cache served a number's requests (False also where nothing was recorded)."""
    return bool(caches is not None and caches.hit)


def cache_use(batches: Sequence[CacheUse | None]) -> CacheUse | None:
    """Several timed batches' cache use as one; None where no batch reported any."""
    reported = [b for b in batches if b is not None]
    if not reported:
        return None
    total = reported[0]
    for batch in reported[1:]:
        total = total.plus(batch)
    return total
