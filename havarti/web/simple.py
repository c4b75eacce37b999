"""The simple API: PEP 503 HTML and PEP 691 JSON, PEP 629/592/658/714/700 fields."""

from __future__ import annotations

from flask import Blueprint, redirect, request
from werkzeug.wrappers import Response

from havarti.distributions import normalized
from havarti.web import context
from havarti.web.errors import one_line
from havarti.web.negotiate import choose_format
from havarti.web.pagepath import PAGE_ERROR, page_answer

bp = Blueprint("simple", __name__)

JSON = "application/vnd.pypi.simple.v1+json"


def _negotiated(html: bytes, json: bytes) -> Response:
    media_type = choose_format(request)
    if media_type is None:
        return _not_acceptable()
    body = json if media_type == JSON else html
    response = Response(body, content_type=f"{media_type}; charset=utf-8" if media_type != JSON
                        else media_type)
    response.headers["Vary"] = "Accept"
    return response


def _not_acceptable() -> Response:
    return one_line(406, f"acceptable formats: {JSON}, application/vnd.pypi.simple.v1+html, text/html")


@bp.get("/simple/")
def index() -> Response:
    html, json = context.index().root_page()
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
    media_type = choose_format(request)
    if media_type is None:
        return _not_acceptable()
    page = context.index().project_page(canonical)
    status, headers, body = page_answer(page, media_type, request.headers.get("Accept-Encoding"),
                                        request.headers.get("If-None-Match"))
    return Response(body, status=status, headers=headers)


def _redirect_to(canonical: str) -> Response:
    query = request.query_string.decode()
    target = f"/simple/{canonical}/" + (f"?{query}" if query else "")
    return redirect(target, code=301)
