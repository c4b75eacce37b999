"""What every request must be before a handler sees it, checked in one place.

- **Sanity.** No control character (CR, LF, NUL, DEL ...) in the path or the
  query: they would end up in redirects, upstream URLs, logs and Postgres
  (which refuses NUL). A project name in a URL must be a project name (PEP 508),
  a version a version, before anything goes upstream. Each refusal is a 400
  with a one-line reason.
- **Same origin.** A browser re-sends basic-auth credentials with any site's
  request, so a state-changing request (anything but GET/HEAD/OPTIONS) from a
  browser must come from a page of this server: ``Sec-Fetch-Site`` says
  same-origin, and ``Origin`` (else ``Referer``) names this host. ``Origin:
  null`` (sandboxed frames, privacy redirects) is refused. Clients that send
  none of these (twine, uv, curl) are not browsers and pass.
- **JSON API bodies** (``/api/...``) are ``application/json`` (415 otherwise):
  no form or text/plain body, the kinds another site can post without asking.
- **Unreadable bodies** (a malformed chunked encoding, a client gone mid-body)
  are a 400, not a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.exceptions import BadRequest, ClientDisconnected
from werkzeug.wrappers import Response

from havarti.domain.text import is_project_name, is_version, problem
from havarti.web import context
from havarti.web.errors import one_line

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: C0 and C1 controls and DEL: never part of a path or query Havarti serves.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: URL parts (route variables) and how each is checked.
_NAMES = ("project", "name")


def init_app(app: Flask) -> None:
    """Run the checks before every other handler, and guard the request body stream."""
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)
    app.wsgi_app = BodyErrors(app.wsgi_app)  # type: ignore[method-assign]


def check_request() -> Response | None:
    """A refusal for a request no handler should see, or None."""
    return (_insane() or _bad_route_values() or _bad_client_address() or _cross_site()
            or _not_json())


def _insane() -> Response | None:
    if _CONTROL.search(request.path):
        return one_line(400, "the path contains a control character")
    for key, value in request.args.items(multi=True):
        if _CONTROL.search(key) or _CONTROL.search(value):
            return one_line(400, f"the query parameter {key[:40]!r} contains a control character")
    return None


def _bad_route_values() -> Response | None:
    values = request.view_args or {}
    for key in _NAMES:
        name = values.get(key)
        if name is not None and not is_project_name(name):
            return one_line(400, f"{name[:80]!r} is not a valid project name (PEP 508: letters, "
                                 "digits, '.', '_' and '-', starting and ending with a letter "
                                 "or digit)")
    version = values.get("version")
    if version is not None and not is_version(version):
        return one_line(400, f"{version[:80]!r} is not a valid version")
    filename = values.get("filename")
    if filename is not None:
        reason = problem(filename)
        if reason is not None:
            return one_line(400, f"the filename {reason}")
    return None


def _bad_client_address() -> Response | None:
    # Behind TRUSTED_PROXIES the address comes from X-Forwarded-For: it must be one.
    if context.settings().trusted_proxies and request.remote_addr:
        try:
            ipaddress.ip_address(request.remote_addr)
        except ValueError:
            return one_line(400, "X-Forwarded-For does not end with client addresses")
    return None


def _cross_site() -> Response | None:
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        return _refuse(f"Sec-Fetch-Site: {site}")
    origin = request.headers.get("Origin")
    if origin is not None:
        return None if _ours(origin) else _refuse(f"Origin: {origin}")
    referer = request.headers.get("Referer")
    if referer and not _ours(referer):
        return _refuse(f"Referer: {referer}")
    return None


def _refuse(why: str) -> Response:
    return one_line(403, f"cross-site request refused ({why[:100]}): changes must come from "
                         "this server's own pages or from a non-browser client")


def _ours(url: str) -> bool:
    """Whether ``url`` (an Origin or Referer) is on this server: its host, or PUBLIC_URL's."""
    netloc = _netloc(url)
    if netloc is None:
        return False
    public = context.settings().public_url
    return netloc == request.host.lower() or (public is not None and netloc == _netloc(public))


def _netloc(url: str) -> str | None:
    """``host[:port]`` of an http(s) URL, lower case, without the scheme's default port."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower().removesuffix(":443" if parts.scheme == "https" else ":80")


def _not_json() -> Response | None:
    if request.method in SAFE_METHODS or not request.path.startswith("/api/"):
        return None
    declared = request.headers.get("Content-Type")
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if declared is None and not request.content_length and not chunked:
        return None  # no body at all
    if request.mimetype != "application/json":
        return one_line(415, "the API takes application/json bodies only, e.g. "
                             '{"reason": "broken build"}')
    return None


class BodyErrors:
    """WSGI middleware: a request body the server cannot decode is the client's error (400).

    gunicorn raises its own parse errors from ``wsgi.input`` (a bad chunk size,
    a missing chunk terminator) and ``NoMoreData`` when the client stops
    mid-body; Flask would answer 500 with a traceback in the log.
    """

    def __init__(self, app: Callable[[dict, Callable[..., Any]], Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = _GuardedInput(stream)
        return self.app(environ, start_response)


class _GuardedInput:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except Exception as exc:
            if not type(exc).__module__.startswith("gunicorn."):
                raise
            if isinstance(exc, OSError):
                raise ClientDisconnected("the request body ended before its promised end") from None
            raise BadRequest(f"malformed request body: {type(exc).__name__}: {exc}") from None

    def read(self, *args: Any) -> bytes:
        return self._call("read", *args)

    def readline(self, *args: Any) -> bytes:
        return self._call("readline", *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._call("readlines", *args)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
