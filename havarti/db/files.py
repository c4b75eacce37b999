"""The files table: every query about distribution files, and the one conversion
between a row and the records the domain uses (records.PageFile, records.HeldFile)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from havarti.db import Database, unless_full
from havarti.db.audit import add_entry
from havarti.db.models import ORIGIN_CACHED, ORIGIN_UPLOADED, File, Project
from havarti.db.projects import get_or_create_project
from havarti.db.tombstones import buried, bury
from havarti.distributions import parse_dist_filename
from havarti.errors import Conflict, DownloadFailed, NotFound
from havarti.records import (
    CACHED,
    PRIVATE,
    DeletedFile,
    FileDigests,
    HeldFile,
    PageFile,
    UploadedFile,
)

#: What a page entry needs of a file row (select these, not whole ORM objects, for big pages).
PAGE_COLUMNS = (File.filename, File.sha256, File.version, File.requires_python, File.yanked,
                File.yanked_reason, File.metadata_sha256, File.size, File.upload_time, File.origin)
_HELD_COLUMNS = (File.id, File.filename, Project.name, File.origin, Project.private,
                 File.storage_key, File.size, File.sha256, File.stored, File.last_served,
                 File.metadata_sha256, Project.upstream_mode, File.version)


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
        upload_time=_iso(row.upload_time) if row.upload_time else None,
        origin=PRIVATE if row.origin == ORIGIN_UPLOADED else CACHED,
    )


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def held_file(row: Any) -> HeldFile:
    """The record of a row of _HELD_COLUMNS."""
    return HeldFile(row.id, row.filename, row.name,
                    PRIVATE if row.origin == ORIGIN_UPLOADED else CACHED, row.private,
                    row.storage_key, row.size, row.sha256, row.stored, row.last_served,
                    row.metadata_sha256, row.upstream_mode, row.version)


def cached_row(project_id: int, file: PageFile, key: str, digests: FileDigests) -> File:
    """A new row for an upstream ``file`` stored at ``key``."""
    dist = parse_dist_filename(file.filename)
    return File(
        project_id=project_id, filename=file.filename, version=dist.version,
        packagetype=dist.packagetype, size=digests.size, sha256=digests.sha256,
        md5=digests.md5, blake2_256=digests.blake2_256, requires_python=file.requires_python,
        yanked=file.yanked is not False,
        yanked_reason=file.yanked if isinstance(file.yanked, str) else None,
        upload_time=file.upload_datetime or datetime.now(UTC), origin=ORIGIN_CACHED,
        metadata_sha256=(file.core_metadata.get("sha256")
                         if isinstance(file.core_metadata, dict) else None),
        storage_key=key, upstream_url=file.url, stored=True, last_served=datetime.now(UTC),
    )


ProjectLookup = Callable[[Session, str], Project]


class Files:
    """Distribution files Havarti holds: uploaded ones and cached upstream ones."""

    def __init__(self, db: Database, project_lookup: ProjectLookup = get_or_create_project) -> None:
        self.db = db
        #: How an upload finds (or makes) its project row; a test passes a slow one for races.
        self.project_lookup = project_lookup

    def private_page_files(self, project_id: int) -> list[PageFile]:
        """The uploaded files of a project, as its page lists them."""
        with self.db.session() as session:
            # Plain rows, not ORM objects: five times cheaper for a 5,000-file project.
            rows = session.execute(select(*PAGE_COLUMNS).where(
                File.project_id == project_id, File.origin == ORIGIN_UPLOADED))
            return [page_file(row) for row in rows]

    def held(self, project: str, filename: str) -> HeldFile | None:
        """The row of ``filename`` when it is a file of ``project`` (canonical), else None."""
        with self.db.session() as session:
            row = session.execute(select(*_HELD_COLUMNS).join(Project)
                                  .where(File.filename == filename)).first()
        if row is None or row.name != project:
            return None
        return held_file(row)

    def served(self, file_id: int, when: datetime) -> None:
        """Note that a file was served (for eviction); skipped when the disk is full."""
        with unless_full("last_served"), self.db.session() as session:
            session.execute(update(File).where(File.id == file_id).values(last_served=when))

    def stored_copy(self, project: str, file: PageFile) -> HeldFile | None:
        """The stored row of upstream ``file``: same project, the sha256 its page promises."""
        held = self.held(project, file.filename)
        if (held is not None and held.stored and file.sha256
                and held.sha256 == file.sha256.lower()):
            return held
        return None

    def record_cached(self, project: str, file: PageFile, key: str,
                      digests: FileDigests) -> HeldFile:
        """Record upstream ``file`` as stored at ``key``; raises DownloadFailed when the
        filename is another project's or an upload."""
        try:
            with self.db.session() as session:
                proj = get_or_create_project(session, project)
                existing = session.scalar(select(File).where(File.filename == file.filename))
                if existing is not None:
                    if existing.project_id != proj.id or existing.origin != ORIGIN_CACHED:
                        raise DownloadFailed(f"{file.filename} is held for another project "
                                             "or was uploaded; not replaced")
                    # An evicted file fetched again (or changed upstream): the same row,
                    # stored once more, with what was verified now.
                    existing.size, existing.sha256 = digests.size, digests.sha256
                    existing.md5, existing.blake2_256 = digests.md5, digests.blake2_256
                    existing.stored, existing.storage_key = True, key
                    existing.upstream_url = file.url
                    existing.last_served = datetime.now(UTC)
                    row = existing
                else:
                    row = cached_row(proj.id, file, key, digests)
                    proj.serial += 1
                    session.add(row)
                session.flush()
                return HeldFile(row.id, row.filename, proj.name, CACHED, proj.private,
                                row.storage_key, row.size, row.sha256, row.stored,
                                row.last_served, row.metadata_sha256)
        except IntegrityError:
            cached = self.stored_copy(project, file)
            if cached is None:
                raise
            return cached

    # Uploads

    def taken(self, filename: str) -> bool:
        """Whether a row of ``filename`` exists (files are immutable)."""
        with self.db.session() as session:
            return _taken(session, filename)

    def filenames_of(self, project: str) -> list[str]:
        """The filenames of project ``project`` (canonical)."""
        with self.db.session() as session:
            return _filenames_of(session, project)

    def add_upload(self, project_name: str, file: UploadedFile,
                   check: Callable[[bool, list[str]], None]) -> None:
        """Add an uploaded file's row, its project made private (created if new).

        ``check(taken, filenames)`` runs inside the transaction, after the project's row
        is written (a lock: another upload to the project waits): it raises to refuse.
        Conflict if the filename won a race.
        """
        for attempt in (1, 2):
            try:
                with self.db.session() as session:
                    project = self.project_lookup(session, project_name)
                    project.private = True
                    project.serial = Project.serial + 1
                    # The project's row is written first: another upload to the project waits
                    # here (a Postgres row lock, SQLite's one writer) until this one commits,
                    # so two variants of one filename cannot both pass the check.
                    session.flush()
                    check(_taken(session, file.filename), _filenames_of(session, project.name))
                    session.add(File(project_id=project.id, origin=ORIGIN_UPLOADED,
                                     **msgspec.structs.asdict(file)))
                return
            except IntegrityError:
                if self.taken(file.filename):
                    # Another upload of the same filename won; files are immutable.
                    raise Conflict(f"{file.filename} already exists; "
                                   "files cannot be replaced") from None
                if attempt == 2:
                    raise
                # Another upload created the project at the same moment: it exists now.
        raise AssertionError("unreachable")

    def keys_of(self, filename: str) -> tuple[str, str | None] | None:
        """The storage key and metadata sha256 of ``filename``'s row, or None."""
        with self.db.session() as session:
            row = session.execute(select(File.storage_key, File.metadata_sha256)
                                  .where(File.filename == filename)).first()
        return None if row is None else (row.storage_key, row.metadata_sha256)

    def key_in_use(self, key: str) -> bool:
        """Whether any row (stored or not) points at ``key``."""
        with self.db.session() as session:
            return session.scalar(select(File.id).where(File.storage_key == key)
                                  .limit(1)) is not None

    # Managing private files

    def set_yanked(self, project: str, filename: str, reason: str | None,
                   remote_addr: str | None) -> str:
        """Yank with ``reason`` (unyank when None) a private file, audited; its project's name.

        NotFound without such a file; Conflict for a cached upstream file.
        """
        with self.db.session() as session:
            proj, file = _private_file(session, project, filename)
            file.yanked, file.yanked_reason = reason is not None, reason
            proj.serial += 1
            add_entry(session, "yank" if reason is not None else "unyank", proj.name, filename,
                      reason, remote_addr)
            return proj.name

    def deleted(self, filename: str) -> DeletedFile | None:
        """The tombstone of ``filename`` or a variant of it, or None."""
        with self.db.session() as session:
            found = buried(session, filename)
            return DeletedFile(found.filename, found.sha256, found.deleted) if found else None

    def delete_private(self, project: str, filename: str,
                       remote_addr: str | None) -> tuple[str, str, str | None]:
        """Delete a private file's row, audited: its project's name, storage key and
        metadata sha256. NotFound without such a file; Conflict for a cached file."""
        with self.db.session() as session:
            proj, file = _private_file(session, project, filename)
            key, meta = file.storage_key, file.metadata_sha256
            session.delete(file)
            # Its name may come back only with these bytes (lock files pin them).
            bury(session, proj.name, filename, file.sha256)
            proj.serial += 1
            add_entry(session, "delete", proj.name, filename, f"sha256={file.sha256}",
                      remote_addr)
            return proj.name, key, meta

    # Eviction

    def cached_usage(self) -> tuple[int, int]:
        """How many cached upstream files are stored, and their bytes."""
        with self.db.session() as session:
            count, total = session.execute(
                select(func.count(File.id), func.coalesce(func.sum(File.size), 0))
                .where(_CACHED_STORED)).one()
        return int(count), int(total)

    def eviction_order(self) -> list[Any]:
        """Stored cached files, least recently served first (never served first)."""
        with self.db.session() as session:
            # id keeps the order stable.
            return list(session.execute(
                select(File.id, File.filename, File.size, File.storage_key, File.last_served)
                .where(_CACHED_STORED)
                .order_by(File.last_served.is_not(None), File.last_served, File.id)).all())

    def mark_evicted(self, file_id: int, last_served: datetime | None) -> bool:
        """Mark a file not stored, only if nobody served it since ``last_served``."""
        with self.db.session() as session:
            result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(File).where(File.id == file_id, File.stored.is_(True),
                                   (File.last_served.is_(None) if last_served is None
                                    else File.last_served <= last_served))
                .values(stored=False))
            return bool(result.rowcount)

    # Leftovers and prefetch

    def stored_keys(self) -> set[str]:
        """The storage keys stored rows point at."""
        with self.db.session() as session:
            return set(session.scalars(select(File.storage_key).where(File.stored.is_(True))))

    def key_stored(self, key: str) -> bool:
        """Whether a stored row points at ``key``."""
        with self.db.session() as session:
            return session.scalar(select(File.id).where(File.storage_key == key,
                                                        File.stored.is_(True))) is not None

    def stored_sizes(self, filenames: Iterable[str]) -> dict[str, int]:
        """The size of each of ``filenames`` that is stored."""
        with self.db.session() as session:
            return dict(session.execute(select(File.filename, File.size)
                                        .where(File.filename.in_(list(filenames)), File.stored))
                        .tuples().all())


_CACHED_STORED = (File.origin == ORIGIN_CACHED) & File.stored.is_(True)


def _private_file(session: Session, project: str, filename: str) -> tuple[Project, File]:
    row = session.execute(select(Project, File).join(File.project)
                          .where(File.filename == filename, Project.name == project)).first()
    if row is None:
        raise NotFound(f"no file {filename!r} in project {project!r}")
    proj, file = row
    if file.origin != ORIGIN_UPLOADED:
        raise Conflict(f"{filename} is cached from upstream; only uploaded files can be "
                       "yanked or deleted")
    return proj, file


def _taken(session: Session, filename: str) -> bool:
    return session.scalar(select(File.id).where(File.filename == filename)) is not None


def _filenames_of(session: Session, project: str) -> list[str]:
    return list(session.scalars(select(File.filename).join(Project)
                                .where(Project.name == project)))
