"""MediaWiki's action API (``api.php``), through mwclient: log in, read what the wiki
takes (file types, uploads on or off), read a page (its wikitext and latest revision), save
one, read files' SHA-1 and upload a file.

The credentials are held by mwclient's session alone: never in a message, a file or a URL
(every message is also searched for the password). A call the wiki refuses (or that does
not reach it) is a MediaWikiError naming the call, the page and the wiki's reason.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

from kit.core.params import ParameterError

TIMEOUT_S = 60
RETRIES = 2  # a call that does not reach the wiki (or gets a 5xx) is tried twice more:
RETRY_WAIT_S = 5  # at once, then after this many seconds (mwclient waits 0, 5, 10...)
USER_AGENT = "vlm-repro-kit (python -m kit share)"
T = TypeVar("T")
HINTS = {
    "uploaddisabled": " Uploads are off on this wiki: $wgEnableUploads = true; in its "
    "LocalSettings.php turns them on.",
    "permissiondenied": " The account lacks the right; a bot password needs the grants to "
    "edit pages and upload files (Special:BotPasswords).",
    "protectedpage": " The page is protected; an administrator can lift it or share elsewhere.",
    "readonly": " The wiki is read-only at the moment; share again later.",
    "assertuserfailed": " The login did not hold (its session cookie was lost); share again.",
    "editconflict": " Someone edited the page meanwhile; share again.",
    "filetype-banned": " Add the file's extension to $wgFileExtensions in LocalSettings.php.",
    "verification-error": " The wiki found the file not to be what its extension says.",
}


class MediaWikiError(RuntimeError):
    """The wiki refused a call (or could not be reached): which call, which page, why."""


@dataclass(frozen=True)
class Credentials:
    user: str  # a bot password's user is Name@appid
    password: str = field(repr=False)


@dataclass(frozen=True)
class WikiPage:
    title: str  # as the wiki writes it
    exists: bool
    revision: int  # the latest revision's id; 0 when missing
    text: str  # its wikitext; "" when missing


class MediaWiki:
    """One wiki, as the credentials may see and edit it."""

    def __init__(self, scheme: str, host: str, path: str, credentials: Credentials) -> None:
        try:
            import mwclient
            import requests
        except ImportError:
            raise ParameterError(
                "sharing to MediaWiki needs the Python package mwclient (`pip install "
                "mwclient`); nothing was sent."
            ) from None
        self.mwclient = mwclient
        self.requests = requests
        self.base = f"{scheme}://{host}{path}"
        self.credentials = credentials
        self.site = mwclient.Site(
            host,
            path=path,
            scheme=scheme,
            do_init=False,  # the first request is the login
            max_retries=RETRIES,
            retry_timeout=RETRY_WAIT_S,
            clients_useragent=USER_AGENT,
            connection_options={"timeout": TIMEOUT_S},
        )

    def page_url(self, title: str) -> str:
        path = (getattr(self.site, "site", None) or {}).get("articlepath") or "index.php/$1"
        return urljoin(self.base, path.replace("$1", quote(title.replace(" ", "_"), safe="/:")))

    def hide(self, text: str) -> str:
        secret = self.credentials.password
        return text.replace(secret, "***") if secret else text

    def guarded(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, whatever mwclient or requests raise made a MediaWikiError."""
        errors, requests = self.mwclient.errors, self.requests
        api = f"{self.base}api.php"
        try:
            return call()
        except errors.LoginError as exc:
            why = f"{exc.code}: {exc.info}" if exc.info else str(exc.code)
            message = (
                f"the wiki refused the login ({why}). Check the user and password in the "
                "environment variables given (a bot password's user is Name@appid, see "
                "Special:BotPasswords)."
            )
        except errors.APIError as exc:
            message = f"the wiki answered {exc.code}: {exc.info}.{HINTS.get(exc.code, '')}"
        except errors.InsufficientPermission:
            message = (
                "the account may not do this on the wiki (a bot password needs the grants to "
                "edit pages and upload files, Special:BotPasswords)."
            )
        except errors.InvalidResponse:
            message = (
                f"{api} did not answer as MediaWiki's API does. Give the address of the "
                "folder api.php is in (Special:Version shows it as the script path)."
            )
        except requests.HTTPError as exc:
            answer = exc.response
            status = f"{answer.status_code} {answer.reason}" if answer is not None else "an error"
            message = (
                f"the wiki answered {status} to {api}. Check the URL: the folder api.php is "
                "in (Special:Version shows it as the script path), e.g. https://host/w."
            )
        except (requests.RequestException, errors.MaximumRetriesExceeded) as exc:
            message = (
                f"{api} did not answer ({type(exc).__name__}, after {RETRIES} more tries). "
                "Check the URL and the network, then share again."
            )
        except errors.MwClientError as exc:
            message = f"mwclient failed ({type(exc).__name__}: {exc})."
        except (KeyError, ValueError, TypeError) as exc:
            message = f"the wiki's answer was not what MediaWiki answers ({exc!r})."
        raise MediaWikiError(self.hide(" ".join(f"{what}: {message}".split())))

    def query(self, what: str, **params: Any) -> dict[str, Any]:
        answer = self.guarded(what, lambda: self.site.get("query", formatversion=2, **params))
        return dict(answer.get("query") or {})

    # -- the account and the wiki -----------------------------------------------------
    def login(self) -> None:
        user, password = self.credentials.user, self.credentials.password
        self.guarded(f"logging in as {user!r}", lambda: self.site.login(user, password))
        if "edit" not in self.site.rights:
            raise MediaWikiError(
                f"logging in as {user!r}: the account may not edit pages on this wiki (a bot "
                "password needs the grants to edit pages and upload files)."
            )

    def uploads(self) -> tuple[bool, set[str]]:
        """Whether the wiki takes uploads, and the file extensions it takes."""
        found = self.query(
            "reading what the wiki takes", meta="siteinfo", siprop="general|fileextensions"
        )
        enabled = bool((found.get("general") or {}).get("uploadsenabled"))
        return enabled, {
            str(item.get("ext", "")).lower() for item in found.get("fileextensions") or []
        }

    # -- pages ------------------------------------------------------------------------
    def page(self, title: str) -> WikiPage:
        """The page titled ``title``: its latest revision and wikitext (or missing)."""
        found = self.query(
            f"reading page {title!r}",
            titles=title,
            prop="revisions|info",
            rvprop="content|ids",
            rvslots="main",
        )
        (page,) = found.get("pages") or [{"title": title, "missing": True}]
        if page.get("invalid"):
            raise MediaWikiError(f"reading page {title!r}: not a valid title on this wiki.")
        if page.get("missing"):
            return WikiPage(str(page.get("title") or title), False, 0, "")
        revision = (page.get("revisions") or [{}])[0]
        text = ((revision.get("slots") or {}).get("main") or {}).get("content") or ""
        return WikiPage(str(page["title"]), True, int(revision.get("revid") or 0), str(text))

    def save(self, page: WikiPage, text: str, summary: str) -> bool:
        """Write ``text`` as the page (created, or edited on top of the revision read);
        False when the wiki found nothing to change."""
        what = f"{'editing' if page.exists else 'creating'} page {page.title!r}"
        where: dict[str, Any] = (
            {"baserevid": page.revision, "nocreate": 1} if page.exists else {"createonly": 1}
        )

        def edit() -> dict[str, Any]:
            token = self.site.get_token("csrf")
            answer = self.site.post(
                "edit", title=page.title, text=text, summary=summary, bot=1, token=token,
                **{"assert": "user"}, **where,
            )  # fmt: skip
            return dict(answer.get("edit") or {})

        done = self.guarded(what, edit)
        if str(done.get("result", "")).lower() != "success":
            raise MediaWikiError(f"{what}: the wiki answered {done.get('result')!r} ({done}).")
        return "nochange" not in done

    # -- files ------------------------------------------------------------------------
    def file_digests(self, names: Iterable[str]) -> dict[str, str | None]:
        """Each file's SHA-1 (hex) as the wiki holds it, None when it holds none."""
        names = list(names)
        digests: dict[str, str | None] = dict.fromkeys(names)
        for first in range(0, len(names), 50):  # the API's limit of titles per query
            chunk = names[first : first + 50]
            found = self.query(
                "reading the figures' files",
                titles="|".join(f"File:{name}" for name in chunk),
                prop="imageinfo",
                iiprop="sha1",
            )
            renamed = {item["from"]: item["to"] for item in found.get("normalized") or []}
            pages = {page.get("title"): page for page in found.get("pages") or []}
            for name in chunk:
                title = f"File:{name}"
                info = (pages.get(renamed.get(title, title)) or {}).get("imageinfo") or [{}]
                digests[name] = info[0].get("sha1")
        return digests

    def upload(self, name: str, data: bytes, description: str, comment: str) -> None:
        """``data`` as the file ``name``: a new file, or a new version of the one there."""
        what = f"uploading {name!r}"

        def send() -> dict[str, Any]:
            answer = self.site.upload(
                io.BytesIO(data), filename=name, description=description, comment=comment,
                ignore=True,  # a new version of a file, or the same bytes as another file
            )  # fmt: skip
            return dict(answer or {})

        done = self.guarded(what, send)
        if done.get("result") != "Success":
            raise MediaWikiError(f"{what}: the wiki answered {done.get('result')!r} ({done}).")
