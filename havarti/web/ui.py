"""The web UI: home, project search, project pages and stats, rendered on the server.

Every page works without JavaScript; havarti.js only adds copy buttons. A
strict Content-Security-Policy backs up the description sanitiser.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from havarti.cache import BoundedCache
from havarti.db import unless_full
from havarti.domain import browse, stats
from havarti.domain.distributions import normalized, same_version
from havarti.domain.index import RenderedPage
from havarti.domain.text import is_version
from havarti.errors import HavartiError
from havarti.web import charts, context, telemetry
from havarti.web.errors import one_line, status_for
from havarti.web.listing import render_listing

bp = Blueprint("ui", __name__)

CSP = ("default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

_extensions_guard = threading.Lock()
LISTING_MARK = "<!--havarti:listing-->"
#: How long the headline figures (totals over every file and day) are reused.
SUMMARY_SECONDS = 5.0
T = TypeVar("T")


def _extension(name: str, factory: Callable[[], Any]) -> Any:
    """A per-app object made on first use (caches of rendered pieces)."""
    value = current_app.extensions.get(name)
    if value is None:
        with _extensions_guard:
            value = current_app.extensions.setdefault(name, factory())
    return value


def _recent(name: str, compute: Callable[[], T], fresh: bool = False) -> T:
    """``compute()``, reused for SUMMARY_SECONDS: totals over every file are not free."""
    cache: dict[str, tuple[float, Any]] = _extension("havarti_summaries", dict)
    now = time.monotonic()
    entry = cache.get(name)
    if fresh or entry is None or entry[0] < now:
        entry = cache[name] = (now + SUMMARY_SECONDS, compute())
    return entry[1]


def descriptions() -> browse.DescriptionCache:
    return _extension("havarti_descriptions", browse.DescriptionCache)


@bp.after_app_request
def security_headers(response: Response) -> Response:
    if response.mimetype == "text/html" and request.blueprint in ("ui", "manage", "admin"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.app_template_filter("filesize")
def filesize(value: int | None) -> str:
    return charts.filesize(value)


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@bp.app_template_filter("thousands")
def thousands(value: int) -> str:
    return f"{value:,}"


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=" ".join(message.split())), status


#: Highest ``page`` asked for by number (a bigger one would overflow the database's integers).
MAX_PAGE = 1_000_000


def _page_number() -> int | Response:
    """``?page=N``: a whole number from 1 to MAX_PAGE (ASCII digits: not "²"), default 1."""
    raw = request.args.get("page", "1") or "1"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 7) or not 1 <= int(raw) <= MAX_PAGE:
        return one_line(400, f"page must be a whole number from 1 to {MAX_PAGE}, not {raw[:40]!r}")
    return int(raw)


@bp.get("/")
def home() -> str:
    db = context.index().db
    return render_template("home.html", base=context.base_url(),
                           overview=_recent("overview", lambda: stats.overview(db)),
                           counts=_recent("counts", lambda: browse.project_counts(db)),
                           passcode_set=bool(context.settings().passcode))


@bp.get("/projects/")
def projects() -> Response | str | tuple[str, int]:
    kind = request.args.get("kind", "all") or "all"
    if kind not in browse.KINDS:
        return one_line(400, f"kind must be one of {', '.join(browse.KINDS)}")
    page = _page_number()
    if isinstance(page, Response):
        return page
    query = request.args.get("q", "")
    if len(query) > 200:
        return one_line(400, "the search is longer than 200 characters")
    result = browse.search_projects(context.index().db, query, kind, page)
    return render_template("projects.html", result=result, raw_query=query)


@bp.get("/projects/<name>/")
def project(name: str) -> Response | tuple[str, int] | str:
    """The project, with VERSIONS_PER_PAGE versions a page (``?page=N``, or the page of
    ``?version=V``), newest first."""
    canonical = normalized(name)
    if canonical != name:
        query = request.query_string.decode("latin-1")
        return redirect(url_for("ui.project", name=canonical) + (f"?{query}" if query else ""),
                        code=301)
    number = _page_number()
    if isinstance(number, Response):
        return number
    index = context.index()
    try:
        rendered = index.project_page(canonical)
    except HavartiError as exc:
        return _error_page(status_for(exc), str(exc))
    row, description = descriptions().get(index.db, canonical)
    private = bool(row and row.private)
    cached = browse.cached_filenames(index.db, canonical) if not private else frozenset()
    listing = _listing(rendered, cached)
    version = request.args.get("version")
    if version:
        if not is_version(version):
            return one_line(400, f"{version[:80]!r} is not a valid version")
        found = listing.page_of(version)
        if found is None:
            return _error_page(404, f"{canonical} has no version {version[:80]!r}")
        number = found
    if number > listing.pages:
        return _error_page(404, f"no page {number}: {canonical} has {listing.pages} "
                                f"page{'s' if listing.pages != 1 else ''} of versions")
    part = _listing_page(rendered.json_etag, cached, listing, number)
    page = render_template("project.html", base=context.base_url(), name=canonical,
                           display_name=row.display_name if row else canonical, private=private,
                           description=description, stale=rendered.stale, listing=listing,
                           part=part, listing_html=Markup(LISTING_MARK))
    # The listing goes out as the bytes it was cached as, never copied into the page string.
    head, tail = page.split(LISTING_MARK, 1)
    body = [head.encode(), part.html, tail.encode()]
    response = Response(body, mimetype="text/html")
    response.content_length = sum(len(piece) for piece in body)
    return response


@dataclass(frozen=True)
class Listing:
    """A project page's files grouped by version, newest first: once per page version."""

    releases: list[browse.Release]
    latest: str | None
    files: int

    @property
    def versions(self) -> int:
        return len(self.releases)

    @property
    def pages(self) -> int:
        return max(1, -(-self.versions // browse.VERSIONS_PER_PAGE))

    def page_of(self, version: str) -> int | None:
        """The page showing ``version`` (compared as written, then as PEP 440 would)."""
        for position, release in enumerate(self.releases):
            if release.version == version:
                return position // browse.VERSIONS_PER_PAGE + 1
        for position, release in enumerate(self.releases):
            if same_version(release.version, version):
                return position // browse.VERSIONS_PER_PAGE + 1
        return None


@dataclass(frozen=True)
class ListingPart:
    """One page of a listing, rendered: versions ``first`` to ``last`` (from 1) of ``total``."""

    html: bytes
    number: int
    pages: int
    first: int
    last: int
    total: int


def _listing(rendered: RenderedPage, cached: frozenset[str]) -> Listing:
    # Grouping and sorting 5,000 versions takes longer than a page may: once per change.
    cache: BoundedCache[tuple[str, frozenset[str]], Listing] = _extension(
        "havarti_listings", lambda: BoundedCache(16 * 2**20, lambda li: 200 * li.files + 256, 64))
    key = (rendered.json_etag, cached)
    listing = cache.get(key)
    if listing is None:
        releases = browse.releases(rendered.page)
        listing = cache.put(key, Listing(releases, browse.latest(releases),
                                         len(rendered.page.files)))
    return listing


def _listing_page(etag: str, cached: frozenset[str], listing: Listing, number: int) -> ListingPart:
    cache: BoundedCache[tuple[str, frozenset[str], int], ListingPart] = _extension(
        "havarti_listing_pages", lambda: BoundedCache(16 * 2**20, lambda lp: len(lp.html) + 256, 128))
    key = (etag, cached, number)
    part = cache.get(key)
    if part is None:
        start = (number - 1) * browse.VERSIONS_PER_PAGE
        shown = listing.releases[start:start + browse.VERSIONS_PER_PAGE]
        part = cache.put(key, ListingPart(render_listing(shown, cached), number, listing.pages,
                                          start + 1, start + len(shown), listing.versions))
    return part


@bp.get("/projects/<name>/files/<filename>/")
def file_page(name: str, filename: str) -> Response | tuple[str, int] | str:
    """One file, with the forms to yank, unyank or delete it (private files only)."""
    canonical = normalized(name)
    if canonical != name:
        return redirect(url_for("ui.file_page", name=canonical, filename=filename), code=301)
    try:
        rendered = context.index().project_page(canonical)
    except HavartiError as exc:
        return _error_page(status_for(exc), str(exc))
    found = next((f for f in rendered.page.files if f.filename == filename), None)
    if found is None:
        return _error_page(404, f"no file {filename!r} in project {canonical!r}")
    from havarti.domain.manage import audit_log

    history = [entry for entry in audit_log(context.index().db, canonical)
               if entry.filename == filename]
    return render_template("file.html", project=canonical, file=found, history=history, passcode_set=bool(context.settings().passcode))


@bp.get("/stats/")
def stats_page() -> str:
    index = context.index()
    recorder = telemetry.stats_recorder(create=False)
    # This worker's latest counts, so a page right after a download shows it (kept for
    # later when the disk is full).
    flushed = 0
    if recorder is not None:
        with unless_full("download counts"):
            flushed = recorder.flush()
    overview = _recent("overview", lambda: stats.overview(index.db), fresh=flushed > 0)
    return render_template("stats.html", overview=overview,
                           requests_chart=charts.requests_chart(overview.days),
                           bytes_chart=charts.bytes_chart(overview.days))
