"""``python -m kit share RUN_FOLDER... --git-wiki CLONE``: runs as pages of a git-based wiki.

No engine: run folders are written by hand (a results.json ``read_run`` accepts, a report.md
with a figure, a reproduce parent with children.json and its children beside it), and the
wiki is a clone of a real local bare repository, so commits and pushes are git's own.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from kit.records.results import envelope, write_document

from .conftest import kit_in_process

PNG = b"\x89PNG\r\n\x1a\n" + b"not really an image, but bytes to copy"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def make_run(
    outputs: Path,
    name: str,
    notebook: str = "demo",
    label: str = "smoke-demo",
    started: str = "2026-12-05T11:44:16+00:00",
    report: str | None = None,
    **sections,
) -> Path:
    folder = outputs / name
    (folder / "report_files").mkdir(parents=True)
    document = envelope(
        notebook=notebook,
        status="ok",
        parameters={"model": "smoke"},
        label=label,
        started_at=started,
        sections=sections,
    )
    write_document(folder, document)
    body = report or f"# {notebook}\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    (folder / "report.md").write_text(body + "\n![a figure](report_files/x.png)\n")
    (folder / "report_files" / "x.png").write_bytes(PNG)
    return folder


def make_reproduce(outputs: Path) -> tuple[Path, list[Path]]:
    children = [
        make_run(outputs, "20261205-120100-demo-c0ffee"),
        make_run(outputs, "20261205-120200-mmmu-beef01", notebook="mmmu", label="mmmu-smoke"),
    ]
    report = "# Reproduce\n\n" + "".join(
        f"{what} run: [../{c.name}](../{c.name}/report.md)\n\n"
        for what, c in zip(("Demo", "MMMU"), children, strict=True)
    )
    report += (
        f"| claim | run |\n|---|---|\n| answer | [demo run](../{children[0].name}/report.md) |\n"
    )
    records = [
        {"key": key, "section": key, "notebook": key, "status": "ok", "folder": f"../{c.name}"}
        for key, c in zip(("demo", "mmmu"), children, strict=True)
    ]
    parent = make_run(
        outputs,
        "20261205-120000-reproduce-aa11bb",
        notebook="reproduce",
        label="vendor-doc",
        report=report,
        reproduce={"children": records, "reused": []},
    )
    (parent / "children.json").write_text(json.dumps({"children": records}))
    return parent, children


def digest(folder: Path) -> str:
    out = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        out.update(str(path.relative_to(folder)).encode())
        out.update(path.read_bytes() if path.is_file() else b"/")
    return out.hexdigest()


@pytest.fixture
def wiki(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository (the wiki's remote) and a clone of it with one page of its own."""
    bare, clone = tmp_path / "wiki.git", tmp_path / "wiki"
    git("init", "-q", "--bare", str(bare))
    git("clone", "-q", str(bare), str(clone))
    git("-C", str(clone), "config", "user.name", "Kit Test")
    git("-C", str(clone), "config", "user.email", "kit@example.com")
    (clone / "Home.md").write_text("# Our wiki\n")
    git("-C", str(clone), "add", "Home.md")
    git("-C", str(clone), "commit", "-q", "-m", "home")
    git("-C", str(clone), "push", "-q", "origin", "HEAD")
    return bare, clone


def share(clone: Path, *runs: Path) -> subprocess.CompletedProcess:
    return kit_in_process("share", *map(str, runs), "--git-wiki", str(clone))


def commits(bare: Path) -> list[str]:
    return git("--git-dir", str(bare), "log", "--format=%s").splitlines()


def index_rows(clone: Path) -> list[str]:
    text = (clone / "vlm-kit" / "index.md").read_text()
    return [line for line in text.splitlines() if line.startswith("| [")]


def test_a_run_becomes_a_page_with_its_figure_and_an_index_row_pushed(tmp_path, wiki):
    bare, clone = wiki
    run = make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6")
    before = digest(run)

    done = share(clone, run)

    assert done.returncode == 0, done.stderr
    page = "vlm-kit/2026-12-05-smoke-demo-3a18a6.md"
    assert f"-> {page} (1 figure)" in done.stdout
    assert "pushed to origin" in done.stdout
    assert commits(bare)[0] == "vlm-kit: share 2026-12-05-smoke-demo-3a18a6"
    files = git("--git-dir", str(bare), "ls-tree", "-r", "--name-only", "HEAD").split()
    assert sorted(files) == [
        "Home.md",
        "vlm-kit/2026-12-05-smoke-demo-3a18a6.md",
        "vlm-kit/2026-12-05-smoke-demo-3a18a6/x.png",
        "vlm-kit/index.md",
    ]
    text = git("--git-dir", str(bare), "show", f"HEAD:{page}")
    assert "![a figure](2026-12-05-smoke-demo-3a18a6/x.png)" in text
    assert "report_files" not in text
    assert (clone / "vlm-kit/2026-12-05-smoke-demo-3a18a6/x.png").read_bytes() == PNG
    index = git("--git-dir", str(bare), "show", "HEAD:vlm-kit/index.md")
    assert "[2026-12-05-smoke-demo-3a18a6](2026-12-05-smoke-demo-3a18a6.md) | demo | ok" in index
    assert digest(run) == before  # the run folder is only read

    again = share(clone, run)  # the same run again: same page, no row added, no commit
    assert again.returncode == 0, again.stderr
    assert "nothing committed" in again.stdout
    assert len(commits(bare)) == 2
    assert len(index_rows(clone)) == 1
    assert digest(run) == before


