"""What the web UI lists: project search, and a project's versions and description.

Plain data for the templates; no HTTP here. Project names are stored
normalised (PEP 503), so a normalised query matches with plain LIKE.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from havarti.cache import BoundedCache
from havarti.db import Database
from havarti.db.models import ORIGIN_UPLOADED, File, Project
from havarti.distributions import normalized
from havarti.domain.pages import ProjectPage, sort_versions
from havarti.records import PageFile

PER_PAGE = 50
#: Versions a project page shows at once: one with thousands of versions stays a small page.
VERSIONS_PER_PAGE = 50
KINDS = ("all", "private", "cached")


@dataclass(frozen=True)
class ProjectRow:
    name: str
    display_name: str
    private: bool
    files: int = 0
    latest: str | None = None
    last_upload: datetime | None = None


@dataclass(frozen=True)
class SearchResult:
    query: str
    kind: str
    page: int
    total: int
    rows: list[ProjectRow]
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def search_projects(db: Database, query: str = "", kind: str = "all", page: int = 1,
                    per_page: int = PER_PAGE) -> SearchResult:
    """Projects Havarti holds whose normalised name contains ``query``; prefix matches first."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    needle = normalized(query.strip()) if query.strip() else ""
    # Every project row: rows are made only with a file, and a private project whose last
    # file was deleted is listed too (with 0 files), since it still shadows the public one.
    conditions: list[Any] = []
    if needle:
        conditions.append(Project.name.contains(needle, autoescape=True))
    if kind == "private":
        conditions.append(Project.private.is_(True))
    elif kind == "cached":
        conditions.append(Project.private.is_(False))
    order: list[Any] = [Project.name]
    if needle:
        order.insert(0, case((Project.name == needle, 0),
                             (Project.name.startswith(needle, autoescape=True), 1), else_=2))
    page = max(1, page)
    # The version of the newest upload: one index look-up per listed project, where sorting
    # every version of every project would cost (a project may hold thousands).
    newest = (select(File.version).where(File.project_id == Project.id)
              .order_by(File.upload_time.desc(), File.id.desc()).limit(1)
              .correlate(Project).scalar_subquery())
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Project).where(*conditions)) or 0
        found = session.execute(
            select(Project.id, Project.name, Project.display_name, Project.private)
            .where(*conditions).order_by(*order)
            .limit(per_page).offset((page - 1) * per_page)).all()
        ids = [row.id for row in found]
        # Asked for the page's rows only: in the query above it would run for skipped rows too.
        latest: dict[int, str | None] = dict(
            session.execute(select(Project.id, newest).where(Project.id.in_(ids))).all())
        counts = {pid: (n, last) for pid, n, last in session.execute(
            select(File.project_id, func.count(), func.max(File.upload_time))
            .where(File.project_id.in_(ids)).group_by(File.project_id))}
    rows = []
    for row in found:
        n, last = counts.get(row.id, (0, None))
        rows.append(ProjectRow(row.name, row.display_name, row.private, n, latest.get(row.id),
                               last))
    return SearchResult(needle, kind, page, total, rows, per_page)


@dataclass(frozen=True)
class Release:
    """One version's files, for the project page."""

    version: str
    files: list[PageFile]
    #: Every file of the version is yanked.
    yanked: bool = False


def latest(releases: list[Release]) -> str | None:
    """The newest version with a file that is not yanked (what pip would pick)."""
    for release in releases:
        if not release.yanked and release.version != UNKNOWN_VERSION:
            return release.version
    return None


UNKNOWN_VERSION = "(unknown version)"


def releases(page: ProjectPage) -> list[Release]:
    """The page's files grouped by version, newest version first."""
    grouped: dict[str, list[PageFile]] = {}
    for f in page.files:
        grouped.setdefault(f.version or UNKNOWN_VERSION, []).append(f)
    ordered = sort_versions([v for v in grouped if v != UNKNOWN_VERSION])[::-1]
    if UNKNOWN_VERSION in grouped:
        ordered.append(UNKNOWN_VERSION)
    return [Release(v, grouped[v], all(f.yanked is not False for f in grouped[v]))
            for v in ordered]


@dataclass(frozen=True)
class Description:
    summary: str | None
    html: str | None


class DescriptionCache:
    """Rendered descriptions by (project, serial): rendering a README is slow, serials are cheap."""

    def __init__(self, size: int = 256) -> None:
        self._items: BoundedCache[tuple[str, int], Description] = BoundedCache(
            16 * 2**20, lambda d: len(d.html or "") + len(d.summary or "") + 64, max_entries=size)

    def get(self, db: Database, project: str) -> tuple[Project | None, Description]:
        canonical = normalized(project)
        with db.session() as session:
            proj = session.scalar(select(Project).where(Project.name == canonical))
            if proj is None or not proj.private:
                return proj, Description(None, None)
            key = (canonical, proj.serial)
            cached = self._items.get(key)
            if cached is not None:
                return proj, cached
            newest = session.execute(
                select(File.summary, File.description, File.description_content_type)
                .where(File.project_id == proj.id, File.origin == ORIGIN_UPLOADED)
                .order_by(File.upload_time.desc(), File.id.desc()).limit(1)).first()
        description = Description(None, None)
        if newest is not None:
            description = Description(newest.summary,
                                      render_description(newest.description,
                                                         newest.description_content_type))
        return proj, self._items.put(key, description)


def render_description(text: str | None, content_type: str | None) -> str | None:
    """The description as safe HTML, as PyPI renders it: readme-renderer, sanitised by nh3.

    Markdown (GFM or CommonMark) and reStructuredText are rendered; anything
    else, and reST that does not parse, is shown as escaped plain text.
    """
    if not text or not text.strip():
        return None
    import readme_renderer.rst
    import readme_renderer.txt

    mime, _, params = (content_type or "text/x-rst").partition(";")
    mime = mime.strip().lower()
    html: str | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mime == "text/markdown":
            import readme_renderer.markdown

            variant = "GFM"
            for param in params.split(";"):
                key, _, value = param.partition("=")
                if key.strip().lower() == "variant" and value.strip() in ("GFM", "CommonMark"):
                    variant = value.strip()
            html = readme_renderer.markdown.render(text, variant=variant)
        elif mime == "text/x-rst":
            html = readme_renderer.rst.render(text)
        if html is None:
            html = readme_renderer.txt.render(text)
    return html


@dataclass(frozen=True)
class ProjectCounts:
    private: int
    cached: int


def project_counts(db: Database) -> ProjectCounts:
    """How many projects Havarti holds: private, and cached-only."""
    with db.session() as session:
        counted = dict(session.execute(
            select(Project.private, func.count()).group_by(Project.private)).all())
    return ProjectCounts(int(counted.get(True, 0)), int(counted.get(False, 0)))


def cached_filenames(db: Database, project: str) -> frozenset[str]:
    """Upstream files of ``project`` that Havarti holds in its storage."""
    with db.session() as session:
        return frozenset(session.scalars(
            select(File.filename).join(File.project)
            .where(Project.name == normalized(project), File.origin != ORIGIN_UPLOADED,
                   File.stored.is_(True))))
