"""A one-second, per-process micro-cache of project-page responses, when INDEX_TTL > 0.

A warm page is prepared bytes, yet routing it through Flask, the page-cache
key (a database query for the project's serial) and the conditional-response
machinery costs several times what gunicorn itself spends on a request. With
INDEX_TTL > 0 the operator has already traded freshness of upstream pages for
speed; this extends the trade by at most HOT_SECONDS to everything on the page:
an upload or deletion shows at once in the web process that handled it (any
request that is not GET/HEAD empties this process's cache) and within
HOT_SECONDS in the others. With INDEX_TTL=0 (the default) nothing is cached
here and every request revalidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from havarti import metrics as prom
from havarti.cache import BoundedCache
from havarti.web.pagepath import KEPT_ON_304, etag_matches

#: How long a response is replayed without asking the index again.
HOT_SECONDS = 1.0
MAX_ENTRIES = 2048
ROUTE = "/simple/<project>/"

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class _Entry:
    __slots__ = ("etag", "headers", "body", "not_modified_headers")

    def __init__(self, headers: list[tuple[str, str]], body: bytes) -> None:
        self.headers = headers
        self.body = body
        self.etag = next((v for k, v in headers if k.lower() == "etag"), None)
        self.not_modified_headers = [(k, v) for k, v in headers if k.lower() in KEPT_ON_304]


class HotPages:
    """WSGI middleware replaying recent ``GET /simple/<project>/`` 200 answers."""

    def __init__(self, app: WSGIApp, seconds: float, max_bytes: int = 16 * 2**20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.seconds = seconds
        # The one cache type (havarti/cache.py), here with an expiry: replays last HOT_SECONDS.
        self._entries: BoundedCache[tuple[str, str, str], _Entry] = BoundedCache(
            max_bytes, lambda e: len(e.body) + 512, max_entries=MAX_ENTRIES, ttl=seconds,
            clock=clock)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method != "GET":
            if method != "HEAD":
                self._entries.clear()
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if not _is_project_page(path) or environ.get("QUERY_STRING"):
            return self.app(environ, start_response)
        key = (path, environ.get("HTTP_ACCEPT", ""), environ.get("HTTP_ACCEPT_ENCODING", ""))
        started = time.perf_counter()
        entry = self._entries.get(key)
        if entry is not None:
            return self._replay(entry, environ, start_response, started)
        return self._fill(key, environ, start_response)

    def _replay(self, entry: _Entry, environ: dict, start_response: Callable[..., Any],
                started: float) -> Iterable[bytes]:
        if entry.etag is not None and etag_matches(environ.get("HTTP_IF_NONE_MATCH"), entry.etag):
            status, headers, body = "304 Not Modified", entry.not_modified_headers, b""
        else:
            status, headers, body = "200 OK", entry.headers, entry.body
        start_response(status, list(headers))
        m = prom.metrics()
        m.requests.labels(ROUTE, "GET", status[:3]).inc()
        m.request_seconds.labels(ROUTE).observe(time.perf_counter() - started)
        return [body]

    def _fill(self, key: tuple[str, str, str], environ: dict,
              start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.app(environ, capture)
        if not captured or not captured[0].startswith("200 "):
            return result
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self._entries.put(key, _Entry(list(captured[1]), body))
        return [body]


def _is_project_page(path: str) -> bool:
    return path.startswith("/simple/") and path.endswith("/") and path.count("/") == 3 and len(path) > 9


def wrap(app: WSGIApp, index_ttl: int, read_auth: bool, max_bytes: int = 16 * 2**20,
         clock: Callable[[], float] = time.monotonic) -> WSGIApp:
    """``app`` behind the micro-cache when INDEX_TTL allows it (and reads need no passcode)."""
    if index_ttl <= 0 or read_auth:
        return app
    return HotPages(app, min(float(index_ttl), HOT_SECONDS), max_bytes, clock)
