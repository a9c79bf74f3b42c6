"""What a prompt may differ from its reference by and still be "close": the one place the
limits live, recorded with every comparison they judged.

Calibrated by the kit on its own tiny model (docs/numerics.md, "Thresholds"): the same CPU
in bfloat16 against float32, 16 prompts, 64 tokens each, measured mean |Δ logprob| 0.016,
largest 0.062, top-1 agreement at least 0.95 per prompt, mean KL at most 0.0013. The limits
are about three to four times that rounding noise: a device within them differs from its
reference as bfloat16 differs from float32; a wrong kernel moves logprobs by tenths of a nat
or more, and reorders the top-k. A larger model may round more: calibrate on the reference
device the same way before relying on a "close" (docs/numerics.md says how).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kit.records.numerics import ForcedStats


@dataclass(frozen=True)
class Thresholds:
    """Limits on the teacher-forced statistics (nats), each inclusive: a value equal to its
    limit passes."""

    max_mean_abs_delta: float = 0.05  # mean |Δ logprob| of the reference's tokens
    max_abs_delta: float = 0.25  # the largest single |Δ logprob|
    min_top1_agreement: float = 0.9  # share of positions with the same most likely token
    max_kl_mean: float = 0.01  # mean KL(ref || run) over the reference's top-k

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def breaches(self, stats: ForcedStats) -> list[str]:
        """Why ``stats`` is not close, one clause per limit exceeded; empty when within all
        (a statistic that could not be computed exceeds nothing)."""
        out = []
        if _above(stats.mean_abs_delta, self.max_mean_abs_delta):
            out.append(f"mean |Δ logprob| {stats.mean_abs_delta:.4g} > {self.max_mean_abs_delta}")
        if _above(stats.max_abs_delta, self.max_abs_delta):
            out.append(
                f"|Δ logprob| {stats.max_abs_delta:.4g} > {self.max_abs_delta} "
                f"at position {stats.max_delta_position}"
            )
        if stats.top1_agreement is not None and stats.top1_agreement < self.min_top1_agreement:
            out.append(f"top-1 agreement {stats.top1_agreement:.4g} < {self.min_top1_agreement}")
        if _above(stats.kl_mean, self.max_kl_mean):
            out.append(f"mean KL {stats.kl_mean:.4g} > {self.max_kl_mean}")
        return out


def _above(value: float | None, limit: float) -> bool:
    return value is not None and value > limit
