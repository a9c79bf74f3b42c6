"""A full disk: nothing already written is replaced by a torn copy, the record ends ``failed``
naming the file that could not be written (or, when the record itself cannot be written, the
terminal says which file and what the folder keeps), no temp file is left, and the exit code
is 1, not the bad-input 2.

A file-size limit (RLIMIT_FSIZE) stands in for the full disk: a write past it fails as one
on a full disk does (EFBIG instead of ENOSPC, the same path through the kit), any user can set
it, and it fails at a size this test chooses rather than wherever a shared disk happens to
fill. A run on a small tmpfs (ENOSPC) behaves the same; the closing note of issue 20 has it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

from kit.core.files import write_atomic
from kit.mmmu.dataset import fixture_dataset

from .conftest import REPO

LIMIT_THEN_RUN = (
    "import os, resource, signal, sys; limit = int(sys.argv[1]); "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "  # a write past it fails with EFBIG
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def with_room_for(limit: int, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` (and every process it starts) unable to write a file past ``limit``
    bytes. Its output goes to pipes, which the limit does not cover."""
    return subprocess.run(
        [sys.executable, "-c", LIMIT_THEN_RUN, str(limit), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def running_for(folder: Path) -> list[int]:
    """Processes still working for the run in ``folder`` (the kernel inherits KIT_RUN_DIR)."""
    pids = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("KIT_RUN_DIR") == str(folder):
                pids.append(process.pid)
        except psutil.Error:
            continue
    return pids


def run_folder(proc: subprocess.CompletedProcess) -> Path:
    return Path(re.search(r"^run folder: (.+)$", proc.stdout, re.MULTILINE).group(1))


def test_a_failed_write_keeps_the_earlier_file_whole_and_no_temp_file(tmp_path):
    """In a process that cannot write past 1000 bytes: the second, larger write fails naming
    the file, and the first one's content is still there."""
    target = tmp_path / "record.json"
    script = (
        "import sys; from pathlib import Path; from kit.core.files import write_atomic\n"
        "target = Path(sys.argv[1]); write_atomic(target, 'whole')\n"
        "try:\n    write_atomic(target, 'x' * 5000)\n"
        "except OSError as exc:\n    print(exc.errno, exc.filename)\n"
    )
    proc = with_room_for(1000, "-c", script, str(target))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["27", str(target)]  # EFBIG, the file the caller named
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
    write_atomic(target, b"bytes too")  # and where there is room, it is written
    assert target.read_bytes() == b"bytes too"


@pytest.mark.slow
def test_a_disk_full_mid_run_keeps_the_last_whole_notebook_and_the_record_names_it(
    tmp_path, perf_sweep_run
):
    """The compare notebook (no engine: cheap) on the session's perf sweep, unable to write
    past 40 kB: its first saves fit, the one after its first plot does not."""
    sweep, _ = perf_sweep_run
    outputs = tmp_path / "outputs"
    proc = with_room_for(
        40_000,
        *("-m", "kit", "run", "compare", "-p", "runs", str(sweep)),
        env={"KIT_OUTPUTS_DIR": str(outputs)},
    )
    said = proc.stdout + proc.stderr
    assert proc.returncode == 1, said[-3000:]
    assert "Traceback" not in said
    folder = run_folder(proc)
    notebook = folder / "compare.ipynb"
    nbformat.read(notebook, as_version=4)  # the last complete save: whole, valid JSON
    record = json.loads((folder / "results.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == (
        f"could not write {notebook} (File too large): free space on that disk, or write "
        "elsewhere; its last complete save is kept"
    )
    assert f"error: could not write {folder / 'report.html'} (File too large)" in proc.stderr
    kept = "compare.ipynb, engine.log, parameters.yaml, results.json (as last saved: failed)"
    assert f"Kept in {folder}: {kept}." in proc.stderr
    assert list(outputs.rglob("*.tmp")) == []
    assert running_for(folder) == []


def test_a_record_that_cannot_be_written_is_named_on_the_terminal_with_what_was_kept(tmp_path):
    """Unable to write past 300 bytes: parameters.yaml fits, the executed notebook and
    results.json do not. The terminal is all that can say how the run ended."""
    runs = tmp_path / "runs" / "perf-run"
    runs.mkdir(parents=True)
    record = {"schema_version": 2, "notebook": "perf", "status": "ok", "perf": {"points": []}}
    (runs / "results.json").write_text(json.dumps(record))
    outputs = tmp_path / "outputs"
    proc = with_room_for(
        300,
        *("-m", "kit", "run", "compare", "-p", "runs", str(runs)),
        env={"KIT_OUTPUTS_DIR": str(outputs)},
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    folder = run_folder(proc)
    lines = proc.stderr.splitlines()
    assert lines[0] == (
        f"error: could not write {folder / 'results.json'} (File too large): free space on "
        "that disk, or write elsewhere."
    )
    assert lines[1].startswith("the run ended failed (could not write ")
    assert "compare.ipynb (File too large)" in lines[1] and "it was never saved" in lines[1]
    assert lines[1].endswith(f"Kept in {folder}: parameters.yaml.")
    assert sorted(p.name for p in folder.iterdir()) == ["parameters.yaml"]
    assert running_for(folder) == []


def test_scores_on_a_full_disk_keep_the_earlier_scores_exit_1(tmp_path):
    fixture_dataset()  # built before the limit: only the scores meet it
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"id": "validation_Art_1", "response": "A"}\n')
    scores = tmp_path / "scores.json"
    scores.write_text("earlier scores")
    proc = with_room_for(
        100,
        *("-m", "kit", "mmmu-score", "--dataset", "fixture", "--predictions", str(predictions)),
        *("--out", str(scores)),
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"error: could not write {scores} (File too large): free space on that disk, or write "
        "elsewhere, then run the command again."
    )
    assert scores.read_text() == "earlier scores"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "scores.json"]
