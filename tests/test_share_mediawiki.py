"""``python -m kit share RUN_FOLDER... --mediawiki URL``: runs as pages of a real MediaWiki.

No engine: run folders are written by hand (tests/test_share_git_wiki.py's helpers). The
wiki is real: Debian's MediaWiki 1.39 on SQLite behind PHP's built-in server, one for the
module (tests/mediawikiserver.py), read back through its API as anyone reads it. Where it is
not installed the tests that need it skip, saying how to install it. The tests share the
wiki, so each shares runs of its own; only the index page is common to them.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import socket
import subprocess
from pathlib import Path

import pytest

from kit.report.markdown import markdown_cell, markdown_text
from kit.share.index import BEGIN, END, updated_index
from kit.share.mediawiki_format import INDEX_TITLE, WIKITEXT_INDEX, escape, to_wikitext
from kit.share.pages import plan_page

from .conftest import kit_in_process
from .mediawikiserver import Wiki, missing, running
from .test_share_git_wiki import digest, make_reproduce, make_run, one_paragraph_refusal

DEMO = "2026-12-05-smoke-demo-3a18a6"
PARENT = "2026-12-05-vendor-doc-aa11bb"
KIDS = [f"{PARENT}/2026-12-05-smoke-demo-c0ffee", f"{PARENT}/2026-12-05-mmmu-smoke-beef01"]
HOSTILE = "answer: <script>alert(\"x\")</script> {{Template}} [[Link]] '''bold''' | & done"
ODD = "a__NOTOC__b ~~~~ * ----\x01 e\u0301 [https://evil.example x] -{zh}- !! ||"
REPORT = (
    "# demo\n\n| metric | value |\n|---|---:|\n| accuracy | 0.5 |\n\n"
    "Model output:\n\n```text\nline one\n  indented <b>two</b>\n```\n"
)


def png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, "PNG")
    return out.getvalue()


def real_figures(*folders: Path, colour=(200, 60, 60)) -> bytes:
    """Each run's figure as a real PNG (the wiki shows an image only for a real one)."""
    data = png(colour)
    for folder in folders:
        (folder / "report_files" / "x.png").write_bytes(data)
    return data


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    with running(tmp_path_factory.mktemp("mediawiki")) as served:
        yield served


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("MEDIAWIKI_USER", "MEDIAWIKI_PASSWORD", "KIT_USER", "KIT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def share(
    wiki: Wiki, *runs: Path, url: str | None = None, env: dict | None = None, extra=()
) -> subprocess.CompletedProcess:
    login = {"MEDIAWIKI_USER": wiki.user, "MEDIAWIKI_PASSWORD": wiki.password}
    return kit_in_process(
        "share",
        *map(str, runs),
        "--mediawiki",
        url or wiki.url,
        *extra,
        env=login if env is None else env,
    )


def page(wiki: Wiki, title: str) -> dict:
    found = wiki.api(
        action="query", titles=title, prop="revisions|info", rvprop="content|ids", rvslots="main"
    )
    return found["query"]["pages"][0]


def wikitext(wiki: Wiki, title: str) -> str:
    return page(wiki, title)["revisions"][0]["slots"]["main"]["content"]


def rendered(wiki: Wiki, title: str) -> dict:
    found = wiki.api(
        action="parse",
        page=title,
        prop="text|links|templates|images|externallinks",
        disablelimitreport="1",
    )
    return found["parse"]


def file_history(wiki: Wiki, name: str) -> list[dict]:
    found = wiki.api(
        action="query",
        titles=f"File:{name}",
        prop="imageinfo",
        iiprop="sha1|url|size",
        iilimit="max",
    )
    return found["query"]["pages"][0].get("imageinfo", [])


def state(wiki: Wiki, titles: list[str], files: list[str]) -> dict:
    """Every page's latest revision and every file's versions: what a share may change."""
    return {
        **{title: page(wiki, title).get("lastrevid") for title in titles},
        **{name: [v["sha1"] for v in file_history(wiki, name)] for name in files},
    }


