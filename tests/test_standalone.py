"""The project stands on its own: a clone holds everything it refers to."""

import re
import subprocess

import pytest

from .conftest import REPO

# The team's notes and a build machine's paths are not part of a user's clone.
OUTSIDE = re.compile(r"FACTS\.md|\.\./shared\b|/work/(?:main|shared|notes)\b|/root/\.")


def tracked_files() -> list[str]:
    proc = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    return proc.stdout.splitlines()


def test_no_tracked_file_points_outside_the_repo():
    offenders = []
    for name in tracked_files():
        try:
            text = (REPO / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert offenders == [], "\n".join(offenders)


def test_docs_the_code_cites_exist():
    cited = set()
    for name in tracked_files():
        if name.endswith((".py", ".ipynb", ".yaml", ".md")):
            text = (REPO / name).read_text(encoding="utf-8")
            cited |= set(re.findall(r"docs/[\w-]+\.md", text))
    assert cited, "the code cites its documentation"
    missing = sorted(c for c in cited if not (REPO / c).is_file())
    assert missing == []
