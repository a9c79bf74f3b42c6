"""Processes a run leaves behind: who wrote a record, whether it still runs, and stopping a
process tree (the engine ends with its run; kit.core.reaper watches for a killed owner)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Any

from kit.core.reaper import start as start_reaper


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """Who writes this record: host, pid and the process's start time (pids are reused)."""
    import psutil

    pid = pid or os.getpid()
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        started = None
    return {"host": socket.gethostname(), "pid": pid, "create_time": started}


def engine_children() -> list[dict[str, Any]]:
    """This process's children (vLLM's engine core and workers), to stop if orphaned."""
    import psutil

    return [process_identity(child.pid) for child in psutil.Process().children(recursive=True)]


def process_alive(identity: dict[str, Any]) -> bool:
    """Whether the process a record names still runs (on this host; other hosts: assumed)."""
    import psutil

    if identity.get("host") != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(identity["pid"]))
        same = identity.get("create_time") in (None, process.create_time())
        return same and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


_reaper: list[subprocess.Popen[bytes]] = []  # the watcher of this kernel, started once


def end_with_parent() -> None:
    """When the process that started this kernel dies (``kit run`` killed with SIGKILL, a
    JupyterLab server gone) or the kernel itself does, its engine processes are stopped by
    a small watcher process (kit.core.reaper) instead of keeping the machine busy."""
    if not _reaper:
        _reaper.append(start_reaper())


def stop_process_tree(pid: int, include_root: bool = True, grace_s: float = 5.0) -> list[int]:
    """SIGTERM a process and its descendants, SIGKILL what is left after ``grace_s``; the
    pids that had to be stopped."""
    import psutil

    try:
        root = psutil.Process(pid)
        victims = root.children(recursive=True) + ([root] if include_root else [])
    except psutil.Error:
        return []
    for process in victims:
        try:
            process.send_signal(signal.SIGTERM if grace_s else signal.SIGKILL)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(victims, timeout=grace_s or 0.1)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return [p.pid for p in victims]