def test_runs_become_pages_with_tables_code_figures_children_and_an_index(tmp_path, wiki):
    outputs = tmp_path / "outputs"
    demo = make_run(outputs, "20261205-114415-demo-3a18a6", report=REPORT)
    parent, children = make_reproduce(outputs)
    figure = real_figures(demo, parent, *children)
    before = {folder: digest(folder) for folder in (demo, parent, *children)}

    done = share(wiki, demo, parent)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"20261205-114415-demo-3a18a6 -> page '{DEMO}' created, 1 figure (1 uploaded): "
        f"{wiki.url}/index.php/{DEMO}"
    )
    # the children first, so that the parent's links are to pages that exist
    assert [line.split("'")[1] for line in lines[1:4]] == [*KIDS, PARENT]
    assert re.fullmatch(  # created, or updated when another test shared a run before
        rf"index: page '{INDEX_TITLE}' (created|updated): {wiki.url}/index.php/VLM_kit_runs",
        lines[4],
    )

    text = wikitext(wiki, DEMO)
    assert '{| class="wikitable"\n|-\n! metric\n! style="text-align:right" | value\n' in text
    assert '|-\n| accuracy\n| style="text-align:right" | 0.5\n|}' in text
    assert "<pre>line one\n  indented &lt;b&gt;two&lt;/b&gt;</pre>" in text
    assert f"[[File:{DEMO}-x.png|alt=a figure]]" in text
    shown = rendered(wiki, DEMO)
    assert '<table class="wikitable">' in shown["text"] and "<pre>line one\n" in shown["text"]
    assert re.search(rf'<img alt="a figure" src="[^"]*/{DEMO}-x\.png"', shown["text"])
    (version,) = file_history(wiki, f"{DEMO}-x.png")
    assert version["sha1"] == hashlib.sha1(figure).hexdigest()
    assert wiki.fetch(version["url"]) == figure  # the uploaded file itself

    links = rendered(wiki, PARENT)["links"]
    assert sorted(link["title"] for link in links) == sorted(KIDS)
    assert all(link["exists"] for link in links)  # blue links: the children came first
    assert f"| [[{KIDS[0]}|demo run]]" in wikitext(wiki, PARENT)
    for kid in KIDS:
        assert f"[[File:{kid.split('/')[1]}-x.png|alt=a figure]]" in wikitext(wiki, kid)
    index = wikitext(wiki, INDEX_TITLE)
    assert f"| [[{PARENT}]] || reproduce || ok || 2026-12-05 || {parent.name}" in index
    assert f"| [[{DEMO}]] || demo || ok || 2026-12-05 || {demo.name}" in index
    assert "c0ffee" not in index  # children are reached from their parent
    assert {folder: digest(folder) for folder in (demo, parent, *children)} == before

    titles = [DEMO, PARENT, *KIDS, INDEX_TITLE]
    files = [f"{name.split('/')[-1]}-x.png" for name in (DEMO, PARENT, *KIDS)]
    kept = state(wiki, titles, files)
    again = share(wiki, demo, parent)  # nothing changed: nothing saved, nothing uploaded
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged, 1 figure (0 uploaded)") == 4
    assert f"index: page '{INDEX_TITLE}' unchanged" in again.stdout
    assert state(wiki, titles, files) == kept

    (demo / "report.md").write_text("# demo\n\nbetter now\n\n![a figure](report_files/x.png)\n")
    changed = real_figures(demo, colour=(10, 120, 10))
    third = share(wiki, demo)
    assert third.returncode == 0, third.stderr
    assert f"page '{DEMO}' updated, 1 figure (1 uploaded)" in third.stdout
    assert "better now" in wikitext(wiki, DEMO)
    assert [v["sha1"] for v in file_history(wiki, f"{DEMO}-x.png")] == [
        hashlib.sha1(changed).hexdigest(),  # a new version of the same file, newest first
        hashlib.sha1(figure).hexdigest(),
    ]
    assert f"index: page '{INDEX_TITLE}' unchanged" in third.stdout
    for proc in (done, again, third):  # the password is only ever sent to log in
        assert wiki.password not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or wiki.password.encode() not in path.read_bytes(), path


def test_the_index_keeps_its_other_rows_and_text_and_lists_newest_first(tmp_path, wiki):
    import mwclient

    outputs = tmp_path / "outputs"
    first = make_run(outputs, "20261208-090000-demo-1d1d1d", label="index-a", started="")
    second = make_run(outputs, "20261209-090000-mmmu-2e2e2e", notebook="mmmu", label="", started="")
    real_figures(first, second)
    assert share(wiki, first).returncode == 0
    site = mwclient.Site(wiki.url.split("//")[1], path="/", scheme="http")
    site.login(wiki.user, wiki.password)
    edited = "Notes kept by hand.\n\n" + wikitext(wiki, INDEX_TITLE) + "\n\nAnd below."
    site.pages[INDEX_TITLE].edit(edited, summary="by hand")

    done = share(wiki, second)

    assert done.returncode == 0, done.stderr
    index = wikitext(wiki, INDEX_TITLE)
    assert index.startswith("Notes kept by hand.\n") and index.endswith(f"{END}\n\nAnd below.")
    rows = re.findall(r"^\| \[\[([^\]]+)\]\]", index, re.MULTILINE)
    assert rows[:2] == ["2026-12-09-mmmu-2e2e2e", "2026-12-08-index-a-1d1d1d"]
    assert rows == sorted(rows, reverse=True) and len(rows) == len(set(rows))
    assert BEGIN in index and "<!--" not in rendered(wiki, INDEX_TITLE)["text"]


