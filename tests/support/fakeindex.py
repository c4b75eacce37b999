"""The fake upstream index: the one thing the suite fakes.

A real HTTP server on a loopback port, serving PEP 691 JSON / PEP 503 HTML
project pages (with ETags), files, ``.metadata`` files and the JSON API, for
distributions the tests build. Tests can publish versions, take it down, make
it hang, answer 500 or garbage, corrupt a file's bytes (or its metadata), break
a file's stream halfway, and count fetches (and the 304s it answers).

A hostile upstream too: an entry's URL can point anywhere (another server, a
URL with a query), a file can redirect anywhere, and an entry can be listed
without its size. Every request's path is kept in ``requests``, so a second
FakeIndex serves as the "internal service" a hostile entry aims at.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from packaging.utils import canonicalize_name

from tests.support.dists import Dist


@dataclass
class Published:
    dist: Dist
    version: str
    upload_time: datetime
    requires_python: str | None = None
    yanked: str | None = None
    corrupt: bool = False
    corrupt_metadata: bool = False
    #: Send the Content-Length, then half the bytes, then close the connection.
    broken: bool = False
    #: The entry's URL on the page, instead of this index's own file URL.
    url: str | None = None
    #: A query string added to the entry's URL (as a signed URL has).
    query: str | None = None
    #: The file URL answers 302 to this location.
    redirect: str | None = None
    #: The page lists the file without its size.
    sized: bool = True


@dataclass
class FakeIndex:
    projects: dict[str, dict[str, Published]] = field(default_factory=dict)
    fetches: Counter[str] = field(default_factory=Counter)
    mode: str = "up"  # up | hang | error | garbage
    hang_seconds: float = 30.0
    html_only: bool = False
    file_delay: float = 0.0
    #: Send ETag and answer If-None-Match (False: like gateways that send no validators).
    validators: bool = True
    #: Seconds a project page takes to answer (a slow upstream, not a dead one).
    page_delay: float = 0.0
    #: Serve the JSON API (/pypi/...); False: a plain simple index, answering 404 there.
    json_api_enabled: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The path (with query) of every request received, in order.
    requests: list[str] = field(default_factory=list)
    #: Open client connections, closed by down() too: a kept-alive one must not outlive an outage.
    connections: set[socket.socket] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None
    port: int = 0
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def publish(self, name: str, dist: Dist, version: str, upload_time: datetime | None = None,
                requires_python: str | None = None, yanked: str | None = None) -> Published:
        item = Published(dist, version, upload_time or datetime.now(UTC), requires_python, yanked)
        with self.lock:
            self.projects.setdefault(canonicalize_name(name), {})[dist.filename] = item
        return item

    def _item(self, filename: str) -> Published:
        for files in self.projects.values():
            if filename in files:
                return files[filename]
        raise KeyError(filename)

    def corrupt(self, filename: str, metadata: bool = False) -> None:
        """Serve bytes (or with ``metadata``, a .metadata file) not matching the page's hash."""
        if metadata:
            self._item(filename).corrupt_metadata = True
        else:
            self._item(filename).corrupt = True

    def break_stream(self, filename: str) -> None:
        """Close the connection halfway through the file."""
        self._item(filename).broken = True

    def fix(self, filename: str) -> None:
        item = self._item(filename)
        item.corrupt = item.corrupt_metadata = item.broken = False

    def file_url(self, name: str, filename: str) -> str:
        """The URL a page lists for a file: this index's own, unless the test changed it."""
        item = self.projects[canonicalize_name(name)][filename]
        url = item.url or f"http://127.0.0.1:{self.port}/files/{canonicalize_name(name)}/{filename}"
        return f"{url}?{item.query}" if item.query else url

    def fetch_count(self, filename: str) -> int:
        return self.fetches[f"file:{filename}"]

    def page_count(self, name: str) -> int:
        return self.fetches[f"page:{canonicalize_name(name)}"]

    def not_modified_count(self, name: str) -> int:
        """Page requests answered 304 Not Modified."""
        return self.fetches[f"page304:{canonicalize_name(name)}"]

    def metadata_count(self, filename: str) -> int:
        return self.fetches[f"meta:{filename}"]

    # Lifecycle: down() closes the socket, so connections are refused.

    def start(self) -> FakeIndex:
        index = self

        class Handler(_Handler):
            fake = index

        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            connections, self.connections = set(self.connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def up(self) -> None:
        self.mode = "up"
        if self.server is None:
            self.start()

    # Rendering

    def etag(self, name: str) -> str:
        files = self.projects.get(name, {})
        return '"' + str(abs(hash(tuple(sorted((f, p.yanked, p.corrupt) for f, p in files.items()))))) + '"'

    def page_json(self, name: str) -> bytes:
        files = []
        for filename, item in sorted(self.projects[name].items()):
            entry: dict = {
                "filename": filename,
                "url": self.file_url(name, filename),
                "hashes": {"sha256": item.dist.sha256},
                "upload-time": item.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "yanked": item.yanked if item.yanked is not None else False,
                "core-metadata": {"sha256": _sha256(item.dist.metadata)},
            }
            if item.sized:
                entry["size"] = len(item.dist.data)
            if item.requires_python:
                entry["requires-python"] = item.requires_python
            files.append(entry)
        versions = sorted({i.version for i in self.projects[name].values()})
        return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files,
                           "versions": versions}).encode()

    def page_html(self, name: str) -> bytes:
        links = []
        for filename, item in sorted(self.projects[name].items()):
            href = self.file_url(name, filename) if item.url or item.query else f"/files/{name}/{filename}"
            attrs = f'href="{escape(href)}#sha256={item.dist.sha256}"'
            if item.requires_python:
                attrs += f' data-requires-python="{escape(item.requires_python)}"'
            if item.yanked is not None:
                attrs += f' data-yanked="{escape(item.yanked)}"'
            attrs += f' data-core-metadata="sha256={_sha256(item.dist.metadata)}"'
            links.append(f"<a {attrs}>{filename}</a><br>")
        return ("<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
                f"</head><body>{''.join(links)}</body></html>").encode()

    def json_api(self, name: str, version: str | None = None) -> bytes | None:
        """The JSON API document (per version when given), or None when there is no such version."""
        releases: dict[str, list] = {}
        for filename, item in sorted(self.projects[name].items()):
            releases.setdefault(item.version, []).append({
                "filename": filename, "url": f"http://127.0.0.1:{self.port}/files/{name}/{filename}",
                "digests": {"sha256": item.dist.sha256}, "size": len(item.dist.data),
                "upload_time_iso_8601": item.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        if version is not None:
            if version not in releases:
                return None
            return json.dumps({"info": {"name": name, "version": version},
                               "urls": releases[version]}).encode()
        latest = sorted(releases)[-1]
        return json.dumps({"info": {"name": name, "version": latest}, "urls": releases[latest],
                           "releases": releases}).encode()


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeIndex
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake.connections.add(self.connection)

    def finish(self) -> None:
        with self.fake.lock:
            self.fake.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        with self.fake.lock:
            self.fake.fetches[f"head:{self.path}"] += 1
        if self.fake.mode != "up":
            self._send(503, b"")
            return
        self._send(200, b"", "text/html")

    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        with fake.lock:
            fake.requests.append(self.path)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if fake.mode == "hang":
            time.sleep(fake.hang_seconds)
            return
        if fake.mode == "error":
            self._send(503, b"upstream is having a bad day")
            return
        if not parts or parts == ["simple"]:
            with fake.lock:
                fake.fetches["root"] += 1
            names = "".join(f'<a href="{n}/">{n}</a>' for n in sorted(fake.projects))
            self._send(200, f"<html><body>{names}</body></html>".encode(), "text/html")
            return
        if len(parts) == 2 and parts[0] == "simple":
            name = canonicalize_name(parts[1])
            with fake.lock:
                fake.fetches[f"page:{name}"] += 1
            if fake.page_delay:
                time.sleep(fake.page_delay)
            if fake.mode == "garbage":
                self._send(200, b"\x00\xff{not json", "application/vnd.pypi.simple.v1+json")
                return
            if name not in fake.projects:
                self._send(404, b"no such project")
                return
            etag = fake.etag(name)
            validators = {"ETag": etag} if fake.validators else {}
            if fake.validators and self.headers.get("If-None-Match") == etag:
                with fake.lock:
                    fake.fetches[f"page304:{name}"] += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not fake.html_only and "json" in (self.headers.get("Accept") or ""):
                self._send(200, fake.page_json(name), "application/vnd.pypi.simple.v1+json",
                           validators)
            else:
                self._send(200, fake.page_html(name), "text/html", validators)
            return
        if len(parts) == 3 and parts[0] == "files":
            name, filename = canonicalize_name(parts[1]), parts[2]
            metadata = filename.endswith(".metadata")
            base = filename[: -len(".metadata")] if metadata else filename
            item = fake.projects.get(name, {}).get(base)
            if item is None:
                self._send(404, b"no such file")
                return
            with fake.lock:
                fake.fetches[("meta:" if metadata else "file:") + base] += 1
            if item.redirect and not metadata:
                self._send(302, b"", headers={"Location": item.redirect})
                return
            if metadata:
                self._send(200, item.dist.metadata + (b"X" if item.corrupt_metadata else b""))
                return
            data = item.dist.data
            if item.corrupt:
                data = data[:-10] + b"X" * 10
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            step = 64 * 1024
            end = len(data) // 2 if item.broken else len(data)
            for offset in range(0, end, step):
                if fake.file_delay:
                    time.sleep(fake.file_delay)
                try:
                    self.wfile.write(data[offset:min(offset + step, end)])
                except (BrokenPipeError, ConnectionResetError):
                    return
            if item.broken:
                self.wfile.flush()
                self.close_connection = True
            return
        if len(parts) in (3, 4) and parts[0] == "pypi" and parts[-1] == "json" \
                and fake.json_api_enabled:
            name = canonicalize_name(parts[1])
            document = fake.json_api(name, parts[2] if len(parts) == 4 else None) \
                if name in fake.projects else None
            if document is None:
                self._send(404, b"{}", "application/json")
                return
            self._send(200, document, "application/json")
            return
        self._send(404, b"not found")


@contextmanager
def running_index() -> Iterator[FakeIndex]:
    """A started fake index, taken down afterwards (one per fixture that needs one)."""
    fake = FakeIndex().start()
    try:
        yield fake
    finally:
        fake.down()
