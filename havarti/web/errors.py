"""The one place domain errors become HTTP answers: a status and a one-line reason.

The reason is the body and the HTTP reason phrase (twine shows it). Tools get it
as plain text; a browser, which names ``text/html`` first in ``Accept``, gets it in
the site's layout (error.html).
"""

from __future__ import annotations

import logging
import re

from flask import Flask, has_request_context, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from havarti.domain.fetch import DownloadFailed
from havarti.errors import (
    NO_SPACE,
    Conflict,
    HavartiError,
    InvalidUpload,
    NotFound,
    StorageUnavailable,
    UploadTooLarge,
    UpstreamError,
    no_space,
)
from havarti.storage import IntegrityError, StorageError, StorageFull

log = logging.getLogger(__name__)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def one_line(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An answer whose body is one line and whose reason phrase carries it too (twine
    shows it): plain text, or for a browser's error the line in the site's layout."""
    # One line, and nothing that could end a header: controls a client sent (echoed in a
    # reason) become "?".
    line = _CONTROL.sub("?", " ".join(message.split()))[:300]
    page = _error_page(status, line) if status >= 400 else None
    if page is not None:
        response = Response(page, status=status, mimetype="text/html", headers=headers)
    else:
        response = Response(line + "\n", status=status, mimetype="text/plain", headers=headers)
    if status >= 400 and has_request_context():
        response.vary.add("Accept")
    reason = line.encode("latin-1", "replace").decode("latin-1")
    response.status = f"{status} {reason}"
    return response


def wants_html() -> bool:
    """Whether this request is a browser's: ``text/html`` named outright, with the highest
    quality in ``Accept`` and above ``text/plain``.

    pip and uv name ``text/html`` at q=0.01 after the PEP 691 types, curl and twine send
    ``*/*``: they get plain text. ``Accept: text/plain`` gets plain text.
    """
    if not has_request_context():
        return False
    accept = request.accept_mimetypes
    named = {value.lower(): quality for value, quality in accept}
    html = named.get("text/html", 0)
    if not named or html <= 0:
        return False
    return html >= max(named.values()) and html > named.get("text/plain", 0)


HEADINGS = {400: "Bad request", 401: "Passcode needed", 403: "Refused", 404: "Not found",
            405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Too large",
            415: "Unsupported type", 416: "Range not satisfiable", 429: "Too many requests"}


def _error_page(status: int, line: str) -> str | None:
    """The error in the site's layout, for a browser; None for tools (or if it cannot render)."""
    if not wants_html():
        return None
    try:
        return render_template("error.html", status=status, message=line,
                               heading=HEADINGS.get(status) or ("Something went wrong"
                                                                if status >= 500 else "Refused"))
    except Exception:  # noqa: BLE001 -- an error page must never fail: plain text then
        log.exception("error-page-failed status=%d", status)
        return None


def unauthorized(message: str) -> Response:
    return one_line(401, message, {"WWW-Authenticate": 'Basic realm="havarti"'})


def status_for(exc: HavartiError) -> int:
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidUpload):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, UpstreamError):
        return 504 if exc.timeout else 502
    if isinstance(exc, StorageUnavailable):
        return 503
    if isinstance(exc, DownloadFailed):
        return 502
    return 500


def init_app(app: Flask) -> None:
    from havarti.web import telemetry

    @app.errorhandler(HavartiError)
    def domain_error(exc: HavartiError) -> Response:
        status = status_for(exc)
        if status >= 500:
            log.warning("error status=%d reason=%s", status, exc)
        if isinstance(exc, StorageUnavailable):
            telemetry.count_storage_error()
            if no_space(exc):
                return one_line(503, NO_SPACE)
        return one_line(status, str(exc))

    @app.errorhandler(StorageError)
    def storage_error(exc: StorageError) -> Response:
        log.warning("storage-error reason=%s", exc)
        telemetry.count_storage_error()
        if isinstance(exc, StorageFull):
            return one_line(503, NO_SPACE)
        return one_line(503, f"storage unavailable: {exc}")

    @app.errorhandler(OSError)
    @app.errorhandler(SQLAlchemyError)
    def disk_full(exc: Exception) -> Response:
        # A full disk (data, spool, database, temporary files) refuses writes, with a
        # clear 503 until space is freed; any other error stays a 500.
        if not no_space(exc):
            raise exc
        log.warning("no-space reason=%s", " ".join(str(exc).split())[:200])
        telemetry.count_storage_error()
        return one_line(503, NO_SPACE)

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError) -> Response:
        log.warning("integrity-error reason=%s", exc)
        return one_line(502, f"upstream sent bytes that do not match the index: {exc}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return one_line(413, "upload too large: over MAX_UPLOAD_SIZE")
        # The exception's own headers go along (Allow, Retry-After, WWW-Authenticate).
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return one_line(exc.code or 500, exc.description or exc.name, headers)
