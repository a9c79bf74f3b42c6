"""The perf report's tables, from point records as kit.perf.point_records wrote them or
as kit.records read them back: the vendor's layout with ratios, the standard columns, the
roofline bounds, and what a server point saw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kit.records.caches import served_from_cache
from kit.records.perf import Efficiency, PerfPointRecord, perf_points

PointRecords = Sequence[PerfPointRecord | Mapping[str, Any]]


def batch_scheduling(record: PerfPointRecord | Mapping[str, Any]) -> str:
    """How a point's batches were first scheduled, in words."""
    point = PerfPointRecord.of(record)
    schedule = point.schedule
    if point.batch_size == 1:
        return "single request"
    if schedule.staggered is None:
        return "unknown"
    steps = schedule.scheduling_steps_max
    if schedule.staggered_beyond_budget:
        return f"staggered ({steps} steps; the token budget needs {schedule.budget_steps})"
    if schedule.staggered:
        return f"{steps} steps, as the token budget needs (as vLLM 0.6)"
    return "one step"


def vendor_table(records: PointRecords, device_label: str) -> list[dict[str, Any]]:
    """The vendor table's layout: each measured row, its reference rows, and the ratios,
    with how the batch was scheduled and a warning where the ratio compares unlike things."""
    rows = []
    for point in perf_points(records):
        scenario = {
            "input-len": point.input_len,
            "output-len": point.max_output_len,
            "num-prompts": point.batch_size,
        }
        rows.append(
            {
                "source": f"measured ({device_label})",
                **scenario,
                **point.vendor.metrics(),
                "batch scheduling": batch_scheduling(point),
                "caches": cache_cell(point),
            }
        )
        for ref in point.references:
            rows.append({"source": f"vendor {ref.device}", **scenario, **ref.metrics})
            warning = "; ".join(ref.warnings)
            rows.append(
                {
                    "source": f"measured / {ref.device}" + (" (WARNING)" if warning else ""),
                    **scenario,
                    **ref.ratios,
                    "batch scheduling": warning,
                }
            )
    return rows


def cache_cell(point: PerfPointRecord) -> str:
    """Whether a cache served the point's timed requests, as a table cell."""
    if point.caches is None:
        return "not recorded"
    if point.caches.hit is None:
        return "not reported"
    return point.caches.describe() if point.caches.hit else "no hits"


def comparison_warning_lines(records: PointRecords) -> list[str]:
    """One line per point whose numbers or vendor comparison carry a warning."""
    lines = []
    for point in perf_points(records):
        warnings = list(point.references[0].warnings) if point.references else []
        if not point.references and served_from_cache(point.caches):
            warnings.append(point.caches.describe())
        if not point.references and point.cut:
            warnings.append(f"{point.cut}: its numbers are over those")
        if warnings:
            lines.append(f"WARNING {point.label}: " + "; ".join(warnings))
    return lines


def standard_table(records: PointRecords) -> list[dict[str, Any]]:
    """Mean, median, p90, p99 per metric, and the spread of per-iteration means."""
    rows = []
    for point in perf_points(records):
        std = point.standard
        if std is None:
            continue
        for metric, s in std.metrics.items():
            rows.append(
                {
                    "point": point.label,
                    "metric": metric,
                    "mean": s.mean,
                    "median": s.median,
                    "p90": s.p90,
                    "p99": s.p99,
                    "iteration means min": s.iter_min,
                    "iteration means max": s.iter_max,
                    "n": s.count,
                }
            )
        tps = std.tps_per_iteration
        rows.append(
            {
                "point": point.label,
                "metric": "tps (per iteration)",
                "mean": std.tps_mean,
                "iteration means min": min(tps) if tps else None,
                "iteration means max": max(tps) if tps else None,
                "n": std.iterations,
            }
        )
    return rows


def roofline_table(records: PointRecords) -> list[dict[str, Any]]:
    def shown(eff: Efficiency | None) -> Any:
        if eff is None:
            return None
        return eff.value if eff.error is None else "ERROR: " + eff.error

    rows = []
    for point in perf_points(records):
        bounds = point.roofline
        if bounds is None:
            continue
        rows.append(
            {
                "point": point.label,
                "device": bounds.device,
                "decode bound (ms/token)": bounds.decode_ms_per_token,
                "decode measured (ms/token)": point.vendor.decode_ms_per_token,
                "decode efficiency": shown(bounds.decode_efficiency),
                "sequences per decode step": bounds.decoding_together,
                "prefill bound (ms)": bounds.prefill_ms,
                "prefill measured (ms)": point.vendor.prefill_ms,
                "prefill efficiency": shown(bounds.prefill_efficiency),
                "requests per prefill": bounds.prefilled_together,
                "note": bounds.reason or "",
            }
        )
    return rows


def served_table(records: PointRecords) -> list[dict[str, Any]]:
    """Per server point: the client's load figures, with the server's own histogram means
    beside them (the difference is network and front end)."""
    rows = []
    for point in perf_points(records):
        served = point.served
        if not served:
            continue
        client, server = served.client, served.server

        def server_mean(key: str, server: Mapping[str, Any] = server) -> float | None:
            return (server.get(key) or {}).get("mean_ms")

        rows.append(
            {
                "point": point.label,
                "request rate": point.params.get("request_rate", "inf"),
                "completed": client.completed,
                "failed": client.failed,
                "requests/s": client.request_throughput,
                "output tokens/s": client.output_throughput,
                "goodput (req/s)": client.goodput,
                "TTFT mean (client)": client.ttft_ms.mean,
                "TTFT mean (server)": server_mean("ttft_ms"),
                "TTFT p99 (client)": client.ttft_ms.p99,
                "TPOT mean": client.tpot_ms.mean,
                "ITL mean (client)": client.itl_ms.mean,
                "ITL mean (server)": server_mean("itl_ms"),
                "ITL p99 (client)": client.itl_ms.p99,
                "E2E mean (client)": client.e2e_ms.mean,
                "E2E mean (server)": server_mean("e2e_ms"),
                "queue mean (server)": server_mean("queue_ms"),
                "prefill mean (server)": server_mean("prefill_ms"),
                "decode mean (server)": server_mean("decode_ms"),
            }
        )
    return rows
