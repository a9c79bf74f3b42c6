"""A tiny stand-in for the Hugging Face Hub and ModelScope, served on 127.0.0.1 for tests.

It answers the requests the real client libraries make (huggingface_hub 2.x, modelscope_hub),
so the kit's download code runs unmodified against it:

Hugging Face Hub
- ``GET /api/{models|datasets}/<repo>/revision/<rev>[?blobs=True]``: sha + siblings (size,
  git blob id, LFS sha256 for large files);
- ``HEAD|GET /[datasets/]<repo>/resolve/<rev>/<path>``: X-Repo-Commit, ETag (X-Linked-Etag =
  sha256 for LFS files), byte ranges.

ModelScope (legacy ``/api/v1`` API)
- ``GET /api/v1/models/<repo>/repo/files?Revision=..&Recursive=..``: files with Size/Sha256,
  plus ``LatestCommitter`` (the commit the revision resolved to);
- ``GET /api/v1/datasets/<repo>/repo/tree?...&PageNumber=..&PageSize=..``: the same, paged;
- ``GET|HEAD /api/v1/{models|datasets}/<repo>/repo?Revision=..&FilePath=..``: file bytes, ranges.

Repositories are dicts of commit -> {path: bytes} with branch refs. Faults for tests: drop the
connection after N bytes of a file once, or serve corrupted bytes under the published hashes.
The server binds 127.0.0.1 only, on a free port, and stops when its context exits.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_THRESHOLD = 10_000  # files at least this large are published as LFS (sha256 known)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones and .cache excluded) as {relative path: bytes}."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[rel.as_posix()] = path.read_bytes()
    return files


def fake_sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


@dataclass
class Repo:
    repo_id: str
    kind: str  # "model" or "dataset"
    commits: dict[str, dict[str, bytes]]  # full commit sha -> files
    refs: dict[str, str]  # branch or tag -> commit sha

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        if re.fullmatch(r"[0-9a-f]{7,39}", revision):
            matches = [sha for sha in self.commits if sha.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        return None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    range: str | None


@dataclass
class HubServer:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    drop_after: dict[str, int] = field(default_factory=dict)  # file path -> bytes, once
    corrupt: set[str] = field(default_factory=set)  # file paths served with a flipped byte
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- repositories -----------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        kind: str,
        files: dict[str, bytes],
        branch: str = "main",
        commit: str | None = None,
    ) -> str:
        """Add a commit with ``files`` on ``branch`` (created if new); returns its sha."""
        key = (kind, repo_id)
        repo = self.repos.setdefault(key, Repo(repo_id, kind, {}, {}))
        sha = commit or fake_sha(f"{repo_id}:{len(repo.commits)}:{sorted(files)}")
        repo.commits[sha] = dict(files)
        repo.refs[branch] = sha
        return sha

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request log helpers ----------------------------------------------------------
    def file_gets(self, name: str | None = None) -> list[Request]:
        """Content requests (HF resolve GETs and ModelScope repo GETs), optionally for one file."""
        out = []
        for r in self.requests:
            if r.method != "GET":
                continue
            if "/resolve/" in r.path:
                path = r.path.split("/resolve/", 1)[1].split("/", 1)[1]
            elif r.path.endswith("/repo") and "FilePath" in r.query:
                path = r.query["FilePath"]
            else:
                continue
            if name is None or unquote(path) == name:
                out.append(r)
        return out

    def clear_log(self) -> None:
        self.requests.clear()


def _handler_for(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output quiet
            pass

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_GET(self) -> None:
            self._dispatch("GET")

        # -- plumbing -------------------------------------------------------------------
        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            hub.requests.append(Request(method, parts.path, query, self.headers.get("Range")))
            try:
                if parts.path.startswith("/api/v1/"):
                    self._modelscope(method, parts.path[len("/api/v1/") :], query)
                elif parts.path.startswith("/api/"):
                    self._hf_api(method, parts.path[len("/api/") :])
                else:
                    self._hf_resolve(method, parts.path.lstrip("/"))
            except BrokenPipeError:
                pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data, headers: dict | None = None) -> None:
            body = json.dumps(data).encode()
            self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

        def _not_found(self, code: str, message: str) -> None:
            self._json(
                404,
                {"error": message, "Code": 10010205001, "Message": message, "Success": False},
                {"X-Error-Code": code, "X-Error-Message": message},
            )

        def _find(self, kind: str, owner: str, name: str) -> Repo | None:
            return hub.repos.get((kind, f"{owner}/{name}"))

        def _file_body(self, method: str, path: str, data: bytes, headers: dict) -> None:
            """Serve ``data`` honouring Range, with the test faults applied."""
            served = data
            if path in hub.corrupt and data:
                served = bytes([data[0] ^ 0xFF]) + data[1:]
            total = len(served)
            start, end, status = 0, total - 1, 200
            wanted = self.headers.get("Range")
            if wanted:
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
                if not match or int(match.group(1)) >= total:
                    self._send(416, b"", {"Content-Range": f"bytes */{total}"})
                    return
                start = int(match.group(1))
                end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            body = served[start : end + 1]
            headers["Accept-Ranges"] = "bytes"
            if method == "GET" and status == 200 and path in hub.drop_after:
                cut = hub.drop_after.pop(path)
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(status, body, headers)

        # -- Hugging Face Hub -------------------------------------------------------
        def _hf_api(self, method: str, rest: str) -> None:
            match = re.fullmatch(r"(models|datasets)/([^/]+)/([^/]+)(?:/revision/(.+))?", rest)
            if not match:
                self._not_found("RepoNotFound", "unknown API route")
                return
            kind = match.group(1)[:-1]
            repo = self._find(kind, match.group(2), match.group(3))
            if repo is None:
                self._not_found("RepoNotFound", "Repository not found")
                return
            sha = repo.resolve(match.group(4) or "main")
            if sha is None:
                self._not_found("RevisionNotFound", "Invalid rev id")
                return
            siblings = []
            for path, data in sorted(repo.commits[sha].items()):
                entry = {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
                if len(data) >= LFS_THRESHOLD:
                    entry["lfs"] = {
                        "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "pointerSize": 134,
                    }
                siblings.append(entry)
            self._json(
                200,
                {"id": repo.repo_id, "sha": sha, "private": False, "siblings": siblings},
            )

        def _hf_resolve(self, method: str, rest: str) -> None:
            kind = "model"
            if rest.startswith("datasets/"):
                kind, rest = "dataset", rest[len("datasets/") :]
            match = re.fullmatch(r"([^/]+)/([^/]+)/resolve/([^/]+)/(.+)", rest)
            if not match:
                self._not_found("RepoNotFound", "unknown route")
                return
            repo = self._find(kind, match.group(1), match.group(2))
            if repo is None:
                self._not_found("RepoNotFound", "Repository not found")
                return
            sha = repo.resolve(match.group(3))
            if sha is None:
                self._not_found("RevisionNotFound", "Invalid rev id")
                return
            path = unquote(match.group(4))
            data = repo.commits[sha].get(path)
            if data is None:
                self._not_found("EntryNotFound", "Entry not found")
                return
            etag = git_blob_sha1(data)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"'}
            if len(data) >= LFS_THRESHOLD:
                digest = hashlib.sha256(data).hexdigest()
                headers.update({"X-Linked-Etag": f'"{digest}"', "X-Linked-Size": str(len(data))})
            self._file_body(method, path, data, headers)

        # -- ModelScope ---------------------------------------------------------------
        def _modelscope(self, method: str, rest: str, query: dict[str, str]) -> None:
            match = re.fullmatch(
                r"(models|datasets)/([^/]+)/([^/]+)/(repo/files|repo/tree|repo)", rest
            )
            if not match:
                self._json(404, {"Code": 404, "Message": "not found", "Success": False})
                return
            kind = match.group(1)[:-1]
            repo = self._find(kind, match.group(2), match.group(3))
            if repo is None:
                self._json(404, {"Code": 404, "Message": "repo not found", "Success": False})
                return
            sha = repo.resolve(query.get("Revision", "master"))
            if sha is None:
                self._json(404, {"Code": 404, "Message": "revision not found", "Success": False})
                return
            files = repo.commits[sha]
            if match.group(4) == "repo":
                path = query.get("FilePath", "")
                if path not in files:
                    self._json(404, {"Code": 404, "Message": "file not found", "Success": False})
                    return
                self._file_body(method, path, files[path], {})
                return
            entries = []
            dirs = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
            for folder in dirs:
                entries.append({"Name": folder.rsplit("/", 1)[-1], "Path": folder, "Type": "tree"})
            for path, data in sorted(files.items()):
                entries.append(
                    {
                        "Name": path.rsplit("/", 1)[-1],
                        "Path": path,
                        "Type": "blob",
                        "Size": len(data),
                        "Sha256": hashlib.sha256(data).hexdigest(),
                        "IsLFS": len(data) >= LFS_THRESHOLD,
                        "Revision": sha,
                    }
                )
            total = len(entries)
            if "PageSize" in query:
                size = int(query["PageSize"])
                page = int(query.get("PageNumber", 1))
                entries = entries[(page - 1) * size : page * size]
            data = {
                "Files": entries,
                "TotalCount": total,
                "LatestCommitter": {"Id": sha, "ShortId": sha[:8], "Message": "commit"},
            }
            self._json(200, {"Code": 200, "Success": True, "Data": data})

    return Handler
