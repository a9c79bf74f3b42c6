"""What a prompt may differ from its reference by and still be "close": the one place the
limits live, recorded with every comparison they judged.

PROVISIONAL: these are placeholders of the right order, not measurements. Rounding noise
is to be calibrated by the kit itself (the same device in bfloat16 against float32); until
then the defaults allow about what bfloat16 rounding is commonly seen to move a logprob
(a few hundredths of a nat on average, tenths at the unlikely tokens of a long
continuation) and little more.
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
    max_abs_delta: float = 0.5  # the largest single |Δ logprob|
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
