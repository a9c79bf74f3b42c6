"""A stand-in for Confluence's REST API (Server / Data Center), in memory, on 127.0.0.1.

Just what ``kit share --confluence`` calls: GET /rest/api/content (by space and title),
POST and PUT of a page (the next version only), listing a page's attachments, uploading one
(``X-Atlassian-Token: nocheck`` required; a name already attached refused, as Confluence
does) and a new version of one through ``/data``. Every page body is parsed as XML inside a
root declaring the ``ac`` and ``ri`` namespaces, and refused with 400 when it does not
parse. Every call is recorded (method, path, query); a wrong Authorization is 401.
"""

from __future__ import annotations

import json
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

AC = "http://atlassian.com/content"
RI = "http://atlassian.com/resource/identifier"
CONTEXT = "/confluence"  # the site's context path, as many Server installs have


def parse_body(body: str) -> ET.Element:
    return ET.fromstring(f'<storage xmlns:ac="{AC}" xmlns:ri="{RI}">{body}</storage>')


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int = 0


@dataclass
class StubConfluence:
    authorization: str  # the Authorization header every call must carry
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    attachments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # method -> status to answer with
    url: str = ""
    _ids: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def page(self, title: str) -> dict[str, Any]:
        return next(p for p in self.pages.values() if p["title"] == title)

    def made(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.status < 300]

    def tree(self, title: str) -> ET.Element:
        return parse_body(self.page(title)["body"]["storage"]["value"])


def _handler(stub: StubConfluence) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def answer(self, status: int, document: Any) -> None:
            data = json.dumps(document).encode()
            stub.calls[-1].status = status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, status: int, message: str) -> None:
            self.answer(status, {"statusCode": status, "message": message})

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = parts.path.removeprefix(CONTEXT)
            query = parse_qs(parts.query)
            data = self.body()
            with stub._lock:
                stub.calls.append(Call(method, path, query))
                if self.headers.get("Authorization") != stub.authorization:
                    return self.refuse(401, "Basic authentication failed")
                if method in stub.fail:
                    return self.refuse(stub.fail[method], "refused by the test")
                found = re.fullmatch(
                    r"/rest/api/content(?:/(\d+)(?:/child/attachment(?:/(\w+)/data)?)?)?",
                    path if parts.path.startswith(CONTEXT) else "",
                )
                if found is None:
                    return self.refuse(404, f"no such resource {parts.path}")
                page_id, attachment_id = found.groups()
                attach = "/child/attachment" in path
                if method == "GET" and page_id is None:
                    return self.find(query)
                if method == "POST" and page_id is None:
                    return self.create(json.loads(data))
                if method == "PUT" and page_id and not attach:
                    return self.update(page_id, json.loads(data))
                if method == "GET" and attach:
                    return self.list_attachments(page_id)
                if method == "POST" and attach:
                    return self.attach(page_id, attachment_id, data)
                return self.refuse(405, f"{method} {path} not in the stub")

        def do_GET(self) -> None:
            self.route("GET")

        def do_POST(self) -> None:
            self.route("POST")

        def do_PUT(self) -> None:
            self.route("PUT")

        # -- endpoints ------------------------------------------------------------
        def find(self, query: dict[str, list[str]]) -> None:
            space, title = query.get("spaceKey", [""])[0], query.get("title", [""])[0]
            results = [
                p for p in stub.pages.values() if p["space"]["key"] == space and p["title"] == title
            ]
            self.answer(200, {"results": results, "size": len(results)})

        def checked_body(self, content: dict[str, Any]) -> str | None:
            storage = content.get("body", {}).get("storage", {})
            if storage.get("representation") != "storage":
                self.refuse(400, "body.storage.representation must be storage")
                return None
            try:
                parse_body(storage["value"])
            except ET.ParseError as exc:
                self.refuse(400, f"Error parsing xhtml: {exc}")
                return None
            return str(storage["value"])

        def ancestors(self, content: dict[str, Any]) -> list[dict[str, Any]] | None:
            chain = []
            for item in content.get("ancestors") or []:
                parent = stub.pages.get(str(item.get("id")))
                if parent is None:
                    self.refuse(400, f"no ancestor {item}")
                    return None
                chain = [*parent["ancestors"], {"id": parent["id"], "title": parent["title"]}]
            return chain

        def create(self, content: dict[str, Any]) -> None:
            body = self.checked_body(content)
            ancestors = self.ancestors(content)
            if body is None or ancestors is None:
                return None
            space, title = content["space"]["key"], content["title"]
            if any(p["space"]["key"] == space and p["title"] == title for p in stub.pages.values()):
                return self.refuse(400, "A page with this title already exists")
            page = {
                "id": stub.next_id(),
                "type": "page",
                "title": title,
                "space": {"key": space},
                "version": {"number": 1},
                "body": {"storage": {"value": body, "representation": "storage"}},
                "ancestors": ancestors,
            }
            stub.pages[page["id"]] = page
            self.answer(200, page)

        def update(self, page_id: str, content: dict[str, Any]) -> None:
            page = stub.pages.get(page_id)
            if page is None:
                return self.refuse(404, "no such page")
            if content.get("version", {}).get("number") != page["version"]["number"] + 1:
                return self.refuse(409, "Version must be incremented on update")
            body = self.checked_body(content)
            ancestors = self.ancestors(content) if "ancestors" in content else page["ancestors"]
            if body is None or ancestors is None:
                return None
            page.update(
                title=content["title"],
                version={"number": content["version"]["number"]},
                body={"storage": {"value": body, "representation": "storage"}},
                ancestors=ancestors,
            )
            self.answer(200, page)

        def list_attachments(self, page_id: str) -> None:
            results = list(stub.attachments.get(page_id, {}).values())
            self.answer(
                200, {"results": [{k: v for k, v in a.items() if k != "data"} for a in results]}
            )

        def attach(self, page_id: str, attachment_id: str | None, data: bytes) -> None:
            if self.headers.get("X-Atlassian-Token") != "nocheck":
                return self.refuse(403, "XSRF check failed")
            if page_id not in stub.pages:
                return self.refuse(404, "no such page")
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + data)
            fields = {
                part.get_param("name", header="content-disposition"): part
                for part in message.iter_parts()
            }
            if "file" not in fields:
                return self.refuse(400, "no file")
            name = fields["file"].get_filename()
            content = fields["file"].get_payload(decode=True)
            comment = fields["comment"].get_content() if "comment" in fields else ""
            own = stub.attachments.setdefault(page_id, {})
            if attachment_id is None:
                if name in own:
                    return self.refuse(
                        400, "Cannot add a new attachment with same file name as an existing one"
                    )
                own[name] = {"id": f"att{stub.next_id()}", "title": name, "version": {"number": 0}}
            elif own.get(name, {}).get("id") != attachment_id:
                return self.refuse(404, "no such attachment")
            item = own[name]
            item.update(
                data=content,
                metadata={"comment": comment, "mediaType": fields["file"].get_content_type()},
                version={"number": item["version"]["number"] + 1},
            )
            self.answer(200, {"results": [{k: v for k, v in item.items() if k != "data"}]})

    return Handler


class running:
    """``with running(authorization) as stub:`` a stub serving on 127.0.0.1."""

    def __init__(self, authorization: str) -> None:
        self.stub = StubConfluence(authorization)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.stub))
        self.stub.url = f"http://127.0.0.1:{self.server.server_address[1]}{CONTEXT}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> StubConfluence:
        self.thread.start()
        return self.stub

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
