"""The project page's own way in: ``GET /simple/<project>/`` answered below Flask.

A warm project page is prepared bytes: the index decides what it contains
(``PackageIndex.project_page``), and all that is left is choosing HTML or
JSON and the headers. Routing, request objects, before/after hooks and
werkzeug's conditional machinery cost more CPU than that decision, on the
request pip and uv make most often. This WSGI layer answers exactly that
request for a canonical name, with the same bytes and headers the Flask
handler in :mod:`havarti.web.simple` would send (the tests compare the two),
and hands everything else to Flask untouched: other paths and methods, a
query string, a name to redirect, a conditional header other than
``If-None-Match``, an ``Accept`` nothing satisfies (406), reads that need
the passcode. When the index raises, the error goes to Flask with the request,
so the one error mapping (:mod:`havarti.web.errors`) answers it without the
page being asked for twice.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from havarti import metrics as prom
from havarti.config import Settings
from havarti.domain.index import RenderedPage
from havarti.domain.text import is_project_name
from havarti.records import JSON_TYPE
from havarti.web.negotiate import accepts_gzip, choose

log = logging.getLogger("havarti.access")

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
ROUTE = "/simple/<project>/"
#: The environ key under which an error from the index travels to the Flask handler.
PAGE_ERROR = "havarti.page_error"
#: Canonical names only (PEP 503): anything else is redirected or refused, by Flask.
_CANONICAL = re.compile(r"/simple/([a-z0-9]+(?:-[a-z0-9]+)*)/")
#: Smaller pages go as they are: gzip's framing would eat most of the saving.
GZIP_MIN = 1024
#: Conditional headers werkzeug's full handling is kept for (rare from installers).
_OTHER_CONDITIONS = ("HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE",
                     "HTTP_RANGE", "HTTP_IF_RANGE")
#: What a 304 keeps of the 200's headers.
KEPT_ON_304 = frozenset({"etag", "vary", "cache-control", "x-havarti-stale"})


class PagePath:
    """WSGI middleware serving ``GET``/``HEAD /simple/<canonical-name>/`` straight from the index."""

    def __init__(self, app: WSGIApp, index: Callable[[], Any], settings: Settings) -> None:
        self.app = app
        self.index = index
        self.trusted_proxies = settings.trusted_proxies
        # With READ_AUTH every read is checked first, by the Flask hooks.
        self.enabled = not settings.read_auth

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        match = _CANONICAL.fullmatch(environ.get("PATH_INFO", ""))
        if (not self.enabled or match is None or not is_project_name(match.group(1))
                or method not in ("GET", "HEAD")
                or environ.get("QUERY_STRING") or any(k in environ for k in _OTHER_CONDITIONS)
                or not self._address_ok(environ)):
            return self.app(environ, start_response)
        media_type = choose(environ.get("HTTP_ACCEPT"))
        if media_type is None:
            return self.app(environ, start_response)
        try:
            page = self.index().project_page(match.group(1))
        except Exception as exc:  # noqa: BLE001 -- every error is answered by the one mapping
            environ[PAGE_ERROR] = exc
            return self.app(environ, start_response)
        status, headers, body = page_answer(page, media_type, environ.get("HTTP_ACCEPT_ENCODING"),
                                            environ.get("HTTP_IF_NONE_MATCH"))
        start_response(status, headers)
        elapsed = time.perf_counter() - started
        m = prom.metrics()
        m.requests.labels(ROUTE, method, status[:3]).inc()
        m.request_seconds.labels(ROUTE).observe(elapsed)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request method=%s path=%s route=%s status=%s ms=%.1f remote=%s", method,
                      environ["PATH_INFO"], ROUTE, status[:3], elapsed * 1000,
                      environ.get("REMOTE_ADDR") or "-")
        return [b"" if method == "HEAD" else body]

    def _address_ok(self, environ: dict) -> bool:
        # Behind TRUSTED_PROXIES the address comes from X-Forwarded-For: Flask refuses
        # one that is not an address.
        if not self.trusted_proxies or not environ.get("REMOTE_ADDR"):
            return True
        try:
            ipaddress.ip_address(environ["REMOTE_ADDR"])
        except ValueError:
            return False
        return True


def page_answer(page: RenderedPage, media_type: str, accept_encoding: str | None,
                if_none_match: str | None) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body of a project page in ``media_type``: one way, for both paths.

    Each representation (HTML or JSON, plain or gzip) has its own ETag from its
    bytes, so pip's and uv's HTTP caches revalidate with it and get a 304.
    """
    json = media_type == JSON_TYPE
    body, etag = (page.json, page.json_etag) if json else (page.html, page.html_etag)
    headers = [("Content-Type", media_type if json else f"{media_type}; charset=utf-8")]
    if len(body) >= GZIP_MIN and accepts_gzip(accept_encoding):
        # Big pages shrink tenfold: less to send for every client that takes gzip.
        body, etag = page.gzipped(json), f"{etag}-gzip"
        headers.append(("Content-Encoding", "gzip"))
    headers += [("Content-Length", str(len(body))), ("Vary", "Accept, Accept-Encoding"),
                ("ETag", f'"{etag}"'), ("Cache-Control", "max-age=0, must-revalidate")]
    if page.stale_reason:
        headers.append(("X-Havarti-Stale", stale_header(page.stale_reason)))
    if etag_matches(if_none_match, etag):
        return "304 NOT MODIFIED", [(k, v) for k, v in headers if k.lower() in KEPT_ON_304], b""
    return "200 OK", headers, body


def stale_header(reason: str) -> str:
    """``X-Havarti-Stale``: one printable line, since the reason may quote upstream's error text."""
    return " ".join(reason.split())[:300].encode("ascii", "replace").decode()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag``, quoted or not (weak comparison, RFC 9110)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/").strip('"')
    return any(tag.strip().removeprefix("W/").strip('"') == bare
               for tag in if_none_match.split(","))
