"""Named places where a run can be held until a signal stops it, or a file releases it.

Fault tests interrupt or kill a run at a known point (after its first perf point, between
two MMMU chunks) instead of racing it, so they hold on a fast GPU machine and on a slow
laptop alike. Off unless ``KIT_PAUSE_AT`` names the place: ``perf.point:1`` holds the run
before perf point 1 starts, ``perf.iteration:1.1`` before that point's second timed
iteration, ``mmmu.chunk:2`` before MMMU's third generate call; several places are
comma-separated. A held run prints one line saying so and waits until a signal
(Ctrl-C, SIGTERM, SIGKILL) ends it, or, when ``KIT_PAUSE_RELEASE`` names a file, until that
file exists: the run then goes on from there (the file is removed, so it releases one hold),
as when a test breaks something while the run is held (kills its server) and lets it meet it.
"""

from __future__ import annotations

import os
import time

PAUSE_ENV = "KIT_PAUSE_AT"
RELEASE_ENV = "KIT_PAUSE_RELEASE"
PAUSED_LINE = "paused at {place} (KIT_PAUSE_AT): waiting for a signal"


def wanted_places(setting: str | None = None) -> set[str]:
    setting = os.environ.get(PAUSE_ENV, "") if setting is None else setting
    return {part.strip() for part in setting.split(",") if part.strip()}


def pause_point(name: str, index: int | str | None = None) -> None:
    """Hold here when ``KIT_PAUSE_AT`` names this place (until a signal, or the release
    file); else return at once."""
    place = name if index is None else f"{name}:{index}"
    if place not in wanted_places():
        return
    print(PAUSED_LINE.format(place=place), flush=True)
    release = os.environ.get(RELEASE_ENV)
    while True:  # a signal ends the wait (KeyboardInterrupt in a kernel, or the process)
        if release and os.path.exists(release):
            os.remove(release)
            return
        time.sleep(0.05)
