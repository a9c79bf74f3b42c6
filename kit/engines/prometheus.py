"""vLLM's Prometheus ``/metrics`` histograms, read before and after a load point.

A server's own view of its latencies (time to first token, prefill, decode, queue,
end-to-end, inter-token) beside what the client measured shows how much of the client's
latency is network and front end. vLLM exports cumulative histograms; the difference of
two scrapes is what the point added. Parsing is pure: the text comes from an HTTP GET.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# results key -> vLLM histogram (seconds)
SERVER_HISTOGRAMS = {
    "ttft_ms": "vllm:time_to_first_token_seconds",
    "itl_ms": "vllm:inter_token_latency_seconds",
    "prefill_ms": "vllm:request_prefill_time_seconds",
    "decode_ms": "vllm:request_decode_time_seconds",
    "queue_ms": "vllm:request_queue_time_seconds",
    "e2e_ms": "vllm:e2e_request_latency_seconds",
}

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


@dataclass(frozen=True)
class HistogramTotals:
    """``_sum`` and ``_count`` of one histogram, summed over its label sets (models,
    engines)."""

    total: float
    count: float


def parse_histograms(text: str) -> dict[str, HistogramTotals]:
    """Every histogram's summed ``_sum`` and ``_count`` in a Prometheus text exposition."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        name = match["name"]
        if name.endswith("_sum"):
            sums[name[:-4]] = sums.get(name[:-4], 0.0) + value
        elif name.endswith("_count"):
            counts[name[:-6]] = counts.get(name[:-6], 0.0) + value
    return {name: HistogramTotals(sums[name], counts[name]) for name in sums.keys() & counts.keys()}


@dataclass(frozen=True)
class ServerLatency:
    """What a histogram gained between two scrapes: observations and their mean, ms."""

    count: int
    mean_ms: float | None

    def to_dict(self) -> dict:
        return {"count": self.count, "mean_ms": self.mean_ms}


def server_latencies(before: str, after: str) -> dict[str, ServerLatency]:
    """The server-side means of one point, from the scrapes before and after it; a
    histogram the server does not export is left out."""
    first, second = parse_histograms(before), parse_histograms(after)
    out = {}
    for key, name in SERVER_HISTOGRAMS.items():
        if name not in second:
            continue
        start = first.get(name, HistogramTotals(0.0, 0.0))
        count = second[name].count - start.count
        total = second[name].total - start.total
        out[key] = ServerLatency(
            count=int(round(count)), mean_ms=1000.0 * total / count if count > 0 else None
        )
    return out


def merge_server_latencies(points: list[dict[str, dict]]) -> dict[str, dict]:
    """Several calls' server-side latencies (``ServerLatency.to_dict`` per key) as one:
    counts added, means weighted by their counts."""
    merged: dict[str, dict] = {}
    for key in SERVER_HISTOGRAMS:
        parts = [p[key] for p in points if key in p]
        if not parts:
            continue
        count = sum(part["count"] for part in parts)
        weighted = [
            (part["count"], part["mean_ms"]) for part in parts if part["mean_ms"] is not None
        ]
        total = sum(n for n, _ in weighted)
        mean = sum(n * m for n, m in weighted) / total if total else None
        merged[key] = {"count": count, "mean_ms": mean}
    return merged


# CacheUse field -> vLLM counter (a server exports each as NAME_total; offline snapshots
# from LLM.get_metrics() carry the bare name)
CACHE_COUNTERS = {
    "prefix_hit_tokens": "vllm:prefix_cache_hits",
    "prefix_query_tokens": "vllm:prefix_cache_queries",
    "mm_hits": "vllm:mm_cache_hits",
    "mm_queries": "vllm:mm_cache_queries",
}

LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_counters(text: str) -> dict[str, float]:
    """Every counter's value in a Prometheus text exposition, summed over its label sets
    (engines), under its name without ``_total``."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line) if line and not line.startswith("#") else None
        if not match or not match["name"].endswith("_total"):
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        name = match["name"][: -len("_total")]
        values[name] = values.get(name, 0.0) + value
    return values


def cache_counts(before: dict[str, float], after: dict[str, float]) -> dict[str, int | None]:
    """What each cache counter gained between two readings (None: not exported)."""
    return {
        field: int(round(after[name] - before.get(name, 0.0))) if name in after else None
        for field, name in CACHE_COUNTERS.items()
    }


def info_labels(text: str, name: str) -> dict[str, str]:
    """The labels of an info metric (a gauge set to 1, such as ``vllm:cache_config_info``)."""
    for line in text.splitlines():
        match = SAMPLE.match(line) if line and not line.startswith("#") else None
        if match and match["name"] == name and match["labels"]:
            return {key: value for key, value in LABEL.findall(match["labels"])}
    return {}
