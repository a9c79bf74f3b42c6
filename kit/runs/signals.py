"""SIGINT and SIGTERM during ``kit run``: the notebook stops where it is and the run is interrupted.

The signal is passed on to the kernel named in the run record as SIGINT, so the running cell
raises KeyboardInterrupt there and papermill saves the notebook and shuts the kernel (and
the engine in it) down. Raising in this process instead would land wherever papermill happens
to be. A second signal kills the kernel (its engine is stopped by the kit's watcher, then
by ``stop_leftovers``). Before the kernel has opened its run record the run stops at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core.processes import process_alive
from kit.records.results import read_document


class Interrupted(Exception):
    """The user stopped a run (Ctrl-C is SIGINT; SIGTERM comes from kill or a scheduler)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@dataclass
class InterruptState:
    signum: int | None = None


@contextlib.contextmanager
def stop_cleanly_on_signals(results: Path):
    """SIGINT and SIGTERM stop the notebook where it is, and the run ends as "interrupted".

    The signal is passed on to the kernel as SIGINT, so the running cell raises
    KeyboardInterrupt there; papermill then saves the notebook, shuts the kernel (and the
    engine in it) down and returns. Raising in this process instead would land wherever
    papermill happens to be (a logging call swallowed it). A second signal kills the kernel;
    before the kernel has opened its run record the run stops at once.
    """
    state = InterruptState()

    def handler(signum, frame):
        first = state.signum is None
        state.signum = state.signum or signum
        kernel = kernel_identity(results)
        if not (isinstance(kernel, dict) and process_alive(kernel)):
            raise Interrupted(signum)
        # the first: the running cell raises KeyboardInterrupt; a second (the cell did not
        # stop, or the key was pressed twice): the kernel stops at once. papermill then
        # returns on its own; raising here would land inside its event loop.
        os.kill(int(kernel["pid"]), signal.SIGINT if first else signal.SIGKILL)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def kernel_identity(results: Path) -> dict[str, Any] | None:
    """The kernel process named in a run record, if the record exists yet."""
    document = read_document(results)
    return None if document is None else document.get("process")
