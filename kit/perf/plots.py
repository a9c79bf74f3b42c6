"""Static matplotlib figures for the performance report (inlined as PNG in the HTML)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt  # noqa: E402

from kit.records.perf import LoadSummary, PerfPointRecord, RequestSpan, perf_points

PointRecord = PerfPointRecord | Mapping[str, Any]  # as point_record wrote it, or read back

PHASE_COLOURS = {"queue": "#c9c9c9", "prefill": "#e08a3c", "decode": "#3c7fe0"}

VENDOR_METRICS = [
    ("ttft_ms", "TTFT (ms)"),
    ("tps", "TPS (output tokens/s)"),
    ("prefill_ms", "prefill latency (ms)"),
    ("decode_ms_per_token", "decode latency (ms/token)"),
]


def timeline(spans: Sequence[RequestSpan | Mapping[str, float | None]], title: str):
    """One bar per request: queue, prefill, decode (engine clock), from the first queueing."""
    bars = [RequestSpan.of(s) for s in spans]
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.4 * max(1, len(bars))))
    for row, s in enumerate(bars):
        parts = [
            ("queue", s.queued, s.scheduled),
            ("prefill", s.scheduled, s.first_token),
            ("decode", s.first_token, s.last_token),
        ]
        for phase, start, end in parts:
            if start is None or end is None:
                continue
            ax.barh(
                row,
                max(end - start, 0),
                left=start,
                color=PHASE_COLOURS[phase],
                label=phase if row == 0 else None,
            )
    ax.set_yticks(range(len(bars)), [f"request {i}" for i in range(len(bars))])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first request was queued")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.tight_layout()
    return fig


def first_batch_timeline(record: PointRecord, scheduling: str):
    """The timeline of a point's first timed batch, titled with the point's label and
    ``scheduling`` (kit.perf.tables.batch_scheduling's words for how it was scheduled)."""
    point = PerfPointRecord.of(record)
    return timeline(point.timeline, f"{point.label}: first timed batch ({scheduling})")


def sweep(points: Sequence[PointRecord]):
    """TTFT and TPS against input_len (a line per batch size) and against batch size."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    records = perf_points(points)
    for col, (x_key, group_key) in enumerate(
        (("input_len", "batch_size"), ("batch_size", "input_len"))
    ):
        groups: dict[Any, list[tuple[int, PerfPointRecord]]] = defaultdict(list)
        for p in records:
            groups[(getattr(p, group_key), p.max_output_len)].append((getattr(p, x_key), p))
        for row, (metric, label) in enumerate(
            (("ttft_mean", "TTFT mean (ms)"), ("tps", "TPS (output tokens/s)"))
        ):
            ax = axes[row][col]
            for (group, out_len), series in sorted(groups.items(), key=lambda item: item[0]):
                series.sort(key=lambda item: item[0])
                ys = [_metric(p, metric) for _, p in series]
                ax.plot(
                    [x for x, _ in series],
                    ys,
                    marker="o",
                    label=f"{group_key} {group}, out {out_len}",
                )
            ax.set_xlabel(x_key)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="x-small")
    fig.suptitle("Sweep")
    fig.tight_layout()
    return fig


def _metric(point: PerfPointRecord, metric: str) -> float | None:
    """The standard columns' mean TTFT, or one of the vendor's columns."""
    if metric == "ttft_mean":
        ttft = point.standard.metrics.get("ttft_ms") if point.standard else None
        return ttft.mean if ttft else None
    return point.vendor.metrics()[metric]


def versus_references(record: PointRecord, device_label: str):
    """The vendor's four columns: this run beside each matching reference row."""
    point = PerfPointRecord.of(record)
    refs = point.references
    labels = [f"this run ({device_label})"] + [r.device for r in refs]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    for ax, (key, title) in zip(axes, VENDOR_METRICS, strict=True):
        values = [point.vendor.metrics()[key]] + [r.metrics.get(key) for r in refs]
        ax.bar(
            range(len(values)),
            [v or 0 for v in values],
            color=["#3c7fe0"] + ["#999999"] * len(refs),
        )
        ax.set_xticks(range(len(values)), labels, rotation=20, fontsize="small")
        ax.set_title(title, fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(point.label)
    fig.tight_layout()
    return fig


def latency_distribution(record: PointRecord, timed_runs: list[Any]):
    """Per-request TTFT and TPOT across all timed iterations."""
    ttft = [t.ttft_s * 1000 for r in timed_runs for t in r.timings if t.ttft_s is not None]
    tpot = [t.tpot_s * 1000 for r in timed_runs for t in r.timings if t.tpot_s is not None]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, values, title in ((axes[0], ttft, "TTFT (ms)"), (axes[1], tpot, "TPOT (ms/token)")):
        ax.hist(values, bins=min(20, max(3, len(values))), color="#3c7fe0", alpha=0.8)
        ax.set_title(f"{title}, {len(values)} requests")
        ax.set_ylabel("requests")
    fig.suptitle(PerfPointRecord.of(record).label)
    fig.tight_layout()
    return fig


def served_points(points: Sequence[PointRecord]) -> list[PerfPointRecord]:
    """The points measured against a server (with a client load summary)."""
    return [p for p in perf_points(points) if p.served]


def latency_vs_throughput(points: Sequence[PointRecord]):
    """Each server point's output throughput against its latencies, one marker per point
    (labelled with its concurrency): where more load stops buying throughput."""
    served = served_points(points)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    panels = (("ttft_ms", "TTFT (ms)"), ("tpot_ms", "TPOT (ms/token)"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for stat, marker in (("mean", "o-"), ("p99", "s--")):
            pairs = [
                (p.served.client.output_throughput, getattr(getattr(p.served.client, key), stat))
                for p in served
                if p.served
            ]
            pairs = [(x, y) for x, y in pairs if y is not None]  # a p99 needs 100 requests
            if pairs:
                ax.plot(*zip(*pairs, strict=True), marker, label=stat)
        for p in served:
            client = p.served.client if p.served else LoadSummary()
            ax.annotate(
                f"c{p.concurrency or p.batch_size}",
                (client.output_throughput, getattr(client, key).mean or 0),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize="small",
            )
        ax.set_xlabel("output throughput (tokens/s)")
        ax.set_ylabel(title)
        ax.set_title(f"{title} against throughput")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def served_distributions(record: PointRecord):
    """A server point's per-request TTFT and every inter-token gap, as the client saw them."""
    point = PerfPointRecord.of(record)
    samples = point.served.samples if point.served else {}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, key, title, unit in (
        (axes[0], "ttft_ms", "TTFT (ms)", "requests"),
        (axes[1], "itl_ms", "inter-token latency (ms)", "gaps"),
    ):
        values = samples.get(key) or []
        ax.hist(values, bins=min(30, max(3, len(values))), color="#3c7fe0", alpha=0.8)
        ax.set_title(f"{title}, {len(values)} {unit}")
        ax.set_ylabel(unit)
    fig.suptitle(f"{point.label} (client side)")
    fig.tight_layout()
    return fig
