"""Projects and files Havarti holds itself: look-ups, and their page entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from havarti.db.models import ORIGIN_UPLOADED, File, Project, UpstreamPage
from havarti.distributions import normalized
from havarti.domain.pages import format_time
from havarti.records import CACHED, PRIVATE, PageFile


def get_or_create_project(session: Session, name: str) -> Project:
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
    return session.scalar(select(Project).where(Project.name == normalized(name)))


def project_names(session: Session) -> list[str]:
    """Every project Havarti can serve without upstream, sorted: private ones, and upstream
    ones whose page (served stale in an outage) or a file of which is stored."""
    held = select(Project.name.label("name")).where(
        or_(Project.private, Project.files.any(File.stored)))
    pages = select(UpstreamPage.name.label("name"))
    return list(session.scalars(union(held, pages).order_by("name")))


def project_files(session: Session, project: Project) -> list[File]:
    return list(session.scalars(select(File).where(File.project_id == project.id)))


#: What a page entry needs of a file row (select these, not whole ORM objects, for big pages).
PAGE_COLUMNS = (File.filename, File.sha256, File.version, File.requires_python, File.yanked,
                File.yanked_reason, File.metadata_sha256, File.size, File.upload_time, File.origin)


def page_file(row: Any) -> PageFile:
    """The page entry of a file Havarti holds (a File, or a row of PAGE_COLUMNS)."""
    return PageFile(
        filename=row.filename,
        url="",
        hashes={"sha256": row.sha256},
        version=row.version,
        requires_python=row.requires_python,
        yanked=(row.yanked_reason or "") if row.yanked else False,
        core_metadata={"sha256": row.metadata_sha256} if row.metadata_sha256 else False,
        size=row.size,
        upload_time=format_time(row.upload_time) if row.upload_time else None,
        origin=PRIVATE if row.origin == ORIGIN_UPLOADED else CACHED,
    )
