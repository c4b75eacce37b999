"""The web UI: home, project search, project pages and stats, rendered on the server.

Every page works without JavaScript; havarti.js only adds copy buttons. A
strict Content-Security-Policy backs up the description sanitiser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from havarti.distributions import normalized, same_version
from havarti.domain import browse
from havarti.domain.client_config import ClientConfig
from havarti.domain.index import RenderedPage
from havarti.domain.text import is_version
from havarti.errors import HavartiError
from havarti.web import charts, context
from havarti.web.errors import one_line, status_for
from havarti.web.listing import render_listing

bp = Blueprint("ui", __name__)

CSP = ("default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

LISTING_MARK = "<!--havarti:listing-->"


@bp.after_app_request
def security_headers(response: Response) -> Response:
    # The UI's pages, and error pages in its layout whichever blueprint answered.
    if response.mimetype == "text/html" and (request.blueprint in ("ui", "manage", "admin")
                                             or response.status_code >= 400):
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


@bp.app_template_filter("words")
def words(text: str) -> Markup:
    """Command text for a ``<pre>``: each word in a span that never breaks inside, so a
    line wraps between words ("-u havarti", a project name) and copies as written."""
    return Markup(re.sub(r"\S+", lambda m: f'<span class="w">{m.group()}</span>',
                         str(escape(text))))


@bp.app_template_filter("thousands")
def thousands(value: int) -> str:
    return f"{value:,}"


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
    catalog = context.index().catalog
    return render_template("home.html", clients=ClientConfig(context.base_url()),
                           overview=catalog.overview(), counts=catalog.counts(),
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
    result = context.index().catalog.search(query, kind, page)
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
        return one_line(status_for(exc), str(exc))
    row, description = index.catalog.description(canonical)
    private = bool(row and row.private)
    cached = index.catalog.cached_filenames(canonical) if not private else frozenset()
    listing = _listing(rendered)
    version = request.args.get("version")
    if version:
        if not is_version(version):
            return one_line(400, f"{version[:80]!r} is not a valid version")
        found = listing.page_of(version)
        if found is None:
            return one_line(404, f"{canonical} has no version {version[:80]!r}")
        number = found
    if number > listing.pages:
        return one_line(404, f"no page {number}: {canonical} has {listing.pages} "
                                f"page{'s' if listing.pages != 1 else ''} of versions")
    part = _listing_page(canonical, rendered.json_etag, cached, listing, number)
    standing = index.project_mode(canonical) if private else None
    hidden = index.upstream_files(canonical) if standing else None
    page = render_template("project.html", clients=ClientConfig(context.base_url()), name=canonical,
                           display_name=row.display_name if row else canonical, private=private,
                           description=description, stale=rendered.stale, listing=listing,
                           part=part, listing_html=Markup(LISTING_MARK), standing=standing,
                           upstream_files=hidden, upstream_url=index.upstream_page_url(canonical),
                           passcode_set=bool(context.settings().passcode))
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


def _listing(rendered: RenderedPage) -> Listing:
    releases = context.index().catalog.releases(rendered.json_etag, rendered.page)
    return Listing(releases, browse.latest(releases), len(rendered.page.files))


def _listing_page(project: str, etag: str, cached: frozenset[str], listing: Listing,
                  number: int) -> ListingPart:
    cache = context.index().catalog.pieces
    key = ("listing", etag, cached, number)
    part = cache.get(key)
    if part is None:
        start = (number - 1) * browse.VERSIONS_PER_PAGE
        shown = listing.releases[start:start + browse.VERSIONS_PER_PAGE]
        part = cache.put(key, ListingPart(render_listing(project, shown, cached), number,
                                          listing.pages, start + 1, start + len(shown),
                                          listing.versions))
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
        return one_line(status_for(exc), str(exc))
    found = next((f for f in rendered.page.files if f.filename == filename), None)
    if found is None:
        return one_line(404, f"no file {filename!r} in project {canonical!r}")

    history = [entry for entry in context.index().audit_log(canonical)
               if entry.filename == filename]
    return render_template("file.html", project=canonical, file=found, history=history, passcode_set=bool(context.settings().passcode))


@bp.get("/stats/")
def stats_page() -> str:
    overview = context.index().catalog.overview(fresh=True)
    return render_template("stats.html", overview=overview,
                           requests_chart=charts.requests_chart(overview.days),
                           bytes_chart=charts.bytes_chart(overview.days))
