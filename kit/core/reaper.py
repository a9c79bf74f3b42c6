"""A small process that ends a run's engine when the run's owner is gone.

A notebook kernel started by ``kit run`` (or JupyterLab) may start vLLM's engine processes.
If ``kit run`` is killed with SIGKILL, nobody stops them: the kernel exits (ipykernel polls
its parent) but its children are reparented and keep the machine busy. This watcher,
started by the kernel, remembers the kernel's process tree and, as soon as the kernel or
its parent is gone, stops whatever of that tree still runs.

Run as ``python -m kit.core.reaper KERNEL_PID PARENT_PID``; it only needs psutil.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

POLL_S = 0.2


def _same(process: Any, create_time: float) -> bool:
    """Still the process remembered: psutil caches create_time() per object, so only
    is_running() (a fresh pid + creation time) tells a reused pid apart."""
    try:
        return bool(
            process.is_running()
            and process.create_time() == create_time
            and process.status() != "zombie"
        )
    except Exception:  # psutil.Error, or the process went away between calls
        return False


def watch(kernel_pid: int, parent_pid: int) -> list[int]:
    """Block until the kernel or its parent ends; stop the kernel's remembered tree. The
    pids stopped."""
    import psutil

    kernel = psutil.Process(kernel_pid)
    parent = psutil.Process(parent_pid)
    owners = [(kernel, kernel.create_time()), (parent, parent.create_time())]
    tree: dict[int, tuple[Any, float]] = {}
    me = os.getpid()
    while all(_same(p, t) for p, t in owners):
        try:
            for child in kernel.children(recursive=True):
                if child.pid != me and child.pid not in tree:
                    tree[child.pid] = (child, child.create_time())
        except psutil.Error:
            pass
        time.sleep(POLL_S)
    doomed = [p for p, t in [*tree.values(), owners[0]] if _same(p, t)]
    for process in doomed:
        try:
            process.kill()
        except psutil.Error:
            pass
    return [p.pid for p in doomed]


def start(kernel_pid: int | None = None, parent_pid: int | None = None) -> subprocess.Popen[bytes]:
    """Start the watcher for this process (the kernel) and its parent."""
    kernel_pid = kernel_pid or os.getpid()
    parent_pid = parent_pid or os.getppid()
    return subprocess.Popen(
        [sys.executable, "-m", "kit.core.reaper", str(kernel_pid), str(parent_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