def test_text_from_a_model_or_dataset_reads_as_text_on_the_wiki(tmp_path, wiki):
    report = (
        f"# {markdown_cell(HOSTILE)}\n\n{markdown_cell(HOSTILE)}\n\n"
        f"| answer | odd |\n|---|---|\n| {markdown_cell(HOSTILE)} | {markdown_cell(ODD)} |\n\n"
        f"- {markdown_cell(ODD)}\n\n{markdown_text(HOSTILE)}\n"
        "<script>alert('raw')</script><img src=x onerror=alert(1)>\n"
    )
    run = make_run(tmp_path / "outputs", "20261207-100000-demo-e5e5e5", label="hostile", started="")
    (run / "report.md").write_text(report)
    title = "2026-12-07-hostile-e5e5e5"

    done = share(wiki, run, url=f"{wiki.url}/api.php")  # api.php's own URL works too

    assert done.returncode == 0, done.stderr
    shown = rendered(wiki, title)
    body = shown["text"]
    assert "<script" not in body and "onerror" not in body and "<b>bold" not in body
    assert shown["templates"] == [] and shown["links"] == [] and shown["images"] == []
    assert shown["externallinks"] == [] and "<h1" in body and "<table" in body
    words = html.unescape(re.sub(r"<[^>]+>", "", body))
    assert words.count(HOSTILE) == 4  # heading, paragraph, table cell, code block
    # twice, in a cell and a list item: no magic word, list, rule, link or variant came of it
    assert words.count(ODD.replace("\x01", "\ufffd").replace("e\u0301", "\u00e9")) == 2
    assert "[[User:" not in wikitext(wiki, title)  # no signature came of ~~~~
    again = share(wiki, run)
    assert f"page '{title}' unchanged" in again.stdout  # read back, it compares equal


class Trap:
    """A port that listens and is never answered: whether anything connected to it."""

    def __enter__(self) -> Trap:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        return self

    def connected(self) -> bool:
        self.socket.setblocking(False)
        try:
            self.socket.accept()[0].close()
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc) -> None:
        self.socket.close()


def test_refusals_come_before_any_request(tmp_path):
    run = make_run(tmp_path / "outputs", "20261205-114415-demo-3a18a6")
    secret = "0123456789abcdefghijklmnopqrstuv"
    login = {"MEDIAWIKI_USER": "Admin@kit", "MEDIAWIKI_PASSWORD": secret}
    with Trap() as trap:
        site = Wiki(trap.url, "Admin@kit", secret)
        one_paragraph_refusal(share(site, run, env={}), "MEDIAWIKI_USER is not set")
        no_password = share(site, run, env={"MEDIAWIKI_USER": "Admin@kit"})
        one_paragraph_refusal(no_password, "MEDIAWIKI_PASSWORD is not set", "bot password")
        as_name = share(site, run, env=login, extra=("--mediawiki-password-env", secret))
        one_paragraph_refusal(as_name, "NAME of an environment variable")
        assert secret not in as_name.stderr
        named = share(
            site,
            run,
            env={"KIT_USER": "Admin@kit"},
            extra=("--mediawiki-user-env", "KIT_USER", "--mediawiki-password-env", "KIT_PASSWORD"),
        )
        one_paragraph_refusal(named, "KIT_PASSWORD is not set", "--mediawiki-password-env")
        one_paragraph_refusal(share(site, tmp_path / "missing"), "is not a folder")
        (tmp_path / "plain").mkdir()
        one_paragraph_refusal(share(site, tmp_path / "plain"), "not a run folder")
        twins = make_run(tmp_path / "outputs", "20261205-114415-demo-7f7f7f")
        for name in ("a b.png", "a-b.png"):
            (twins / "report_files" / name).write_bytes(b"png")
        same = share(site, twins, env=login)
        one_paragraph_refusal(same, "'a b.png' and 'a-b.png'", "the same file on the wiki")
        space = share(site, run, env=login, extra=("--space", "VLM"))
        one_paragraph_refusal(space, "--space goes with --confluence URL, not with --mediawiki")
        for url, words in [
            ("wiki.example.com", "not an http(s) URL"),
            ("http://wiki.example.com/w", "plain http"),
            (f"https://Admin:{secret}@wiki.example.com/w", "credentials in its URL"),
            ("https://wiki.example.com/w/api.php?action=query", "a query or a fragment"),
        ]:
            done = share(site, run, url=url, env=login)
            one_paragraph_refusal(done, "--mediawiki", *words)
            assert secret not in done.stderr
        assert not trap.connected()


