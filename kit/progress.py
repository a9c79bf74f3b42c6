"""Progress lines for long runs: done/total, rate, elapsed and ETA, in one format.

Plain printed lines, not bars: they show in JupyterLab, in papermill's output and in the
terminal of ``python -m kit run`` alike, and engine progress bars are off (TQDM_DISABLE=1).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

PROGRESS_INTERVAL_S = 10.0


def format_duration(seconds: float | None) -> str:
    """``0:42``, ``3:05``, ``1:02:03``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts work done towards a total and prints a line at most every ``interval_s``
    (and when the total is reached). ``already`` is work done by an earlier attempt: it
    counts towards the total but not towards the rate."""

    def __init__(
        self,
        label: str,
        total: float,
        unit: str = "",
        already: float = 0,
        interval_s: float = PROGRESS_INTERVAL_S,
        amount: Callable[[float], str] = lambda n: f"{n:,.0f}",
        rate: Callable[[float], str] | None = None,
        out: Callable[[str], None] = lambda text: print(text, flush=True),
    ):
        self.label, self.total, self.unit = label, total, unit
        self.already, self.done = already, 0.0
        self.interval_s, self.amount, self.out = interval_s, amount, out
        unit_s = f" {unit}/s" if unit else "/s"
        self.rate_text = rate or (lambda r: f"{r:.2f}{unit_s}")
        self.started = time.monotonic()
        self._last = -math.inf
        self._lock = threading.Lock()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        elapsed = self.elapsed_s
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate
        left = self.total - self.already - self.done
        return left / rate if rate > 0 else (0.0 if left <= 0 else None)

    def line(self) -> str:
        finished = self.already + self.done
        pct = 100.0 * finished / self.total if self.total else 100.0
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"[{self.label}] {self.amount(finished)}/{self.amount(self.total)}{unit} "
            f"({pct:.1f}%) | {self.rate_text(self.rate)} | "
            f"elapsed {format_duration(self.elapsed_s)} | ETA {format_duration(self.eta_s())}"
        )

    def say(self, text: str) -> None:
        self.out(f"[{self.label}] {text}")

    def update(self, n: float) -> None:
        """Count ``n`` more; print a line when due."""
        with self._lock:  # downloads report parts from several threads
            self.done += n
            now = time.monotonic()
            finished = self.already + self.done >= self.total
            if now - self._last < self.interval_s and not finished:
                return
            self._last = now
        self.out(self.line())
