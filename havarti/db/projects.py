"""The projects table: every query about projects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from havarti.db import Database
from havarti.db.models import ORIGIN_UPLOADED, File, Project, UpstreamPage
from havarti.distributions import normalized
from havarti.records import FileDetails, ProjectListing, ProjectRow

_PROJECT_ROW = select(Project.id, Project.serial, Project.private).where(
    Project.name == bindparam("name"))


def get_or_create_project(session: Session, name: str) -> Project:
    """The project row named ``name`` (normalised), created when missing, in ``session``."""
    canonical = normalized(name)
    project = session.scalar(select(Project).where(Project.name == canonical))
    if project is None:
        try:
            with session.begin_nested():
                project = Project(name=canonical, display_name=name, private=False, serial=0)
                session.add(project)
        except IntegrityError:
            # Another process (web or downloader) created it at the same moment: use theirs.
            project = session.scalar(select(Project).where(Project.name == canonical))
            if project is None:
                raise
    return project


def find_project(session: Session, name: str) -> Project | None:
    """The project row named ``name`` (normalised here), or None."""
    return session.scalar(select(Project).where(Project.name == normalized(name)))


class Projects:
    """Projects Havarti knows: private ones, and upstream ones it holds files of."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def page_row(self, name: str) -> ProjectRow | None:
        """What a page needs of project ``name`` (canonical): a plain read, no ORM."""
        row = self.db.first(_PROJECT_ROW, name=name)
        return None if row is None else ProjectRow(row.id, row.serial, row.private)

    def is_private(self, name: str) -> bool:
        """Whether project ``name`` (canonical) has private uploads."""
        with self.db.session() as session:
            return bool(session.scalar(select(Project.private).where(Project.name == name)))

    def find(self, name: str) -> Project | None:
        """The project row named ``name``, or None."""
        with self.db.session() as session:
            return find_project(session, name)

    def served_names(self) -> list[str]:
        """Every project Havarti can serve without upstream, sorted: private ones, and upstream
        ones whose page (served stale in an outage) or a file of which is stored."""
        with self.db.session() as session:
            held = select(Project.name.label("name")).where(
                or_(Project.private, Project.files.any(File.stored)))
            pages = select(UpstreamPage.name.label("name"))
            return list(session.scalars(union(held, pages).order_by("name")))

    # What the web UI lists

    def search(self, needle: str, kind: str, page: int,
               per_page: int) -> tuple[int, list[ProjectListing]]:
        """How many projects match, and page ``page`` of them: names containing ``needle``
        (normalised), exact and prefix matches first; ``kind`` all, private or cached."""
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
        # The version of the newest upload: one index look-up per listed project, where sorting
        # every version of every project would cost (a project may hold thousands).
        newest = (select(File.version).where(File.project_id == Project.id)
                  .order_by(File.upload_time.desc(), File.id.desc()).limit(1)
                  .correlate(Project).scalar_subquery())
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(Project)
                                   .where(*conditions)) or 0
            found = session.execute(
                select(Project.id, Project.name, Project.display_name, Project.private)
                .where(*conditions).order_by(*order)
                .limit(per_page).offset((page - 1) * per_page)).all()
            ids = [row.id for row in found]
            # Asked for the page's rows only: in the query above it would run for skipped rows.
            latest: dict[int, str | None] = dict(
                session.execute(select(Project.id, newest).where(Project.id.in_(ids))).all())
            counts = {pid: (n, last) for pid, n, last in session.execute(
                select(File.project_id, func.count(), func.max(File.upload_time))
                .where(File.project_id.in_(ids)).group_by(File.project_id))}
        rows = []
        for row in found:
            n, last = counts.get(row.id, (0, None))
            rows.append(ProjectListing(row.name, row.display_name, row.private, n,
                                       latest.get(row.id), last))
        return total, rows

    def counts(self) -> dict[bool, int]:
        """How many projects are private (True) and cached-only (False)."""
        with self.db.session() as session:
            return {bool(k): int(v) for k, v in session.execute(
                select(Project.private, func.count()).group_by(Project.private)).all()}

    def listing(self, name: str) -> ProjectListing | None:
        """Project ``name`` (canonical) as the UI names it, or None."""
        with self.db.session() as session:
            row = session.execute(select(Project.name, Project.display_name, Project.private,
                                         Project.serial)
                                  .where(Project.name == name)).first()
        return None if row is None else ProjectListing(row.name, row.display_name, row.private,
                                                       serial=row.serial)

    def newest_description(self, name: str) -> tuple[str | None, str | None, str | None] | None:
        """Summary, description and its content type of the newest upload of ``name``."""
        with self.db.session() as session:
            row = session.execute(
                select(File.summary, File.description, File.description_content_type)
                .join(Project).where(Project.name == name, File.origin == ORIGIN_UPLOADED)
                .order_by(File.upload_time.desc(), File.id.desc()).limit(1)).first()
        return None if row is None else (row.summary, row.description, row.description_content_type)

    def cached_filenames(self, name: str) -> frozenset[str]:
        """Upstream files of project ``name`` (canonical) that Havarti holds in its storage."""
        with self.db.session() as session:
            return frozenset(session.scalars(
                select(File.filename).join(File.project)
                .where(Project.name == name, File.origin != ORIGIN_UPLOADED,
                       File.stored.is_(True))))

    def private_files(self, name: str) -> tuple[ProjectListing, list[FileDetails]] | None:
        """A private project (``name`` normalised here) and its uploaded files; None when it
        is not private."""
        with self.db.session() as session:
            project = find_project(session, name)
            if project is None or not project.private:
                return None
            rows = session.scalars(select(File).where(File.project_id == project.id,
                                                      File.origin == ORIGIN_UPLOADED))
            files = [FileDetails(
                r.filename, r.version, r.packagetype, r.size, r.sha256, r.md5, r.blake2_256,
                r.requires_python, r.upload_time, r.yanked, r.yanked_reason, r.summary,
                r.description, r.description_content_type) for r in rows]
            return (ProjectListing(project.name, project.display_name, project.private,
                                   serial=project.serial), files)
