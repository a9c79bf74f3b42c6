"""A real MediaWiki for the tests: Debian's ``mediawiki`` package (1.39) on SQLite, served
by PHP's built-in server on 127.0.0.1, all of it in a temporary folder.

``install.php`` makes the wiki and its admin, LocalSettings.php gets uploads turned on (into
the folder, served through img_auth.php) and ``createBotPassword.php`` a bot password, the
way a wiki's user logs a tool in. The server listens on a free port; ``running`` always
stops it. Where the package is missing, ``missing()`` says so and how to install it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MEDIAWIKI = Path("/usr/share/mediawiki")
INSTALL = "apt-get install --no-install-recommends mediawiki php-sqlite3"
ADMIN = "Admin"
APP = "kit"  # the bot password's name: the kit logs in as Admin@kit
GRANTS = "basic,highvolume,editpage,createeditmovepage,uploadfile,uploadeditmovefile"
READY_S = 60  # how long the server may take to answer its first request
SETTINGS = """
# added by tests/mediawikiserver.py
$wgServer = "http://127.0.0.1:{port}";
$wgEnableUploads = true;
$wgUploadDirectory = "{folder}/images";
$wgUploadPath = "$wgScriptPath/img_auth.php";
$wgUseImageMagick = false;
$wgFileExtensions[] = "svg";
$wgCacheDirectory = "{folder}/cache";
"""
# the wiki's own view of what is on it, read without the kit
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def missing() -> str | None:
    """Why no MediaWiki can run here (None: it can)."""
    how = (
        f"needs a real MediaWiki (Debian's mediawiki package, PHP with SQLite): install it "
        f"with `{INSTALL}` (as root; .ci/run does)"
    )
    php = shutil.which("php")
    if php is None or not (MEDIAWIKI / "maintenance" / "install.php").is_file():
        return f"{how}; {'php' if php is None else MEDIAWIKI} is missing"
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, timeout=60).stdout
    if "pdo_sqlite" not in modules.split():
        return f"{how}; PHP has no pdo_sqlite (php-sqlite3)"
    return None


@dataclass
class Wiki:
    url: str  # the folder api.php is in
    user: str  # the bot password's user, Admin@kit
    password: str

    def api(self, **params: str) -> dict:
        """A GET of api.php as anyone reads it (JSON, format version 2)."""
        query = urllib.parse.urlencode({**params, "format": "json", "formatversion": "2"})
        with _NO_PROXY.open(f"{self.url}/api.php?{query}", timeout=60) as answer:
            return json.load(answer)

    def fetch(self, url: str) -> bytes:
        with _NO_PROXY.open(url, timeout=60) as answer:
            return answer.read()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def php_script(script: str, *args: str, config: Path) -> None:
    subprocess.run(
        ["php", str(MEDIAWIKI / "maintenance" / script), *args],
        env={**os.environ, "MW_CONFIG_FILE": str(config)},
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


def answers(url: str, server: subprocess.Popen) -> bool:
    """Whether api.php answers, waiting up to READY_S; False as soon as the server is gone
    (its port was taken meanwhile)."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with _NO_PROXY.open(f"{url}/api.php?action=query&format=json", timeout=10):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


@contextmanager
def running(folder: Path) -> Iterator[Wiki]:
    """A fresh wiki in ``folder``, served until the block ends."""
    config = folder / "conf" / "LocalSettings.php"
    for sub in ("data", "conf", "images", "cache"):
        (folder / sub).mkdir(parents=True)
    php_script(
        "install.php",
        *("--dbtype", "sqlite", "--dbpath", str(folder / "data"), "--dbname", "wiki"),
        *("--server", "http://127.0.0.1", "--scriptpath", "", "--confpath", str(config.parent)),
        *("--pass", secrets.token_urlsafe(16), "KitTestWiki", ADMIN),
        config=config,
    )
    installed = config.read_text()
    password = "".join(secrets.choice("0123456789abcdefghijklmnopqrstuvw") for _ in range(32))
    config.write_text(installed + SETTINGS.format(port=0, folder=folder))
    bot = ("--appid", APP, "--grants", GRANTS, ADMIN, password)
    php_script("createBotPassword.php", *bot, config=config)
    for _ in range(5):  # a port found free may be taken before the server binds it
        port = free_port()
        config.write_text(installed + SETTINGS.format(port=port, folder=folder))
        url = f"http://127.0.0.1:{port}"
        with open(folder / "server.log", "ab") as log:
            server = subprocess.Popen(
                ["php", "-S", f"127.0.0.1:{port}", "-t", str(MEDIAWIKI)],
                env={**os.environ, "MW_CONFIG_FILE": str(config)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            if answers(url, server):
                yield Wiki(url, f"{ADMIN}@{APP}", password)
                return
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    raise RuntimeError(f"PHP's server did not start: {(folder / 'server.log').read_text()[-2000:]}")
