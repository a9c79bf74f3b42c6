"""``python -m kit share RUN_FOLDER... --confluence URL --space KEY``: runs as Confluence pages.

No engine and no Confluence: run folders are written by hand (tests/test_share_git_wiki.py's
helpers), and Confluence is tests/confluencestub.py, an in-memory stand-in for its REST API
that parses every page body as XML (storage format) and records every call.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from kit.share.confluence_format import parse_storage, same_storage, to_storage

from .confluencestub import AC, RI, StubConfluence, running
from .conftest import kit_in_process
from .test_share_git_wiki import PNG, digest, make_reproduce, make_run, one_paragraph_refusal

USER, TOKEN = "kit-bot", "s3cr3t-T0KEN-4f9a"
BASIC = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
ENV = {"CONFLUENCE_USER": USER, "CONFLUENCE_TOKEN": TOKEN}
TITLE = "2026-12-05-smoke-demo-3a18a6"
NOISE = 'answer: <script>alert("x")</script> & ]]> \x01 done'
REPORT = (
    "# demo\n\n| metric | value |\n|---|---|\n| accuracy | 0.5 &lt;b&gt; |\n\n"
    f"Model output:\n\n```text\n{NOISE}\n```\n"
)


def tag(ns: str, name: str) -> str:
    return f"{{{AC if ns == 'ac' else RI}}}{name}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("CONFLUENCE_USER", "CONFLUENCE_TOKEN", "KIT_TOKEN", "KIT_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def stub():
    with running(BASIC) as stub:
        yield stub


def share(
    stub: StubConfluence, *runs: Path, env: dict | None = None, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    return kit_in_process(
        "share",
        *map(str, runs),
        "--confluence",
        stub.url,
        "--space",
        "VLM",
        *extra,
        env=ENV if env is None else env,
    )


def test_a_run_becomes_a_page_with_its_table_code_and_figure_then_is_kept_up_to_date(
    tmp_path, stub
):
    run = make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6", report=REPORT)
    before = digest(run)

    done = share(stub, run)

    assert done.returncode == 0, done.stderr
    assert f"-> page '{TITLE}' created, 1 figure (1 uploaded): {stub.url}/pages/" in done.stdout
    assert [p["title"] for p in stub.pages.values()] == [TITLE]
    tree = stub.tree(TITLE)
    cells = [cell.text for cell in tree.iter("td")]
    assert cells == ["accuracy", "0.5 <b>"]  # an entity in the report stays text
    assert [th.text for th in tree.iter("th")] == ["metric", "value"]
    (code,) = tree.iter(tag("ac", "structured-macro"))
    assert code.get(tag("ac", "name")) == "code"
    assert code.find(tag("ac", "plain-text-body")).text == NOISE.replace("\x01", "\ufffd")
    assert tree.find(".//script") is None
    (image,) = tree.iter(tag("ac", "image"))
    assert image.find(tag("ri", "attachment")).get(tag("ri", "filename")) == "x.png"
    assert image.get(tag("ac", "alt")) == "a figure"
    page_id = stub.page(TITLE)["id"]
    assert stub.attachments[page_id]["x.png"]["data"] == PNG
    assert digest(run) == before

    calls = len(stub.calls)
    again = share(stub, run)  # nothing changed: no page written, nothing uploaded
    assert again.returncode == 0, again.stderr
    assert f"page '{TITLE}' unchanged, 1 figure (0 uploaded)" in again.stdout
    assert {c.method for c in stub.calls[calls:]} == {"GET"}
    assert len(stub.pages) == 1 and stub.page(TITLE)["version"]["number"] == 1

    (run / "report.md").write_text("# demo\n\nbetter now\n\n![a figure](report_files/x.png)\n")
    (run / "report_files" / "x.png").write_bytes(PNG + b"2")
    third = share(stub, run)
    assert third.returncode == 0, third.stderr
    assert f"page '{TITLE}' updated, 1 figure (1 uploaded)" in third.stdout
    assert len(stub.pages) == 1 and stub.page(TITLE)["version"]["number"] == 2
    assert "better now" in stub.page(TITLE)["body"]["storage"]["value"]
    assert stub.attachments[page_id]["x.png"]["data"] == PNG + b"2"
    assert stub.attachments[page_id]["x.png"]["version"]["number"] == 2
    assert stub.made("POST")[-1].path.endswith("/data")  # a new version, not a second file


def test_a_reproduce_run_is_a_parent_page_with_its_children_as_child_pages(tmp_path, stub):
    parent, children = make_reproduce(tmp_path / "outputs")
    before = {folder: digest(folder) for folder in (parent, *children)}

    done = share(stub, parent)

    assert done.returncode == 0, done.stderr
    top = stub.page("2026-12-05-vendor-doc-aa11bb")
    kids = ["2026-12-05-smoke-demo-c0ffee", "2026-12-05-mmmu-smoke-beef01"]
    for title in kids:
        assert stub.page(title)["ancestors"] == [{"id": top["id"], "title": top["title"]}]
    links = [
        link.find(tag("ri", "page")).get(tag("ri", "content-title"))
        for link in stub.tree(top["title"]).iter(tag("ac", "link"))
    ]
    assert links == [kids[0], kids[1], kids[0]]  # every link names a page that exists
    bodies = [
        link.find(tag("ac", "plain-text-link-body")).text
        for link in stub.tree(top["title"]).iter(tag("ac", "link"))
    ]
    assert bodies == [kids[0], kids[1], "demo run"]
    assert len(stub.made("POST")) == 3 + 3  # three pages, three figures
    assert {folder: digest(folder) for folder in (parent, *children)} == before

    calls = len(stub.calls)
    assert share(stub, parent).returncode == 0
    assert {c.method for c in stub.calls[calls:]} == {"GET"} and len(stub.pages) == 3


def test_credentials_go_in_the_header_only_never_into_files_or_output(tmp_path, stub):
    outputs = tmp_path / "outputs"
    run = make_run(outputs, "20261205-114415-demo-3a18a6")
    done = share(stub, run)
    assert done.returncode == 0, done.stderr
    stub.authorization = f"Bearer {TOKEN}"  # no user: a bearer token (from a named variable)
    (run / "report.md").write_text("# other\n")
    bearer = share(
        stub, run, env={"KIT_TOKEN": TOKEN}, extra=("--confluence-token-env", "KIT_TOKEN")
    )
    assert bearer.returncode == 0, bearer.stderr
    stub.authorization = "Bearer something-else"
    refused = share(
        stub, run, env={"KIT_TOKEN": TOKEN}, extra=("--confluence-token-env", "KIT_TOKEN")
    )
    assert refused.returncode == 1 and "401" in refused.stderr
    as_name = share(stub, run, extra=("--confluence-token-env", TOKEN))  # the value by mistake
    one_paragraph_refusal(as_name, "NAME of an environment variable")
    for proc in (done, bearer, refused, as_name):
        assert TOKEN not in proc.stdout + proc.stderr
        assert base64.b64encode(f"{USER}:{TOKEN}".encode()).decode() not in proc.stdout
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_refusals_come_before_any_request(tmp_path, stub):
    run = make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6")

    one_paragraph_refusal(share(stub, run, env={}), "CONFLUENCE_TOKEN is not set")
    one_paragraph_refusal(
        share(stub, run, extra=("--confluence-user-env", "KIT_USER")), "KIT_USER", "not set"
    )
    one_paragraph_refusal(share(stub, tmp_path / "missing"), "is not a folder")
    for url, words in [
        ("confluence.example.com", "not an http(s) URL"),
        ("http://confluence.example.com", "plain http"),
        (f"https://{USER}:{TOKEN}@example.com", "credentials in its URL"),
        ("https://example.com/rest/api/content", "/rest/"),
    ]:
        done = kit_in_process("share", str(run), "--confluence", url, "--space", "VLM", env=ENV)
        one_paragraph_refusal(done, *words)
        assert TOKEN not in done.stderr
    no_space = kit_in_process("share", str(run), "--confluence", stub.url, env=ENV)
    one_paragraph_refusal(no_space, "--space KEY")
    assert stub.calls == [] and stub.pages == {}


def test_a_refused_call_is_exit_1_naming_the_status_and_the_page(tmp_path, stub):
    run = make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6")
    stub.fail["POST"] = 403
    done = share(stub, run)
    assert done.returncode == 1
    assert done.stderr.startswith("error: creating page '2026-12-05-smoke-demo-3a18a6'")
    assert "403" in done.stderr and "permission" in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_storage_format_is_xml_whatever_the_text_and_compares_by_meaning():
    text = (
        "# T <b>\n\n<details><summary>s</summary>\n\nin & out\n\n</details>\n\n"
        "| a | b |\n|---|---|\n| 1<br>2 | [x](https://e.org/?a=1&b=2) |\n\n"
        "![gone](elsewhere.png) [child](p/c.md) \x0b\n\n```python\nprint(']]>')\n```\n"
    )
    body = to_storage(text, {}, {"p/c.md": "Child & co"})
    tree = parse_storage(body)
    assert tree.find(".//a").get("href") == "https://e.org/?a=1&b=2"
    link = tree.find(f".//{tag('ac', 'link')}/{tag('ri', 'page')}")
    assert link.get(tag("ri", "content-title")) == "Child & co"
    assert "[image not shared: gone]" in body and "<br/>" in body
    assert 'ac:name="language">py<' in body and "print(']]>')" in "".join(tree.itertext())
    marked = body.replace('ac:name="code">', 'ac:name="code" ac:macro-id="abc-123">')
    assert same_storage(marked, body) and not same_storage(body.replace("in &amp;", "in"), body)
