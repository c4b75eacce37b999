"""What operators watch: /metrics, one log line per request, and the download counters."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, g, request
from werkzeug.wrappers import Response

from havarti import metrics as prom
from havarti.domain.index import RedirectFile, StoredFile, StreamingFile
from havarti.web import context

log = logging.getLogger("havarti.access")

bp = Blueprint("telemetry", __name__)

def init_app(app: Flask) -> None:
    """Time and count every request (the timer starts before any other check)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_count_request)


def _start_timer() -> None:
    g.havarti_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    started = g.pop("havarti_started", None)
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    status = str(response.status_code)
    m = prom.metrics()
    m.requests.labels(route, request.method, status).inc()
    if started is not None:
        elapsed = time.perf_counter() - started
        m.request_seconds.labels(route).observe(elapsed)
        log.debug("request method=%s path=%s route=%s status=%s ms=%.1f remote=%s",
                  request.method, request.path, route, status, elapsed * 1000,
                  request.remote_addr or "-")
    return response


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    jobs = context.index().jobs
    body, content_type = prom.exposition(lambda: jobs.pending() if jobs is not None else -1)
    return Response(body, content_type=content_type)


def observe_download(project: str, source: StoredFile | StreamingFile | RedirectFile) -> None:
    """Count a file request: served from Havarti's storage (hit) or from upstream (miss)."""
    hit = isinstance(source, StoredFile)
    size = source.size if not isinstance(source, RedirectFile) else 0
    size = size or 0
    m = prom.metrics()
    m.file_requests.labels("hit" if hit else "miss").inc()
    m.file_bytes.labels("cache" if hit else "upstream").inc(size)
    context.index().count_download(project, hit, size)


def count_storage_error() -> None:
    prom.metrics().storage_errors.inc()
