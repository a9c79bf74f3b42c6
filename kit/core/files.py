"""Files and folders: writable checks, whole-or-nothing writes, the kit's cache folder, file
digests and exclusive locks.

A folder is proved writable (made if needed, a probe file written and removed) before
anything runs, so a read-only place fails with the folder, the reason and the fix instead of
midway. Every record and report is written beside its place and then renamed over it, so a
full disk or a kill mid-write leaves the earlier file whole, never a torn copy. A file's
sha256 and git blob id come from one read, since the hub publishes git blob ids for small
files and sha256 for large ones.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kit.core.params import ParameterError

# the disk (or the user's quota, or the file-size limit) has no room: not a bad input
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def check_writable(folder: Path, what: str, fix: str) -> Path:
    """Make ``folder`` if needed and prove a file can be written there, or raise a
    ParameterError naming the folder, the reason and ``fix`` (before anything runs)."""
    probe = folder / f".kit-write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno in NO_ROOM:  # no bad input: the same command works once there is room
            raise OSError(exc.errno, exc.strerror, str(folder)) from None
        reason = exc.strerror or type(exc).__name__
        raise ParameterError(
            f"{what} {str(folder)!r} cannot be written ({reason}). {fix}"
        ) from None
    return folder


def write_atomic(path: Path, data: str | bytes, errors: str = "strict") -> Path:
    """Write ``data`` (text as UTF-8) beside ``path``, then rename it over ``path``.

    On failure the earlier file is untouched, the temp file is removed, and the OSError names
    ``path`` (the file the user knows), not the temp file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode("utf-8", errors) if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename != str(path):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    return path


def write_failure(exc: OSError) -> str:
    """One clause for a failed write: the file, the reason, and, for a full disk, the fix."""
    what = f"could not write {exc.filename}" if exc.filename else "could not write"
    reason = exc.strerror or type(exc).__name__
    if exc.errno in NO_ROOM:
        return f"{what} ({reason}): free space on that disk, or write elsewhere"
    return f"{what} ({reason})"


def cache_root() -> Path:
    """Where built artifacts live: $KIT_CACHE_DIR, else ~/.cache/vlm-repro-kit."""
    env = os.environ.get("KIT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "vlm-repro-kit"


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    git_blob_sha1: str | None = None  # the id git (and the hub) gives the file's content


def file_digest(path: Path, git_blob: bool = False) -> FileDigest:
    """sha256 of a file, and its git blob id when asked: one read for both, since the hub
    publishes git blob ids for small files and sha256 for large ones."""
    path = Path(path)
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % path.stat().st_size) if git_blob else None
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(block)
            if blob is not None:
                blob.update(block)
    return FileDigest(sha256.hexdigest(), blob.hexdigest() if blob is not None else None)
