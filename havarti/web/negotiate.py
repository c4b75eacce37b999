"""PEP 691 content negotiation for the simple API."""

from __future__ import annotations

from functools import lru_cache

from flask import Request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from havarti.records import HTML_TYPE, JSON_TYPE

# PEP 691's "latest" names whatever the newest version is: v1 here.
LATEST = {"application/vnd.pypi.simple.latest+json": JSON_TYPE,
          "application/vnd.pypi.simple.latest+html": HTML_TYPE}
# Order breaks ties: a bare */* (curl, old tools) gets the HTML everyone reads.
OFFERED = ["text/html", HTML_TYPE, JSON_TYPE, *LATEST]
FORMATS = {"json": JSON_TYPE, "html": HTML_TYPE, JSON_TYPE: JSON_TYPE, HTML_TYPE: HTML_TYPE,
           "text/html": "text/html", **LATEST}


def choose_format(request: Request) -> str | None:
    """The media type to answer ``request`` with, or None when nothing acceptable is offered."""
    return choose(request.headers.get("Accept"), request.args.get("format"))


def choose(accept: str | None, forced: str | None = None) -> str | None:
    """The media type for an ``Accept`` value and a ``?format=``, or None (406).

    ``?format=`` wins over ``Accept``. No ``Accept`` at all means HTML, as
    PEP 691 recommends for clients that predate it.
    """
    if forced:
        return FORMATS.get(forced)
    if not accept:
        return "text/html"
    # Clients send a handful of distinct Accept values, and parsing one costs more than
    # the rest of a warm page request: remembered, unless it is too long to keep.
    return _best(accept) if len(accept) <= 512 else _best.__wrapped__(accept)


@lru_cache(maxsize=256)
def _best(accept: str) -> str | None:
    best = parse_accept_header(accept, MIMEAccept).best_match(OFFERED)
    return LATEST.get(best, best) if best else None


@lru_cache(maxsize=64)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value takes gzip (named, else ``*``, with a q above 0)."""
    if not accept_encoding or len(accept_encoding) > 512:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        q = params.strip().lower()
        try:
            weights[coding.strip().lower()] = float(q.removeprefix("q=")) if q else 1.0
        except ValueError:
            weights[coding.strip().lower()] = 0.0
    named = [weights[c] for c in ("gzip", "x-gzip") if c in weights]
    return max(named) > 0 if named else weights.get("*", 0.0) > 0
