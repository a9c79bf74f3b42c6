"""The numerics report: the run's prompts, each prompt's verdict, where the greedy tokens
first differ (with the text around it on both sides), and |Δ logprob| along each prompt's
teacher-forced continuation. Pure functions of the records; the notebook shows them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt

from kit.numerics.compare import forced_pair
from kit.records.numerics import NumericsComparison, PromptNumerics

CONTEXT_TOKENS = 8  # tokens of text shown on each side of a divergence


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def run_rows(records: Sequence[PromptNumerics]) -> list[dict[str, Any]]:
    """One row per prompt: lengths, the greedy tokens' mean logprob, the answer's start."""
    rows = []
    for r in records:
        logprobs = [p.logprob for p in r.generated]
        rows.append(
            {
                "prompt": r.id,
                "kind": r.kind,
                "prompt tokens": r.prompt_tokens,
                "generated": len(r.generated),
                "mean logprob": _num(sum(logprobs) / len(logprobs) if logprobs else None, 3),
                "forced on": r.forced_on or "none",
                "answer (start)": r.generated_text[:60],
            }
        )
    return rows


def verdict_rows(comparison: NumericsComparison) -> list[dict[str, Any]]:
    """Each prompt's verdict, vLLM's greedy check and the teacher-forced statistics."""
    rows = []
    for p in comparison.prompts:
        f, g = p.forced, p.greedy
        rows.append(
            {
                "prompt": p.id,
                "verdict": p.verdict,
                "greedy check": "-" if g is None else ("pass" if g.passed else "fail"),
                "first divergence": "-" if p.first_divergence is None else p.first_divergence,
                "positions": "-" if f is None else f.positions,
                "mean |Δ|": _num(None if f is None else f.mean_abs_delta),
                "p99 |Δ|": _num(None if f is None else f.p99_abs_delta),
                "max |Δ|": _num(None if f is None else f.max_abs_delta),
                "top-1 agree": _num(None if f is None else f.top1_agreement, 3),
                "top-k overlap": _num(None if f is None else f.topk_overlap, 3),
                "KL": _num(None if f is None else f.kl_mean),
                "why": p.reason or "",
            }
        )
    return rows


def summary_rows(comparison: NumericsComparison) -> list[dict[str, Any]]:
    counts = ", ".join(f"{n} {word}" for word, n in comparison.counts.items() if n)
    return [
        {"measure": "overall verdict", "value": comparison.verdict},
        {"measure": "prompts", "value": counts or "none"},
        {"measure": "teacher-forced positions", "value": comparison.positions},
        {"measure": "mean |Δ logprob|", "value": _num(comparison.mean_abs_delta)},
        {"measure": "max |Δ logprob|", "value": _num(comparison.max_abs_delta)},
        {"measure": "reference", "value": comparison.reference},
    ]


def _rank(rank: int | None) -> str:
    return "not in top-k" if rank is None else str(rank)


def _around(record: PromptNumerics, at: int) -> tuple[str, str]:
    """The text before position ``at`` and from it on, a few tokens each side."""
    pieces = [p.text for p in record.generated]
    return "".join(pieces[max(0, at - CONTEXT_TOKENS) : at]), "".join(
        pieces[at : at + CONTEXT_TOKENS]
    )


def divergence_rows(
    comparison: NumericsComparison,
    run: Mapping[str, PromptNumerics],
    reference: Mapping[str, PromptNumerics],
) -> list[dict[str, Any]]:
    """Every prompt whose greedy tokens differ: the position, the two tokens with their
    ranks on the other side, and the text around it (the same before, then each side's)."""
    rows = []
    for p in comparison.prompts:
        g = p.greedy
        if g is None or g.divergence is None or p.id not in run or p.id not in reference:
            continue
        before, mine = _around(run[p.id], g.divergence)
        _, theirs = _around(reference[p.id], g.divergence)
        rows.append(
            {
                "prompt": p.id,
                "position": g.divergence,
                "run token": f"{g.run_text!r} (rank in reference: {_rank(g.run_rank_in_ref)})",
                "reference token": f"{g.ref_text!r} (rank in run: {_rank(g.ref_rank_in_run)})",
                "text before": before,
                "run goes on": mine,
                "reference goes on": theirs,
            }
        )
    return rows


def delta_series(
    run: Mapping[str, PromptNumerics], reference: Mapping[str, PromptNumerics]
) -> dict[str, list[float]]:
    """|Δ logprob| at each teacher-forced position, per prompt with a comparable pass."""
    out = {}
    for pid, mine in run.items():
        ref = reference.get(pid)
        if ref is None or mine.forced is None:
            continue
        pairs = list(zip(*forced_pair(mine.forced, ref)[:2], strict=True))
        if pairs and all(a.token == b.token for a, b in pairs):
            out[pid] = [abs(a.logprob - b.logprob) for a, b in pairs]
    return out


def delta_figure(series: Mapping[str, Sequence[float]], title: str) -> Any:
    """|Δ logprob| along the sequence, one line per prompt (log scale; 0 drawn at the
    axis floor so identical prompts still show)."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    values = [v for deltas in series.values() for v in deltas if v > 0]
    floor = min(values) / 2 if values else 1e-8
    for pid, deltas in series.items():
        ax.plot(range(len(deltas)), [max(d, floor) for d in deltas], label=pid, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("position in the continuation (token)")
    ax.set_ylabel("|Δ logprob| (nats)")
    ax.set_title(title)
    if 0 < len(series) <= 20:
        ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig
