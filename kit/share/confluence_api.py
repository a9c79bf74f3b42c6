"""Confluence's REST API (Server / Data Center, ``/rest/api/content``), through requests:
find a page by title, create it, update it (the next version), list and upload its
attachments.

The credentials are held by the session alone: never in a message, a file or a URL. A call
Confluence refuses (or that does not reach it) is a ConfluenceError naming the call, the
page and the status.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any

from kit.core.params import ParameterError

TIMEOUT_S = 60
VERSION_MESSAGE = "shared with python -m kit share"


class ConfluenceError(RuntimeError):
    """Confluence refused a call (or could not be reached): which call, which page, why."""


@dataclass(frozen=True)
class Credentials:
    user: str | None  # None: the token is a bearer token (a personal access token)
    token: str = field(repr=False)


class Confluence:
    """One space of one Confluence site, as the credentials may see it."""

    def __init__(self, base_url: str, space: str, credentials: Credentials) -> None:
        try:
            import requests
        except ImportError:
            raise ParameterError(
                "sharing to Confluence needs the Python package requests (`pip install "
                "requests`); nothing was sent."
            ) from None
        self.base = base_url.rstrip("/")
        self.space = space
        self._secret = credentials.token
        self._requests = requests
        self.session = requests.Session()
        if credentials.user is not None:
            self.session.auth = (credentials.user, credentials.token)
        else:
            self.session.headers["Authorization"] = f"Bearer {credentials.token}"
        self.session.headers["Accept"] = "application/json"

    def page_url(self, page: dict[str, Any]) -> str:
        return f"{self.base}/pages/viewpage.action?pageId={page['id']}"

    def call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """The JSON answer of one call; ``what`` names it (and its page) in an error."""
        url = f"{self.base}{path}"
        try:
            answer = self.session.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except self._requests.RequestException as exc:
            raise ConfluenceError(
                f"{what}: {method} {url} did not reach Confluence ({self.hide(str(exc))}). "
                "Check the URL and the network, then share again."
            ) from None
        if not 200 <= answer.status_code < 300:
            detail = ""
            try:
                message = answer.json().get("message")
                detail = f": {self.hide(str(message))[:300]}" if message else ""
            except ValueError:
                pass
            hint = {
                401: " Check the user and token in the environment variables given.",
                403: " The account may lack permission in this space.",
                404: " Check the URL (with its context path, e.g. /confluence) and the space key.",
            }.get(answer.status_code, "")
            raise ConfluenceError(
                f"{what}: Confluence answered {answer.status_code} {answer.reason} to {method} "
                f"{url}{detail}.{hint}"
            )
        return answer.json() if answer.content else {}

    def hide(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    # -- pages ------------------------------------------------------------------------
    def find(self, title: str) -> dict[str, Any] | None:
        """The page titled ``title`` in the space, with its version, body and ancestors."""
        found = self.call(
            "GET",
            "/rest/api/content",
            f"looking up page {title!r}",
            params={
                "spaceKey": self.space,
                "title": title,
                "type": "page",
                "expand": "version,body.storage,ancestors",
            },
        )
        results = found.get("results") or []
        return results[0] if results else None

    def content(self, title: str, body: str, parent_id: str | None) -> dict[str, Any]:
        content: dict[str, Any] = {
            "type": "page",
            "title": title,
            "space": {"key": self.space},
            "body": {"storage": {"value": body, "representation": "storage"}},
        }
        if parent_id is not None:
            content["ancestors"] = [{"id": parent_id}]
        return content

    def create(self, title: str, body: str, parent_id: str | None) -> dict[str, Any]:
        page = self.content(title, body, parent_id)
        return dict(self.call("POST", "/rest/api/content", f"creating page {title!r}", json=page))

    def update(self, page: dict[str, Any], body: str, parent_id: str | None) -> dict[str, Any]:
        content = self.content(page["title"], body, parent_id)
        content["id"] = page["id"]
        number = int((page.get("version") or {}).get("number") or 1) + 1
        content["version"] = {"number": number, "message": VERSION_MESSAGE}
        what = f"updating page {page['title']!r} to version {number}"
        return dict(self.call("PUT", f"/rest/api/content/{page['id']}", what, json=content))

    # -- attachments ------------------------------------------------------------------
    def attachments(self, page: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The page's attachments by file name."""
        found = self.call(
            "GET",
            f"/rest/api/content/{page['id']}/child/attachment",
            f"listing the attachments of page {page['title']!r}",
            params={"expand": "version,metadata", "limit": 1000},
        )
        return {item["title"]: item for item in found.get("results") or []}

    def upload(
        self,
        page: dict[str, Any],
        name: str,
        data: bytes,
        comment: str,
        existing: dict[str, Any] | None,
    ) -> None:
        """Attach ``data`` as ``name``: a new attachment, or a new version of ``existing``."""
        path = f"/rest/api/content/{page['id']}/child/attachment"
        if existing is not None:
            path += f"/{existing['id']}/data"
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.call(
            "POST",
            path,
            f"uploading {name!r} to page {page['title']!r}",
            headers={"X-Atlassian-Token": "nocheck"},
            files={"file": (name, data, kind)},
            data={"comment": comment, "minorEdit": "true"},
        )
