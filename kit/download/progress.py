"""What a download prints: one line per file (kept, fetching, done) and, every few seconds,
the file in flight with the overall bytes, rate and ETA (kit.core.progress prints those),
fed by huggingface_hub's tqdm hook or ModelScope's progress callback."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from kit.core.progress import Progress, format_duration, human_bytes

PROGRESS_INTERVAL_S = float(os.environ.get("KIT_PROGRESS_INTERVAL", "10"))


class FileProgress:
    """Progress of one target's files: bytes towards the target's total."""

    def __init__(
        self,
        label: str,
        files: int,
        total_bytes: int,
        out: Callable[[str], None] = print,
        interval: float | None = None,
    ):
        self.files = files
        self.index, self.path, self.size, self.current = 0, "", 0, 0
        self.file_started = time.monotonic()
        self.bytes = Progress(
            label,
            total_bytes,
            interval_s=PROGRESS_INTERVAL_S if interval is None else interval,
            amount=human_bytes,
            rate=lambda r: f"{human_bytes(r)}/s",
            out=out,
            detail=self._in_flight,
        )

    def _in_flight(self) -> str:
        pct = 100 * self.current / self.size if self.size else 100
        return (
            f"{self.index}/{self.files} {self.path}: {human_bytes(self.current)} / "
            f"{human_bytes(self.size)} ({pct:.0f}%)"
        )

    def keep(self, path: str, size: int) -> None:
        self.index += 1
        self.bytes.skip(size)
        self.bytes.say(
            f"{self.index}/{self.files} {path}: already complete ({human_bytes(size)}), kept"
        )

    def start(self, path: str, size: int) -> None:
        self.index += 1
        self.path, self.size, self.current = path, size, 0
        self.file_started = time.monotonic()
        self.bytes.say(f"{self.index}/{self.files} {path}: fetching {human_bytes(size)}")

    def advance(self, n: float) -> None:
        n = int(n or 0)
        self.current = max(0, self.current + n)
        self.bytes.update(n)

    def finish(self) -> None:
        """The file is complete: whatever the client did not report counts now."""
        seconds = time.monotonic() - self.file_started
        unreported = self.size - self.current
        self.current = self.size
        if unreported > 0:
            self.bytes.update(unreported)
        rate = f", {human_bytes(self.size / seconds)}/s" if seconds >= 1 else ""
        self.bytes.say(
            f"{self.index}/{self.files} {self.path}: done in {format_duration(seconds)}{rate}"
        )

    def bar_class(self) -> type:
        """A tqdm stand-in for huggingface_hub (``tqdm_class``) feeding this progress."""
        progress = self

        class FileBar:
            def __init__(self, *args, total=None, initial=0, **kwargs):
                self.n, self.total = initial or 0, total
                if initial:
                    progress.advance(initial)

            def update(self, n=1):
                self.n += n or 0
                progress.advance(n)

            def update_transfer(self, n=1):  # network bytes (Xet); disk bytes count
                pass

            def set_postfix_str(self, *args, **kwargs):
                pass

            set_transfer_postfix_str = set_postfix_str
            refresh = clear = close = set_postfix_str

            @property
            def format_dict(self):
                return {}

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        return FileBar

    def callback_class(self) -> type:
        """A ModelScope ProgressCallback subclass feeding this progress."""
        from modelscope_hub._download import ProgressCallback

        progress = self

        class Callback(ProgressCallback):
            def update(self, size: int) -> None:
                progress.advance(size)

        return Callback
