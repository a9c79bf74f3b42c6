"""kit/core/reaper.py with real processes: a "parent" (kit run, or JupyterLab), a "kernel" with
grandchildren (vLLM's engine core and its workers) and a watcher, as a kernel starts it.

The watcher runs ``watch`` in a thread of this process; its poll sleep is counted
(``PollCounter``), so each check happens after a known number of full scans of the kernel's
tree, not after a guessed delay.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import psutil
import pytest

from kit.core import reaper
from kit.core.reaper import watch

# The "kernel": starts grandchildren on request and ends one (reaping it, so its pid is free)
KERNEL = r"""
import subprocess, sys
kids = {}
for line in sys.stdin:
    word, *rest = line.split()
    if word == "spawn":  # a process with a child of its own, as vLLM's engine core has workers
        p = subprocess.Popen(["sh", "-c", "sleep 600 & wait"])
    elif word == "spawn-leaf":
        p = subprocess.Popen(["sleep", "600"])
    elif word == "end":
        p = kids.pop(int(rest[0]))
        p.kill()
        p.wait()
        print("ended", flush=True)
        continue
    kids[p.pid] = p
    print(p.pid, flush=True)
"""

DEADLINE_S = 60.0  # only reached when the kit is broken: every wait below is for a condition


class PollCounter:
    """Stands in for the reaper's ``time`` module: counts finished scans of the tree."""

    def __init__(self):
        self.polls = 0
        self.changed = threading.Condition()

    def sleep(self, seconds: float) -> None:
        with self.changed:
            self.polls += 1
            self.changed.notify_all()
        time.sleep(seconds)

    def wait_for_polls(self, count: int) -> None:
        """Block until ``count`` more scans finished (each after everything started so far)."""
        with self.changed:
            target = self.polls + count
            assert self.changed.wait_for(lambda: self.polls >= target, DEADLINE_S)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + DEADLINE_S
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


class Tree:
    """A parent, a kernel and the kernel's grandchildren; everything is killed at the end."""

    def __init__(self):
        self.parent = subprocess.Popen(["sleep", "600"])
        self.kernel = subprocess.Popen(
            [sys.executable, "-c", KERNEL], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.others: list[subprocess.Popen] = []

    def ask(self, line: str) -> str:
        self.kernel.stdin.write(line + "\n")
        self.kernel.stdin.flush()
        return self.kernel.stdout.readline().strip()

    def spawn(self, leaf: bool = False) -> list[int]:
        """A grandchild (and, unless ``leaf``, its own child): their pids, once both run."""
        pid = int(self.ask("spawn-leaf" if leaf else "spawn"))
        if leaf:
            return [pid]
        deadline = time.monotonic() + DEADLINE_S
        while not psutil.Process(pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)
        return [pid, *[c.pid for c in psutil.Process(pid).children()]]

    def watch(self, monkeypatch) -> tuple[PollCounter, threading.Thread, dict]:
        counter = PollCounter()
        monkeypatch.setattr(reaper, "time", types.SimpleNamespace(sleep=counter.sleep))
        box: dict = {}
        thread = threading.Thread(
            target=lambda: box.setdefault("killed", watch(self.kernel.pid, self.parent.pid)),
            daemon=True,
        )
        thread.start()
        return counter, thread, box

    def cleanup(self) -> None:
        pids = [self.kernel.pid, self.parent.pid, *(p.pid for p in self.others)]
        for pid in pids + [c.pid for c in _children(self.kernel.pid)]:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        for process in (self.kernel, self.parent, *self.others):
            process.wait()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


@pytest.fixture
def tree():
    made = Tree()
    yield made
    made.cleanup()


@pytest.mark.parametrize("owner", ["parent", "kernel"])
def test_the_kernels_tree_is_killed_when_an_owner_dies_and_not_before(tree, monkeypatch, owner):
    grandchildren = tree.spawn() + tree.spawn(leaf=True)
    counter, thread, box = tree.watch(monkeypatch)
    counter.wait_for_polls(3)  # the tree was scanned after every grandchild had started
    assert thread.is_alive() and all(alive(p) for p in [tree.kernel.pid, *grandchildren])
    assert alive(tree.parent.pid)
    dying = tree.parent if owner == "parent" else tree.kernel
    dying.kill()  # SIGKILL: nobody cleans up but the watcher
    dying.wait()
    thread.join(DEADLINE_S)
    assert not thread.is_alive()
    expected = set(grandchildren) | ({tree.kernel.pid} if owner == "parent" else set())
    assert set(box["killed"]) == expected
    assert wait_gone([tree.kernel.pid, *grandchildren]) == []


def take_pid(pid: int) -> subprocess.Popen | None:
    """An unrelated process (this test's child, not the kernel's) given ``pid``, freed just
    before, through the kernel's last-pid setting (root only), as a busy machine reuses pids."""
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    for _ in range(20):  # another process may take the pid first: try again
        try:
            last_pid.write_text(str(pid - 1))
        except OSError:
            return None
        process = subprocess.Popen(["sleep", "600"])
        if process.pid == pid:
            return process
        process.kill()
        process.wait()
    return None


def test_a_remembered_pid_now_used_by_another_process_is_not_killed(tree, monkeypatch):
    (leaf,) = tree.spawn(leaf=True)
    kept = tree.spawn()
    counter, thread, box = tree.watch(monkeypatch)
    counter.wait_for_polls(2)  # the leaf is remembered
    assert tree.ask(f"end {leaf}") == "ended"  # it ended and was reaped: its pid is free
    stranger = take_pid(leaf)
    if stranger is None:
        pytest.skip("cannot make a pid be reused here (needs write access to ns_last_pid)")
    tree.others.append(stranger)
    counter.wait_for_polls(2)
    tree.parent.kill()
    tree.parent.wait()
    thread.join(DEADLINE_S)
    assert not thread.is_alive()
    assert leaf not in box["killed"] and alive(stranger.pid)  # same pid, another process
    assert set(box["killed"]) == {tree.kernel.pid, *kept}
