"""The web UI: home, project search, project pages and stats, rendered on the server.

Every page works without JavaScript; havarti.js only adds copy buttons. A
strict Content-Security-Policy backs up the description sanitiser.
"""

from __future__ import annotations

import threading
from datetime import datetime

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from havarti.domain import browse, stats
from havarti.domain.distributions import normalized
from havarti.errors import HavartiError
from havarti.web import charts, context, telemetry
from havarti.web.errors import one_line, status_for

bp = Blueprint("ui", __name__)

CSP = ("default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

#: How the project page names where a file comes from.
ORIGINS = {"private": "private", "cached": "cached here", "upstream": "upstream"}

_descriptions_guard = threading.Lock()


def base_url() -> str:
    """Where users reach this server: PUBLIC_URL, else the URL this request came to."""
    settings = context.settings()
    return (settings.public_url or request.host_url).rstrip("/")


def descriptions() -> browse.DescriptionCache:
    cache = current_app.extensions.get("havarti_descriptions")
    if cache is None:
        with _descriptions_guard:
            cache = current_app.extensions.setdefault("havarti_descriptions",
                                                      browse.DescriptionCache())
    return cache


@bp.after_app_request
def security_headers(response: Response) -> Response:
    if response.mimetype == "text/html" and request.blueprint in ("ui", "manage"):
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


@bp.get("/")
def home() -> str:
    index = context.index()
    overview = stats.overview(index.db)
    return render_template("home.html", base=base_url(), overview=overview,
                           counts=browse.project_counts(index.db),
                           passcode_set=bool(context.settings().passcode))


@bp.get("/projects/")
def projects() -> Response | str | tuple[str, int]:
    kind = request.args.get("kind", "all") or "all"
    if kind not in browse.KINDS:
        return one_line(400, f"kind must be one of {', '.join(browse.KINDS)}")
    raw_page = request.args.get("page", "1") or "1"
    if not raw_page.isdigit() or int(raw_page) < 1:
        return one_line(400, f"page must be a whole number from 1, not {raw_page[:40]!r}")
    query = request.args.get("q", "")
    if len(query) > 200:
        return one_line(400, "the search is longer than 200 characters")
    result = browse.search_projects(context.index().db, query, kind, int(raw_page))
    return render_template("projects.html", result=result, raw_query=query)


@bp.get("/projects/<name>/")
def project(name: str) -> Response | tuple[str, int] | str:
    canonical = normalized(name)
    if canonical != name:
        return redirect(url_for("ui.project", name=canonical), code=301)
    index = context.index()
    try:
        rendered = index.project_page(canonical)
    except HavartiError as exc:
        return _error_page(status_for(exc), str(exc))
    row, description = descriptions().get(index.db, canonical)
    view = browse.ProjectView(
        name=canonical,
        display_name=row.display_name if row else canonical,
        private=bool(row and row.private),
        releases=browse.releases(rendered.page),
        summary=description.summary,
        description_html=description.html,
        stale=rendered.stale,
        file_count=len(rendered.page.files),
    )
    cached = browse.cached_filenames(index.db, canonical) if not view.private else frozenset()
    return render_template("project.html", project=view, base=base_url(), cached=cached,
                           origins=ORIGINS)


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
    return render_template("file.html", project=canonical, file=found, base=base_url(),
                           history=history, passcode_set=bool(context.settings().passcode))


@bp.get("/stats/")
def stats_page() -> str:
    index = context.index()
    recorder = telemetry.stats_recorder(create=False)
    if recorder is not None:
        # This worker's latest counts, so a page right after a download shows it.
        recorder.flush()
    overview = stats.overview(index.db)
    return render_template("stats.html", overview=overview,
                           requests_chart=charts.requests_chart(overview.days),
                           bytes_chart=charts.bytes_chart(overview.days))
