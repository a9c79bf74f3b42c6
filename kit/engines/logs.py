"""vLLM's output sent to the run's ``engine.log``, and the root cause of a failure read from it.

vLLM's logging records, the engine processes' stdout and stderr (redirected at the
file-descriptor level, which spawned processes inherit) and its loading bars would otherwise
land in the notebook's cells and its report. When the engine fails, the last exception line
that is not vLLM's own wrapper ("See root cause above") is where the failure is explained.
"""

from __future__ import annotations

import contextlib
import json
import logging.config
import os
import re
import sys
from pathlib import Path
from typing import Any


def logging_config(log_file: Path) -> dict:
    """A logging dictConfig that sends vLLM's records to ``log_file`` instead of the cells."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(levelname)s %(asctime)s [%(process)d %(name)s] %(message)s"}
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
                "mode": "a",
            }
        },
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def route_engine_logs(log_file: Path) -> Path:
    """Point vLLM's logging at ``log_file``: at vLLM's first import and whenever it
    reconfigures its logging (``LLM()`` does), so none of it lands in a report, and no
    handler is left holding a stream that was redirected for a while. Applied here too:
    some of vLLM's import-time warnings come before it configures its own logging."""
    config = logging_config(log_file)
    config_file = log_file.with_name(f".{log_file.name}.config.json")
    config_file.write_text(json.dumps(config))
    logging.config.dictConfig(config)
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(config_file)
    os.environ.setdefault("TQDM_DISABLE", "1")  # loading bars of the engine processes
    return log_file


def log_tail(log_file: Path, lines: int = 12) -> str:
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


ERROR_LINE = re.compile(r"(?:^|\s)((?:[A-Za-z_][\w.]*)?(?:Error|Exception|OutOfMemory\w*)\b: .+)$")

WRAPPER_ERRORS = ("See root cause above", "Engine core initialization failed")


def root_cause(log_file: Path) -> str | None:
    """The last exception line of the engine's log that is not vLLM's own wrapper ("See root
    cause above"): where a failure in the engine process is really explained."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        match = ERROR_LINE.search(line.strip())
        if match and not any(w in line for w in WRAPPER_ERRORS):
            return match.group(1)
    return None


@contextlib.contextmanager
def output_to(log_file: Path):
    """Send stdout and stderr, at the file-descriptor level too, to ``log_file``.

    Engine processes spawned inside the block inherit these descriptors and keep writing
    to the log for their whole life, so a report shows results rather than engine chatter.
    """
    with log_file.open("a") as fh, redirected_output(fh, fh):
        yield


@contextlib.contextmanager
def redirected_output(out: Any, err: Any):
    """stdout into ``out`` and stderr into ``err`` (open files), the Python objects and the
    file descriptors alike, so child processes and C code write there too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        out.flush()
        err.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
