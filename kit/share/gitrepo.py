"""git through subprocess, for a wiki's local clone: checks made before anything is written,
a commit of the kit's pages only, and a push to the clone's remote.

Refusals are ParameterErrors (one paragraph, exit 2); a git step that fails afterwards is a
GitError naming the step, and a failed push names the remote and leaves the commit in place.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kit.core.params import ParameterError

PUSH_TIMEOUT_S = 300


class GitError(RuntimeError):
    """A git step failed after the checks: the message says which and what to do."""


def git(root: Path, *args: str, timeout: float | None = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {result.returncode}"


def require_work_tree(root: Path) -> None:
    """Refuse a path that is not a git work tree (or no git at all)."""
    fix = (
        "Give --git-wiki a local clone of the wiki (e.g. `git clone "
        "https://github.com/OWNER/REPO.wiki.git`), then run the command again."
    )
    if not root.is_dir():
        raise ParameterError(f"--git-wiki {str(root)!r} is not a folder. {fix}")
    try:
        result = git(root, "rev-parse", "--is-inside-work-tree")
    except FileNotFoundError:
        raise ParameterError("git is not installed here, and sharing to a wiki needs it.") from None
    if result.returncode != 0 or result.stdout.strip() != "true":
        raise ParameterError(f"--git-wiki {str(root)!r} is not a git work tree. {fix}")


def require_clean(root: Path, folder: PurePosixPath) -> None:
    """Refuse when the kit's pages have changes not committed: they would be swept into
    the kit's commit, or overwritten."""
    result = git(root, "status", "--porcelain", "--untracked-files=all", "--", str(folder))
    changed = [line[3:] for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0:
        raise ParameterError(f"--git-wiki {str(root)!r}: git status failed ({last_line(result)}).")
    if changed:
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        shown = ", ".join(changed[:5]) + more
        raise ParameterError(
            f"--git-wiki {str(root)!r} has changes not committed in the kit's pages "
            f"({folder}/): {shown}. Commit or discard them (`git -C {root} status`), then share "
            "again; nothing was written."
        )


def require_identity(root: Path) -> None:
    """Refuse before writing when git has no name and email to commit with."""
    if git(root, "var", "GIT_COMMITTER_IDENT").returncode != 0:
        raise ParameterError(
            f"git has no name and email to commit with in {str(root)!r}. Set them "
            f"(`git -C {root} config user.name 'Your Name'` and `git -C {root} config "
            "user.email you@example.com`), then share again; nothing was written."
        )


def commit(root: Path, folder: PurePosixPath, message: str) -> str | None:
    """Commit the kit's folder alone; its short id, or None when nothing changed."""
    added = git(root, "add", "--all", "--", str(folder))
    if added.returncode != 0:
        raise GitError(f"git add in {root} failed: {last_line(added)}")
    if git(root, "diff", "--cached", "--quiet", "--", str(folder)).returncode == 0:
        return None
    done = git(root, "commit", "--quiet", "-m", message, "--", str(folder))
    if done.returncode != 0:
        raise GitError(f"git commit in {root} failed: {last_line(done)}")
    return git(root, "rev-parse", "--short", "HEAD").stdout.strip()


@dataclass(frozen=True)
class PushTarget:
    remote: str
    url: str
    branch: str  # on the remote


def push_target(root: Path) -> PushTarget | None:
    """Where the current branch goes: its upstream, else ``origin`` (or the only remote)
    under the same branch name; None without a remote or a branch."""
    branch = git(root, "symbolic-ref", "--short", "-q", "HEAD").stdout.strip()
    remotes = git(root, "remote").stdout.split()
    if not branch or not remotes:
        return None
    remote = git(root, "config", f"branch.{branch}.remote").stdout.strip()
    merge = git(root, "config", f"branch.{branch}.merge").stdout.strip()
    if remote not in remotes:
        remote = "origin" if "origin" in remotes else remotes[0]
        merge = ""
    url = git(root, "remote", "get-url", remote).stdout.strip()
    return PushTarget(remote, url, merge.removeprefix("refs/heads/") or branch)


def needs_push(root: Path, target: PushTarget) -> bool:
    """Whether HEAD holds commits the remote (as last seen) lacks."""
    tracking = f"refs/remotes/{target.remote}/{target.branch}"
    if git(root, "rev-parse", "--verify", "-q", tracking).returncode != 0:
        return git(root, "rev-parse", "--verify", "-q", "HEAD").returncode == 0
    ahead = git(root, "rev-list", "--count", f"{tracking}..HEAD").stdout.strip()
    return ahead not in ("", "0")


def push(root: Path, target: PushTarget) -> None:
    """Push HEAD to the target; a failure is a GitError naming the remote."""
    try:
        result = git(
            root, "push", target.remote, f"HEAD:refs/heads/{target.branch}", timeout=PUSH_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess([], 1, "", f"no answer in {PUSH_TIMEOUT_S} s")
    if result.returncode != 0:
        raise GitError(
            f"git push to remote {target.remote!r} ({target.url}) failed: {last_line(result)}. "
            f"The commit stays in {root}; push it with `git -C {root} push {target.remote} "
            f"HEAD:{target.branch}` once the remote accepts it."
        )
