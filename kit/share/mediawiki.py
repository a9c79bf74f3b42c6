"""``python -m kit share RUN_FOLDER... --mediawiki URL``: runs as MediaWiki pages.

Every check comes before the first request: the URL (https, or http to this machine only,
without credentials in it), the environment variables holding the user and password (named
by the options, never echoed when the name looks like a secret), every run folder, and
every page's wikitext. Then the login, and a look at what the wiki takes (uploads on, each
figure's file type) before anything is written. Each page is titled with its page name
(kit.share.pages), a reproduce run's children ``Parent/child`` (shared before it); its
figures are uploaded as files first (a file the wiki already holds with the same SHA-1 is
not sent again), then the page is created, edited, or left alone when its wikitext reads
the same. Last the index
page gets a row per run (other rows and text stay). Exit status: 0 shared; 2 refused
before any request; 1 the wiki refused a call (the pages before it are shared).
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from dataclasses import dataclass

from kit.core.params import ParameterError
from kit.share.index import updated_index
from kit.share.mediawiki_api import Credentials, MediaWiki, MediaWikiError, WikiPage
from kit.share.mediawiki_format import (
    INDEX_TITLE,
    WIKITEXT_INDEX,
    escape,
    file_name,
    page_titles,
    page_wikitext,
)
from kit.share.pages import Page
from kit.share.remote import env_value, site_url

USER_ENV = "MEDIAWIKI_USER"
PASSWORD_ENV = "MEDIAWIKI_PASSWORD"
SUMMARY = "vlm-kit: shared with python -m kit share"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # host[:port], as the URL has it
    path: str  # the folder api.php is in, ending in /
    credentials: Credentials


def check_url(url: str) -> tuple[str, str, str]:
    """(scheme, host, the folder api.php is in): from the wiki's script path, or the URL
    of its api.php or index.php."""
    fix = (
        "Give the address of the folder api.php is in (Special:Version shows it as the "
        "script path), e.g. --mediawiki https://wiki.example.com/w."
    )
    parts = site_url(url, "--mediawiki", fix, "--mediawiki-user-env, --mediawiki-password-env")
    if parts.query or parts.fragment:
        raise ParameterError(
            f"--mediawiki {url!r} is not a wiki's address (it has a query or a fragment). {fix}"
        )
    path = parts.path
    for script in ("api.php", "index.php"):
        if path.endswith(f"/{script}"):
            path = path[: -len(script)]
    return parts.scheme, parts.netloc, path.rstrip("/") + "/"


def read_credentials(user_env: str | None, password_env: str | None) -> Credentials:
    """From the environment: the user (a bot password's is Name@appid) and its password."""
    found = {}
    for option, name, what, default in (
        ("--mediawiki-user-env", user_env, "user", USER_ENV),
        ("--mediawiki-password-env", password_env, "password", PASSWORD_ENV),
    ):
        value = env_value(option, name or default, what, default)
        if value is None:
            raise ParameterError(
                f"the environment variable {name or default} is not set: export the wiki "
                f"{what} in it (a bot password from Special:BotPasswords: user Name@appid "
                f"and its password), or name another with {option} NAME; nothing was sent."
            )
        found[what] = value
    return Credentials(found["user"], found["password"])


def target_from(url: str, user_env: str | None, password_env: str | None) -> Target:
    scheme, host, path = check_url(url)
    return Target(scheme, host, path, read_credentials(user_env, password_env))


def check_file_names(pages: list[Page]) -> None:
    """No two figures of a page become the same file (their names' odd characters are
    replaced)."""
    for page in (p for top in pages for p in top.all_pages()):
        seen: dict[str, str] = {}
        for figure in page.figures:
            other = seen.setdefault(file_name(page, figure.name), figure.name)
            if other != figure.name:
                raise ParameterError(
                    f"figures {other!r} and {figure.name!r} of run folder {page.folder.name} "
                    "would be the same file on the wiki (characters other than letters, "
                    "digits, '.', '_' and '-' become '-'): rename one in report_files/ and "
                    "report.md; nothing was sent."
                )


def check_figures(wiki: MediaWiki, pages: list[Page]) -> None:
    """Every figure is a file the wiki takes: before anything is written."""
    figures = [(page, f) for top in pages for page in top.all_pages() for f in page.figures]
    if not figures:
        return
    enabled, extensions = wiki.uploads()
    if not enabled:
        raise MediaWikiError(
            f"run folder {figures[0][0].folder.name} has figures, and the wiki takes no "
            "uploads: $wgEnableUploads = true; in its LocalSettings.php turns them on; "
            "nothing was written."
        )
    for page, figure in figures:
        extension = figure.suffix.lower().lstrip(".")
        if extension not in extensions:
            raise MediaWikiError(
                f"figure {figure.name} of run folder {page.folder.name}: the wiki takes no "
                f".{extension} files (it takes {', '.join(sorted(extensions))}); add it to "
                "$wgFileExtensions in its LocalSettings.php; nothing was written."
            )


def upload_figures(wiki: MediaWiki, page: Page, title: str) -> int:
    """The page's figures as files, each sent only when the wiki's SHA-1 differs."""
    names = {file_name(page, figure.name): figure for figure in page.figures}
    held = wiki.file_digests(names) if names else {}
    sent = 0
    for name, figure in names.items():
        data = figure.read_bytes()
        if held.get(name) == hashlib.sha1(data).hexdigest():
            continue
        description = (
            f"Figure {escape(figure.name)} of [[{title}]], from run folder "
            f"{escape(page.folder.name)}; shared with <code>python -m kit share</code>."
        )
        wiki.upload(name, data, description, f"vlm-kit: {escape(figure.name)} of {title}")
        sent += 1
    return sent


def save(wiki: MediaWiki, found: WikiPage, text: str) -> str:
    """Created, updated or unchanged: a page whose wikitext reads the same is not saved (as
    MediaWiki stores text: NFC, no trailing whitespace)."""
    text = unicodedata.normalize("NFC", text).rstrip()
    if not found.exists:
        wiki.save(found, text, SUMMARY)
        return "created"
    if found.text == text or not wiki.save(found, text, SUMMARY):
        return "unchanged"
    return "updated"


def publish(wiki: MediaWiki, page: Page, titles: dict[int, str], texts: dict[int, str]) -> None:
    """The page's children, its figures, then the page: what it links to is there when it
    is saved, so the wiki renders those links as links to pages that exist."""
    for child in page.children:
        publish(wiki, child, titles, texts)
    title = titles[id(page)]
    sent = upload_figures(wiki, page, title)
    state = save(wiki, wiki.page(title), texts[id(page)])
    figures = f"{len(page.figures)} figure{'s' if len(page.figures) != 1 else ''}"
    print(
        f"{page.folder.name} -> page {title!r} {state}, {figures} ({sent} uploaded): "
        f"{wiki.page_url(title)}",
        flush=True,
    )


def share_mediawiki(target: Target, pages: list[Page]) -> int:
    titles = {key: title for page in pages for key, title in page_titles(page).items()}
    texts = {id(p): page_wikitext(p, titles) for page in pages for p in page.all_pages()}
    check_file_names(pages)
    wiki = MediaWiki(target.scheme, target.host, target.path, target.credentials)
    try:
        wiki.login()
        check_figures(wiki, pages)
        for page in pages:
            publish(wiki, page, titles, texts)
            for note in page.notes:
                print(f"note: {note}")
        found = wiki.page(INDEX_TITLE)
        index = updated_index(found.text if found.exists else None, pages, WIKITEXT_INDEX)
        state = save(wiki, found, index)
        print(f"index: page {INDEX_TITLE!r} {state}: {wiki.page_url(INDEX_TITLE)}")
    except MediaWikiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
