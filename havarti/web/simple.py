"""The simple API: PEP 503 HTML and PEP 691 JSON, PEP 629/592/658/714/700 fields."""

from __future__ import annotations

from flask import Blueprint, redirect, request
from werkzeug.wrappers import Response

from havarti.domain.distributions import normalized
from havarti.web import context
from havarti.web.errors import one_line
from havarti.web.negotiate import choose_format
from havarti.web.pagepath import PAGE_ERROR, stale_header

bp = Blueprint("simple", __name__)

JSON = "application/vnd.pypi.simple.v1+json"


def _negotiated(html: bytes, json: bytes, etags: tuple[str, str] | None = None,
                stale_reason: str | None = None) -> Response:
    media_type = choose_format(request)
    if media_type is None:
        return one_line(406, f"acceptable formats: {JSON}, application/vnd.pypi.simple.v1+html, text/html")
    body = json if media_type == JSON else html
    response = Response(body, content_type=f"{media_type}; charset=utf-8" if media_type != JSON
                        else media_type)
    response.headers["Vary"] = "Accept"
    if etags:
        # One ETag per representation, from its bytes: pip's HTTP cache revalidates with it.
        response.set_etag(etags[1] if media_type == JSON else etags[0])
        response.headers["Cache-Control"] = "max-age=0, must-revalidate"
    if stale_reason:
        response.headers["X-Havarti-Stale"] = stale_header(stale_reason)
    return response.make_conditional(request)


@bp.get("/simple/")
def index() -> Response:
    html, json = context.index().index()
    return _negotiated(html, json)


@bp.get("/simple/<project>")
def project_no_slash(project: str) -> Response:
    return _redirect_to(normalized(project))


@bp.get("/simple/<project>/")
def project(project: str) -> Response:
    canonical = normalized(project)
    if canonical != project:
        return _redirect_to(canonical)
    error = request.environ.pop(PAGE_ERROR, None)
    if error is not None:
        # The page path (havarti.web.pagepath) asked the index already: answer its error.
        raise error
    page = context.index().project_page(canonical)
    return _negotiated(page.html, page.json, (page.html_etag, page.json_etag),
                       page.stale_reason)


def _redirect_to(canonical: str) -> Response:
    query = request.query_string.decode()
    target = f"/simple/{canonical}/" + (f"?{query}" if query else "")
    return redirect(target, code=301)
