"""Figures for the comparison report: grouped bars per metric, and sweep lines per device."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import matplotlib.pyplot as plt  # noqa: E402

from kit.compare.table import Entry

METRIC_TITLES = {
    "ttft_ms": "TTFT (ms)",
    "tps": "TPS (output tokens/s)",
    "prefill_ms": "prefill latency (ms)",
    "decode_ms_per_token": "decode latency (ms/token)",
    "accuracy": "MMMU accuracy",
    "output_tokens_per_s": "demo output tokens/s",
}


def grouped_bars(rows: list[dict[str, Any]], metric: str):
    """Scenarios along x, one bar per label; None where a label lacks the scenario."""
    rows = [r for r in rows if r.get(metric) is not None]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    values = {(r["label"], r["scenario"]): r[metric] for r in rows}
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(scenarios) * max(1, len(labels)) / 2), 3.6))
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        xs = [j + i * width for j in range(len(scenarios))]
        ys = [values.get((label, s)) or 0 for s in scenarios]
        ax.bar(xs, ys, width=width, label=label)
    ax.set_xticks(
        [j + width * (len(labels) - 1) / 2 for j in range(len(scenarios))],
        scenarios,
        fontsize="small",
    )
    ax.set_title(METRIC_TITLES.get(metric, metric))
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def sweep_lines(entries: list[Entry], metric: str):
    """A line per (label, batch size, output length) across input_len; None if no sweep."""
    collected: dict[tuple[str, int, int], list[tuple[int, float]]] = defaultdict(list)
    for e in entries:
        value = e.metrics.get(metric)
        if e.input_len is not None and e.sweep_key is not None and value is not None:
            batch, out = e.sweep_key
            collected[(e.label, batch, out)].append((e.input_len, value))
    series = {k: sorted(v) for k, v in collected.items() if len(v) > 1}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for (label, batch, out), points in sorted(series.items()):
        ax.plot(
            [x for x, _ in points],
            [y for _, y in points],
            marker="o",
            label=f"{label}, bs {batch}, out {out}",
        )
    ax.set_xlabel("input_len")
    ax.set_title(METRIC_TITLES.get(metric, metric) + " across input_len")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
