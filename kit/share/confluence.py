"""``python -m kit share RUN_FOLDER... --confluence URL --space KEY``: runs as Confluence pages.

Every check comes before the first request: the URL (https, or http to this machine only,
without credentials in it), the space key, the environment variables holding the
credentials (named by the options, never echoed when the name looks like a secret), every
run folder, and every page's storage format. Then each page is found by its title (the
page name of kit.share.pages) and created, updated (a new version) or left as it is when
its stored body says the same; its figures are attached (a figure already attached with the
same bytes, known by the digest in its comment, is not sent again). A reproduce run's
children become its child pages. Exit status: 0 shared; 2 refused before any request; 1
Confluence refused a call (the pages before it are shared).
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from typing import Any

from kit.core.params import ParameterError
from kit.share.confluence_api import Confluence, ConfluenceError, Credentials
from kit.share.confluence_format import page_storage, same_storage
from kit.share.pages import Page
from kit.share.remote import env_value, site_url

USER_ENV = "CONFLUENCE_USER"
TOKEN_ENV = "CONFLUENCE_TOKEN"
_SPACE_KEY = re.compile(r"~?[A-Za-z0-9_.@-]{1,255}")


@dataclass(frozen=True)
class Target:
    url: str
    space: str
    credentials: Credentials


def check_url(url: str) -> str:
    fix = "Give the site's address, e.g. --confluence https://confluence.example.com/confluence."
    parts = site_url(url, "--confluence", fix, "--confluence-user-env, --confluence-token-env")
    if parts.query or parts.fragment or "/rest/" in parts.path + "/":
        raise ParameterError(
            f"--confluence {url!r} is not a site's address (it has a query, a fragment or "
            f"/rest/ in it). {fix}"
        )
    return url.strip().rstrip("/")


def check_space(space: str | None) -> str:
    if not space:
        raise ParameterError(
            "--confluence needs --space KEY, the key of the space the pages go into (the "
            "KEY in /display/KEY/... or /spaces/KEY/... of its address)."
        )
    if not _SPACE_KEY.fullmatch(space):
        raise ParameterError(
            f"--space {space!r} is not a space key (letters and digits, ~user for a "
            "personal space)."
        )
    return space


def read_credentials(user_env: str | None, token_env: str | None) -> Credentials:
    """From the environment: a user and token (basic auth), or a token alone (bearer)."""
    token_name = token_env or TOKEN_ENV
    token = env_value("--confluence-token-env", token_name, "token", TOKEN_ENV)
    if token is None:
        raise ParameterError(
            f"the environment variable {token_name} is not set: export the Confluence API "
            "token (or personal access token) in it, or name another with "
            "--confluence-token-env NAME; nothing was sent."
        )
    user = env_value("--confluence-user-env", user_env or USER_ENV, "user", USER_ENV)
    if user is None and user_env is not None:
        raise ParameterError(
            f"the environment variable {user_env} (--confluence-user-env) is not set: export "
            "the Confluence user in it, or leave the option out to send the token as a bearer "
            "token; nothing was sent."
        )
    return Credentials(user, token)


def target_from(url: str, space: str | None, user_env: str | None, token_env: str | None) -> Target:
    return Target(check_url(url), check_space(space), read_credentials(user_env, token_env))


def figure_comment(data: bytes) -> str:
    return f"vlm-kit sha256:{hashlib.sha256(data).hexdigest()}"


def parent_of(page: dict[str, Any]) -> str | None:
    ancestors = page.get("ancestors") or []
    return str(ancestors[-1].get("id")) if ancestors else None


def publish(site: Confluence, page: Page, bodies: dict[int, str], parent: str | None) -> None:
    """The page (under ``parent``), its attachments, then its children under it."""
    title, body = page.name, bodies[id(page)]
    found = site.find(title)
    moved = parent is not None and found is not None and parent_of(found) != parent
    if found is None:
        shared, state = site.create(title, body, parent), "created"
    else:
        stored = ((found.get("body") or {}).get("storage") or {}).get("value") or ""
        if same_storage(stored, body) and not moved:
            shared, state = found, "unchanged"
        else:
            shared, state = site.update(found, body, parent), "updated"
    attached = site.attachments(shared) if page.figures else {}
    sent = 0
    for figure in page.figures:
        data = figure.read_bytes()
        comment = figure_comment(data)
        existing = attached.get(figure.name)
        if existing is not None and comment in str((existing.get("metadata") or {}).get("comment")):
            continue
        site.upload(shared, figure.name, data, comment, existing)
        sent += 1
    figures = f"{len(page.figures)} figure{'s' if len(page.figures) != 1 else ''}"
    print(
        f"{page.folder.name} -> page {title!r} {state}, {figures} ({sent} uploaded): "
        f"{site.page_url(shared)}",
        flush=True,
    )
    for child in page.children:
        publish(site, child, bodies, str(shared["id"]))


def share_confluence(target: Target, pages: list[Page]) -> int:
    bodies = {id(p): page_storage(p) for page in pages for p in page.all_pages()}
    site = Confluence(target.url, target.space, target.credentials)
    try:
        for page in pages:
            publish(site, page, bodies, None)
            for note in page.notes:
                print(f"note: {note}")
    except ConfluenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
