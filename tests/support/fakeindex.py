"""The fake upstream index: the one thing the suite fakes.

A real HTTP server on a loopback port, serving PEP 691 JSON / PEP 503 HTML
project pages (with ETags), files, ``.metadata`` files and the JSON API, for
distributions the tests build. Tests can publish versions, take it down, make
it hang, answer 500 or garbage, corrupt a file's bytes (or its metadata), break
a file's stream halfway, and count fetches (and the 304s it answers).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
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


@dataclass
class FakeIndex:
    projects: dict[str, dict[str, Published]] = field(default_factory=dict)
    fetches: Counter[str] = field(default_factory=Counter)
    #: Every request path asked for, as sent (also those answered 404).
    requested: list[str] = field(default_factory=list)
    mode: str = "up"  # up | hang | error | garbage
    hang_seconds: float = 30.0
    html_only: bool = False
    file_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
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
                "url": f"http://127.0.0.1:{self.port}/files/{name}/{filename}",
                "hashes": {"sha256": item.dist.sha256},
                "size": len(item.dist.data),
                "upload-time": item.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "yanked": item.yanked if item.yanked is not None else False,
                "core-metadata": {"sha256": _sha256(item.dist.metadata)},
            }
            if item.requires_python:
                entry["requires-python"] = item.requires_python
            files.append(entry)
        versions = sorted({i.version for i in self.projects[name].values()})
        return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files,
                           "versions": versions}).encode()

    def page_html(self, name: str) -> bytes:
        links = []
        for filename, item in sorted(self.projects[name].items()):
            attrs = f'href="/files/{name}/{filename}#sha256={item.dist.sha256}"'
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

    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        with fake.lock:
            fake.requested.append(self.path)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if fake.mode == "hang":
            time.sleep(fake.hang_seconds)
            return
        if fake.mode == "error":
            self._send(503, b"upstream is having a bad day")
            return
        if len(parts) == 2 and parts[0] == "simple":
            name = canonicalize_name(parts[1])
            with fake.lock:
                fake.fetches[f"page:{name}"] += 1
            if fake.mode == "garbage":
                self._send(200, b"\x00\xff{not json", "application/vnd.pypi.simple.v1+json")
                return
            if name not in fake.projects:
                self._send(404, b"no such project")
                return
            etag = fake.etag(name)
            if self.headers.get("If-None-Match") == etag:
                with fake.lock:
                    fake.fetches[f"page304:{name}"] += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not fake.html_only and "json" in (self.headers.get("Accept") or ""):
                self._send(200, fake.page_json(name), "application/vnd.pypi.simple.v1+json",
                           {"ETag": etag})
            else:
                self._send(200, fake.page_html(name), "text/html", {"ETag": etag})
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
        if len(parts) in (3, 4) and parts[0] == "pypi" and parts[-1] == "json":
            name = canonicalize_name(parts[1])
            document = fake.json_api(name, parts[2] if len(parts) == 4 else None) \
                if name in fake.projects else None
            if document is None:
                self._send(404, b"{}", "application/json")
                return
            self._send(200, document, "application/json")
            return
        self._send(404, b"not found")
