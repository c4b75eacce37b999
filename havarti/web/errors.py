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

from havarti.errors import (
    NO_SPACE,
    BodyTooLarge,
    Conflict,
    DownloadFailed,
    Forbidden,
    HavartiError,
    InvalidRequest,
    InvalidUpload,
    NotFound,
    StorageUnavailable,
    Unauthorized,
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


def answer_for(exc: Exception) -> tuple[int, str] | None:
    """The status and one-line reason for ``exc``; None when it is not the user's to know.

    Every error Havarti answers for is mapped here, and only here.
    """
    if isinstance(exc, StorageFull) or (
            isinstance(exc, StorageError | StorageUnavailable | OSError | SQLAlchemyError)
            and no_space(exc)):
        # A full disk (data, spool, database, temporary files) refuses writes, with a
        # clear 503 until space is freed.
        return 503, NO_SPACE
    if isinstance(exc, StorageError | StorageUnavailable):
        return 503, (f"storage unavailable: {exc}" if isinstance(exc, StorageError) else str(exc))
    if isinstance(exc, IntegrityError):
        return 502, f"upstream sent bytes that do not match the index: {exc}"
    if not isinstance(exc, HavartiError):
        return None
    if isinstance(exc, UploadTooLarge | BodyTooLarge):
        return 413, str(exc)
    if isinstance(exc, Conflict):
        return 409, str(exc)
    if isinstance(exc, InvalidUpload | InvalidRequest):
        return 400, str(exc)
    if isinstance(exc, Unauthorized):
        return 401, str(exc)
    if isinstance(exc, Forbidden):
        return 403, str(exc)
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, UpstreamError):
        return (504 if exc.timeout else 502), str(exc)
    if isinstance(exc, DownloadFailed):
        return 502, str(exc)
    return 500, str(exc)


def init_app(app: Flask) -> None:
    from havarti.web import telemetry

    @app.errorhandler(HavartiError)
    @app.errorhandler(StorageError)
    @app.errorhandler(IntegrityError)
    @app.errorhandler(OSError)
    @app.errorhandler(SQLAlchemyError)
    def domain_error(exc: Exception) -> Response:
        answer = answer_for(exc)
        if answer is None:
            raise exc  # any other error stays a 500, with its traceback logged
        status, message = answer
        if status >= 500:
            log.warning("error status=%d type=%s reason=%s", status, type(exc).__name__,
                        " ".join(str(exc).split())[:200])
        if status == 503:
            telemetry.count_storage_error()
        if status in (401, 403):
            # Every refusal of access or by a policy leaves a line an operator can grep.
            log.warning("access-refused status=%d method=%s path=%s remote=%s reason=%s", status,
                        request.method, request.path, request.remote_addr or "-", message)
        if status == 401:
            return unauthorized(message)
        return one_line(status, message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return one_line(413, "upload too large: over MAX_UPLOAD_SIZE")
        # The exception's own headers go along (Allow, Retry-After, WWW-Authenticate).
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return one_line(exc.code or 500, exc.description or exc.name, headers)


def status_for(exc: Exception) -> int:
    """The HTTP status :func:`answer_for` gives ``exc`` (500 for what it does not know)."""
    answer = answer_for(exc)
    return 500 if answer is None else answer[0]
