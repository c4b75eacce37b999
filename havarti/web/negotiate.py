"""PEP 691 content negotiation for the simple API."""

from __future__ import annotations

from flask import Request

from havarti.records import HTML_TYPE, JSON_TYPE

# PEP 691's "latest" names whatever the newest version is: v1 here.
LATEST = {"application/vnd.pypi.simple.latest+json": JSON_TYPE,
          "application/vnd.pypi.simple.latest+html": HTML_TYPE}
# Order breaks ties: a bare */* (curl, old tools) gets the HTML everyone reads.
OFFERED = ["text/html", HTML_TYPE, JSON_TYPE, *LATEST]
FORMATS = {"json": JSON_TYPE, "html": HTML_TYPE, JSON_TYPE: JSON_TYPE, HTML_TYPE: HTML_TYPE,
           "text/html": "text/html", **LATEST}


def choose_format(request: Request) -> str | None:
    """The media type to answer with, or None when nothing acceptable is offered (406).

    ``?format=`` wins over ``Accept``. No ``Accept`` at all means HTML, as
    PEP 691 recommends for clients that predate it.
    """
    forced = request.args.get("format")
    if forced:
        return FORMATS.get(forced)
    if not request.headers.get("Accept"):
        return "text/html"
    best = request.accept_mimetypes.best_match(OFFERED)
    return LATEST.get(best, best) if best else None
