"""95% intervals for the two kinds of number the reproduction compares with the vendor's.

- an accuracy (k correct of n questions): the Wilson score interval, which stays inside
  [0, 1] and behaves at small n, unlike the normal approximation;
- a mean across timed iterations: the Student-t interval, mean ± t(n-1) · s / √n. One
  iteration has no spread to measure, so n = 1 gives the value and says so instead of an
  interval.

Pure functions without scipy: the t quantile is found by bisection on the t CDF, written
with the regularized incomplete beta function (continued fraction, modified Lentz).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval (``low``/``high`` None where there is none, and
    ``note`` saying why)."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    method: str  # "wilson" or "student-t"
    confidence: float = CONFIDENCE
    note: str = ""

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def contains(self, value: float) -> bool | None:
        """Whether ``value`` lies in the closed interval; None without an interval."""
        if self.low is None or self.high is None:
            return None
        return self.low <= value <= self.high

    def text(self, digits: int = 3, scale: float = 1.0) -> str:
        """``0.430 [0.337, 0.528]``, or the estimate with the note (``n=1, no interval``)."""
        if self.estimate is None:
            return self.note or "no value"
        value = f"{self.estimate * scale:.{digits}f}"
        if self.low is None or self.high is None:
            return f"{value} ({self.note})" if self.note else value
        return f"{value} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "method": self.method,
            "confidence": self.confidence,
            "note": self.note,
        }


def normal_quantile(confidence: float = CONFIDENCE) -> float:
    """The two-sided z for ``confidence`` (1.959964 for 0.95)."""
    check_confidence(confidence)
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion ``successes / n``."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(None, None, None, 0, "wilson", confidence, "no questions answered")
    z = normal_quantile(confidence)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson", confidence)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student-t interval of the mean of ``values`` (iterations of one measurement)."""
    values = [float(v) for v in values if v is not None]
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0, "student-t", confidence, "not measured")
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, None, None, 1, "student-t", confidence, "n=1, no interval")
    half = t_quantile(0.5 + confidence / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "student-t", confidence)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2, 0.5)
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, by bisection (the CDF is monotone)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if not 0 <= x <= 1:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # the continued fraction converges fast for x < (a + 1) / (a + b + 2); use symmetry above
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1 - front * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < eps:
            break
    return result
