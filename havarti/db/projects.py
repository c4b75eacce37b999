"""The projects table: every query about projects."""

from __future__ import annotations

from sqlalchemy import bindparam, or_, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from havarti.db import Database
from havarti.db.models import File, Project, UpstreamPage
from havarti.distributions import normalized
from havarti.records import ProjectRow

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
