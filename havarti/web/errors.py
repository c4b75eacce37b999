"""The one place domain errors become HTTP answers: a status and a one-line reason."""

from __future__ import annotations

import logging
import re

from flask import Flask, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from havarti.domain.fetch import DownloadFailed
from havarti.errors import (
    NO_SPACE,
    BodyTooLarge,
    Conflict,
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
    """A plain-text answer whose reason phrase carries the message too (twine shows it)."""
    # One line, and nothing that could end a header: controls a client sent (echoed in a
    # reason) become "?".
    line = _CONTROL.sub("?", " ".join(message.split()))[:300]
    response = Response(line + "\n", status=status, mimetype="text/plain", headers=headers)
    reason = line.encode("latin-1", "replace").decode("latin-1")
    response.status = f"{status} {reason}"
    return response


def unauthorized(message: str) -> Response:
    return one_line(401, message, {"WWW-Authenticate": 'Basic realm="havarti"'})


def status_for(exc: HavartiError) -> int:
    if isinstance(exc, UploadTooLarge | BodyTooLarge):
        return 413
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidUpload | InvalidRequest):
        return 400
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
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
        if status in (401, 403):
            # Every refusal of access or by a policy leaves a line an operator can grep.
            log.warning("access-refused status=%d method=%s path=%s remote=%s reason=%s", status,
                        request.method, request.path, request.remote_addr or "-", exc)
        if status == 401:
            return unauthorized(str(exc))
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
