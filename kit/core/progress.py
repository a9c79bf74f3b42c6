"""Progress lines for long runs: done/total, rate, elapsed and ETA, in one format.

Plain printed lines, not bars: they show in JupyterLab, in papermill's output and in the
terminal of ``python -m kit run`` alike, and engine progress bars are off (TQDM_DISABLE=1).
MMMU answers and downloads both print through :class:`Progress`.
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


def human_bytes(n: float) -> str:
    """Decimal units, as disks and hubs count: ``512 B``, ``4.94 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def _printed(text: str) -> None:
    print(text, flush=True)


class Progress:
    """Counts work done towards a total and prints a line at most every ``interval_s``
    (and when the total is reached). ``already`` is work done before this count started (an
    earlier attempt, files kept on disk): it counts towards the total but not towards the
    rate. ``detail`` prefixes each line with what is in flight (a download's current file).
    Updates may come from several threads."""

    def __init__(
        self,
        label: str,
        total: float,
        unit: str = "",
        already: float = 0,
        interval_s: float = PROGRESS_INTERVAL_S,
        amount: Callable[[float], str] = lambda n: f"{n:,.0f}",
        rate: Callable[[float], str] | None = None,
        out: Callable[[str], None] = _printed,
        detail: Callable[[], str] | None = None,
    ):
        self.label, self.total, self.unit = label, total, unit
        self.already, self.done = already, 0.0
        self.interval_s, self.amount, self.out, self.detail = interval_s, amount, out, detail
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
        head = f"{self.detail()} | overall " if self.detail is not None else ""
        return (
            f"[{self.label}] {head}{self.amount(finished)}/{self.amount(self.total)}{unit} "
            f"({pct:.1f}%) | {self.rate_text(self.rate)} | "
            f"elapsed {format_duration(self.elapsed_s)} | ETA {format_duration(self.eta_s())}"
        )

    def say(self, text: str) -> None:
        self.out(f"[{self.label}] {text}")

    def skip(self, n: float) -> None:
        """Count ``n`` as done without doing it (kept from before): not in the rate."""
        with self._lock:
            self.already += n

    def update(self, n: float) -> None:
        """Count ``n`` more; print a line when due."""
        with self._lock:
            self.done += n
            now = time.monotonic()
            finished = self.already + self.done >= self.total
            if now - self._last < self.interval_s and not finished:
                return
            self._last = now
        self.out(self.line())