def test_a_call_the_wiki_refuses_is_exit_1_naming_it(tmp_path, wiki):
    outputs = tmp_path / "outputs"
    run = make_run(outputs, "20261210-100000-demo-f0f0f0", label="refused", started="")
    real_figures(run)
    wrong = share(wiki, run, env={"MEDIAWIKI_USER": wiki.user, "MEDIAWIKI_PASSWORD": "w" * 32})
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith("error: logging in as 'Admin@kit': the wiki refused the login")
    assert "w" * 32 not in wrong.stderr and wiki.password not in wrong.stderr

    nowhere = share(wiki, run, url=f"{wiki.url}/nowhere")
    assert nowhere.returncode == 1 and "answered 404 Not Found" in nowhere.stderr

    (run / "report_files" / "notes.txt").write_text("not a figure a wiki takes")
    banned = share(wiki, run)
    assert banned.returncode == 1 and banned.stderr.count("\n") == 1
    assert "figure notes.txt of run folder 20261210-100000-demo-f0f0f0" in banned.stderr
    assert "$wgFileExtensions" in banned.stderr and "nothing was written" in banned.stderr
    assert page(wiki, "2026-12-10-refused-f0f0f0").get("missing")
    for proc in (wrong, nowhere, banned):
        assert wiki.password not in proc.stdout + proc.stderr


def test_wikitext_of_markdown_lists_quotes_links_and_escapes():
    text = (
        "Intro *it* and **bold** ~~gone~~ <sub>2</sub>\nsecond line\n\n"
        "- one\n- two\n  1. inner\n\n> quoted\n\n---\n\n"
        "[web](<https://e.org/a b?x=1&y='2'~__>) [child](p/c.md) [fig](p/x.png) [gone](../x.md) "
        "![pic](p/x.png) ![far](https://e.org/i.png) ![lost](elsewhere.png)\n\n"
        '\\#1 is not a list\n\n;nor a term\n\n<table><tr><td colspan="2">wide</td></tr></table>\n'
    )
    assert to_wikitext(text, {"p/x.png": "P-x.png"}, {"p/c.md": "P/c"}) == (
        "Intro ''it'' and '''bold''' <s>gone</s> <sub>2</sub> second line\n\n"
        "* one\n* two\n*# inner\n\n<blockquote>\n\nquoted\n\n</blockquote>\n\n----\n\n"
        "[https://e.org/a%20b?x=1&y=%272%27%7E_%5F web] [[P/c|child]] [[Media:P-x.png|fig]] "
        "gone [[File:P-x.png|alt=pic]] [https://e.org/i.png far] &#91;image not shared&#58; "
        "lost&#93;\n\n&#35;1 is not a list\n\n&#59;nor a term\n\n"
        '{| class="wikitable"\n|-\n| colspan="2" | wide\n|}'
    )
    assert escape("a|b [[c]] {{d}} 'e' ~f: __g__ =h! <i> &j") == (
        "a&#124;b &#91;&#91;c&#93;&#93; &#123;&#123;d&#125;&#125; &#39;e&#39; &#126;f&#58; "
        "_&#95;g_&#95; &#61;h&#33; &lt;i&gt; &amp;j"
    )


def test_the_wikitext_index_is_updated_row_by_row(tmp_path):
    outputs = tmp_path / "outputs"
    first = plan_page(make_run(outputs, "20261205-114415-demo-3a18a6", notebook="de|mo"))
    second = plan_page(make_run(outputs, "20261206-090000-mmmu-77aa00", label="[[x]]", started=""))
    new = updated_index(None, [first], WIKITEXT_INDEX)
    assert new.startswith("Runs shared with <code>python -m kit share</code>")
    assert new.endswith(
        f'{BEGIN}\n{{| class="wikitable sortable"\n! run\n! notebook\n! status\n! date\n'
        f"! run folder\n|-\n| [[{DEMO}]] || de&#124;mo || ok || 2026-12-05 || "
        f"20261205-114415-demo-3a18a6\n|}}\n{END}\n"
    )
    both = updated_index("Ours.\n\n" + new.rstrip(), [second, first], WIKITEXT_INDEX)
    assert both.startswith("Ours.\n\nRuns shared") and both.endswith(END)
    rows = [WIKITEXT_INDEX.key(line) for line in both.splitlines()]
    assert [row for row in rows if row] == ["2026-12-06-x-77aa00", DEMO]
    assert updated_index(both, [first], WIKITEXT_INDEX) == both