def test_a_second_run_adds_its_row_and_a_changed_run_replaces_its_own(tmp_path, wiki):
    bare, clone = wiki
    outputs = tmp_path / "outputs"
    first = make_run(outputs, "20261205-114415-demo-3a18a6")
    second = make_run(outputs, "20261206-090000-mmmu-77aa00", notebook="mmmu", label="", started="")
    assert share(clone, first).returncode == 0
    index = clone / "vlm-kit" / "index.md"
    index.write_text(index.read_text() + "\nNotes kept by hand.\n")
    git("-C", str(clone), "commit", "-q", "-am", "a note")

    assert share(clone, second).returncode == 0
    rows = index_rows(clone)
    assert [re.search(r"\[(.*?)\]", row).group(1) for row in rows] == [
        "2026-12-06-mmmu-77aa00",  # newest first; no label: the notebook, the folder's date
        "2026-12-05-smoke-demo-3a18a6",
    ]
    assert "Notes kept by hand." in index.read_text()

    (first / "report.md").write_text("# changed\n")  # no figure any more
    (first / "report_files" / "x.png").unlink()
    assert share(clone, first).returncode == 0
    assert len(index_rows(clone)) == 2
    assert not (clone / "vlm-kit/2026-12-05-smoke-demo-3a18a6/x.png").exists()
    assert commits(bare)[0] == "vlm-kit: share 2026-12-05-smoke-demo-3a18a6"
    assert len(commits(bare)) == 5


def test_a_reproduce_run_is_a_parent_page_linking_its_children_pages(tmp_path, wiki):
    bare, clone = wiki
    parent, children = make_reproduce(tmp_path / "outputs")
    before = {folder: digest(folder) for folder in (parent, *children)}

    done = share(clone, parent)

    assert done.returncode == 0, done.stderr
    page = clone / "vlm-kit" / "2026-12-05-vendor-doc-aa11bb.md"
    text = page.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links == [
        "2026-12-05-vendor-doc-aa11bb/2026-12-05-smoke-demo-c0ffee.md",
        "2026-12-05-vendor-doc-aa11bb/2026-12-05-mmmu-smoke-beef01.md",
        "2026-12-05-vendor-doc-aa11bb/2026-12-05-smoke-demo-c0ffee.md",
        "2026-12-05-vendor-doc-aa11bb/x.png",
    ]
    assert "[2026-12-05-smoke-demo-c0ffee](" in text  # a folder as link text: the page's name
    assert "| [demo run](2026-12-05-vendor-doc-aa11bb/2026-12-05-smoke-demo-c0ffee.md) |" in text
    for link in links:
        assert (page.parent / link).is_file(), link
    child = page.parent / links[0]
    for link in re.findall(r"\]\(([^)]+)\)", child.read_text()):
        assert (child.parent / link).is_file(), link  # the child's own figure
    assert len(index_rows(clone)) == 1  # children are reached through their parent
    assert "vlm-kit/2026-12-05-vendor-doc-aa11bb/2026-12-05-mmmu-smoke-beef01.md" in git(
        "--git-dir", str(bare), "show", "--name-only", "--format=", "HEAD"
    )
    assert {folder: digest(folder) for folder in (parent, *children)} == before


def test_a_push_failure_names_the_remote_and_keeps_the_commit(tmp_path, wiki):
    bare, clone = wiki
    git("-C", str(clone), "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    done = share(clone, make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6"))
    assert done.returncode == 1
    assert "git push to remote 'origin'" in done.stderr and "gone.git" in done.stderr
    assert git("-C", str(clone), "log", "-1", "--format=%s").startswith("vlm-kit: share")


def one_paragraph_refusal(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.strip().count("\n") == 0
    for word in words:
        assert word in done.stderr


def test_refusals_write_nothing(tmp_path, wiki):
    bare, clone = wiki
    run = make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6")
    plain = tmp_path / "plain"
    plain.mkdir()

    one_paragraph_refusal(share(plain, run), "not a git work tree")
    one_paragraph_refusal(share(clone, tmp_path / "missing"), "is not a folder")
    one_paragraph_refusal(share(clone, plain), "not a run folder")
    (run / "report.md").rename(run / "kept.md")
    one_paragraph_refusal(share(clone, run), "has no report.md")
    (run / "kept.md").rename(run / "report.md")
    assert not (clone / "vlm-kit").exists() and not list(plain.iterdir())

    assert share(clone, run).returncode == 0
    (clone / "vlm-kit" / "index.md").write_text("edited by hand\n")
    one_paragraph_refusal(share(clone, run), "changes not committed", "vlm-kit/index.md")
    assert (clone / "vlm-kit" / "index.md").read_text() == "edited by hand\n"
    assert len(commits(bare)) == 2


def test_a_child_gone_is_said_and_its_link_becomes_text(tmp_path, wiki):
    _, clone = wiki
    parent, children = make_reproduce(tmp_path / "outputs")
    (children[1] / "results.json").unlink()

    done = share(clone, parent)

    assert done.returncode == 0, done.stderr
    assert f"note: child ../{children[1].name} not shared" in done.stdout
    text = (clone / "vlm-kit" / "2026-12-05-vendor-doc-aa11bb.md").read_text()
    assert f"MMMU run: ../{children[1].name} (not shared)" in text
    assert "../" not in text.replace(f"../{children[1].name} (not shared)", "")
