"""The checks every wiki reached over HTTP takes before its first request (Confluence,
MediaWiki): its address, and the environment variables its credentials come from.

A URL holding credentials is refused, and so is plain ``http://`` to anything but this
machine (the credentials would cross the network unencrypted). A credential's variable is
named by an option; a name that does not look like one (it may be the secret itself, given
by mistake) is refused without being shown.
"""

from __future__ import annotations

import os
import re
from urllib.parse import SplitResult, urlsplit

from kit.core.params import ParameterError

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")  # how a variable's name looks, not a secret


def site_url(url: str, option: str, fix: str, env_options: str) -> SplitResult:
    """The parts of a site's address: http(s), a host, no credentials, https unless it is
    this machine. ``fix`` says what to give instead; ``env_options`` names the options
    taking the credentials' variables. The caller checks its own path and query."""
    parts = urlsplit(url.strip())
    if parts.username is not None or parts.password is not None:
        raise ParameterError(
            f"{option} holds credentials in its URL: give the address alone and the "
            f"credentials in environment variables ({env_options}); nothing was sent."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParameterError(f"{option} {url!r} is not an http(s) URL. {fix}")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ParameterError(
            f"{option} {url!r} is plain http: the credentials would cross the network "
            "unencrypted. Give its https:// address; nothing was sent."
        )
    return parts


def env_value(option: str, name: str, what: str, example: str) -> str | None:
    """The variable's value; None when it is not set (or empty). A name that does not look
    like a variable's (it may be the secret itself, given by mistake) is refused unshown."""
    if not _ENV_NAME.fullmatch(name):
        raise ParameterError(
            f"{option} takes the NAME of an environment variable holding the {what} (e.g. "
            f"{example}), in capitals, digits and _; the value given does not look like one "
            f"and is not shown here. Export the {what} in a variable and give its name; "
            "nothing was sent."
        )
    value = os.environ.get(name, "")
    return value or None
