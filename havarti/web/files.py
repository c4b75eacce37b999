"""Distribution files and their core metadata, at stable URLs whatever the backend."""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator

from flask import Blueprint, redirect, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_range_header
from werkzeug.wrappers import Response

from havarti.domain.index import RedirectFile, StoredFile, StreamingFile
from havarti.errors import DownloadFailed
from havarti.web import context, telemetry
from havarti.web.errors import one_line

bp = Blueprint("files", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"


def content_type(filename: str) -> str:
    if filename.endswith((".whl", ".zip")):
        return "application/zip"
    if filename.endswith(".tar.gz"):
        # The bytes are gzip: x-tar would tell clients the tar is already unpacked.
        return "application/gzip"
    if filename.endswith(".metadata"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


@bp.get("/files/<project>/<filename>")
def download(project: str, filename: str) -> Response:
    index = context.index()
    if filename.endswith(".metadata"):
        meta = index.metadata(project, filename[: -len(".metadata")])
        response = Response(meta.data, content_type=content_type(filename))
        response.headers["Cache-Control"] = IMMUTABLE
        return response
    head = request.method == "HEAD"
    source = index.open_file(project, filename, body=not head)
    if not head:
        telemetry.observe_download(project, source)
    if isinstance(source, StoredFile):
        return _stored(source, head)
    if isinstance(source, RedirectFile):
        response = redirect(source.url, code=302)
        response.headers["Cache-Control"] = "no-store"
        return response
    return _streaming(source)


def _stored(source: StoredFile, head: bool) -> Response:
    if source.redirect:
        # The client follows to a short-lived URL; the URL it asked for stays stable.
        response = redirect(source.redirect, code=302)
        response.headers["Cache-Control"] = "no-store"
        return response
    if source.local is not None:
        # send_file lets the server hand the file to the kernel (sendfile) and does Range.
        try:
            response = send_file(source.local.path, mimetype=content_type(source.filename),
                                 etag=source.sha256, conditional=True, max_age=31536000,
                                 download_name=source.filename)
        except RequestedRangeNotSatisfiable:
            return _unsatisfiable(source.size)
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers["X-Havarti-Cache"] = "hit"
        return response
    return _ranged_stream(source, head)


def _ranged_stream(source: StoredFile, head: bool) -> Response:
    index = context.index()

    def body(start: int = 0, end: int | None = None) -> Iterable[bytes]:
        # A HEAD is answered from the file's row: storage is not asked.
        return () if head else index.read(source, start, end)

    headers = {"Accept-Ranges": "bytes", "Cache-Control": IMMUTABLE, "X-Havarti-Cache": "hit"}
    ranges = parse_range_header(request.headers.get("Range"))
    if ranges is not None:
        bounds = ranges.range_for_length(source.size)
        if bounds is None or len(ranges.ranges) != 1:
            return _unsatisfiable(source.size)
        start, stop = bounds
        response = Response(body(start, stop - 1), status=206,
                            content_type=content_type(source.filename), headers=headers)
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{source.size}"
        response.content_length = stop - start
    else:
        response = Response(body(), content_type=content_type(source.filename), headers=headers)
        response.content_length = source.size
    response.set_etag(source.sha256)
    return response.make_conditional(request)


def _unsatisfiable(size: int) -> Response:
    return one_line(416, f"range not satisfiable for {size} bytes",
                    {"Content-Range": f"bytes */{size}"})


def _streaming(source: StreamingFile) -> Response:
    response = Response(_cut_short_on_failure(source.chunks),
                        content_type=content_type(source.filename))
    if source.size is not None:
        # With the length promised, a download cut short is an error every client sees.
        response.content_length = source.size
    if source.sha256:
        response.set_etag(source.sha256)
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["X-Havarti-Cache"] = "miss"
    return response


def _cut_short_on_failure(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass the download through; if it fails, drop the connection mid-body.

    The status was sent long ago: only a response shorter than its length (or
    without its last chunk) tells pip and uv the bytes are bad. The downloader
    logged the failure once; a connection-reset error makes the WSGI server
    close the socket without logging a traceback per client.
    """
    try:
        yield from chunks
    except DownloadFailed as exc:
        raise ConnectionResetError(errno.ECONNRESET, f"download failed: {exc}") from None
