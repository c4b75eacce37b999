"""Managing private files: yank, unyank (PEP 592) and delete, each written to the audit log.

Every change bumps the project's serial, so every worker's cached simple page
is rebuilt on the next request. Only uploaded (private) files can be managed:
cached files mirror upstream, which decides about them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from havarti.db import Database
from havarti.db.models import ORIGIN_UPLOADED, AuditLog, File, Project
from havarti.db.tombstones import bury
from havarti.domain.distributions import normalized
from havarti.domain.text import checked
from havarti.errors import Conflict, NotFound
from havarti.storage import Storage, StorageError, metadata_key

log = logging.getLogger(__name__)

MAX_REASON = 500


@dataclass(frozen=True)
class FileState:
    """A private file after a change, as the JSON API reports it."""

    project: str
    filename: str
    yanked: bool
    yanked_reason: str | None
    deleted: bool = False

    def as_json(self) -> dict:
        return {"project": self.project, "filename": self.filename, "yanked": self.yanked,
                "yanked_reason": self.yanked_reason, "deleted": self.deleted}


@dataclass(frozen=True)
class AuditEntry:
    time: datetime
    remote_addr: str | None
    action: str
    project: str
    filename: str | None
    detail: str | None


def _private_file(session: Session, project: str, filename: str) -> tuple[Project, File]:
    canonical = normalized(project)
    row = session.execute(select(Project, File).join(File.project)
                          .where(File.filename == filename, Project.name == canonical)).first()
    if row is None:
        raise NotFound(f"no file {filename!r} in project {canonical!r}")
    proj, file = row
    if file.origin != ORIGIN_UPLOADED:
        raise Conflict(f"{filename} is cached from upstream; only uploaded files can be "
                       "yanked or deleted")
    return proj, file


def _audit(session: Session, action: str, project: str, filename: str, detail: str | None,
           remote_addr: str | None) -> None:
    session.add(AuditLog(action=action, project=project, filename=filename, detail=detail,
                         remote_addr=remote_addr))
    log.info("manage action=%s project=%s file=%s detail=%r remote=%s", action, project,
             filename, detail or "", remote_addr or "-")


def yank(db: Database, project: str, filename: str, reason: str = "",
         remote_addr: str | None = None) -> FileState:
    """Mark a private file yanked (PEP 592) with ``reason``; yanking again updates the reason."""
    reason = checked("the reason", " ".join(reason.split()), MAX_REASON)
    return _set_yanked(db, project, filename, reason, remote_addr)


def unyank(db: Database, project: str, filename: str, remote_addr: str | None = None) -> FileState:
    """Make a yanked private file installable again."""
    return _set_yanked(db, project, filename, None, remote_addr)


def _set_yanked(db: Database, project: str, filename: str, reason: str | None,
                remote_addr: str | None) -> FileState:
    """Yank with ``reason``, or unyank when it is None."""
    with db.session() as session:
        proj, file = _private_file(session, project, filename)
        file.yanked, file.yanked_reason = reason is not None, reason
        proj.serial += 1
        _audit(session, "yank" if reason is not None else "unyank", proj.name, filename, reason,
               remote_addr)
        return FileState(proj.name, filename, reason is not None, reason)


def delete(db: Database, storage: Storage, project: str, filename: str,
           remote_addr: str | None = None) -> FileState:
    """Remove a private file: its row first, then its stored objects.

    The project stays private even with no file left, so it keeps shadowing
    the public project of the same name (dependency-confusion protection).
    A tombstone keeps the filename's sha256: it may be uploaded again only
    with the same bytes.
    """
    with db.session() as session:
        proj, file = _private_file(session, project, filename)
        key, meta = file.storage_key, file.metadata_sha256
        session.delete(file)
        # Its name may come back only with these bytes (lock files pin them).
        bury(session, proj.name, filename, file.sha256)
        proj.serial += 1
        _audit(session, "delete", proj.name, filename, f"sha256={file.sha256}", remote_addr)
    with db.session() as session:
        in_use = session.scalar(select(File.id).where(File.storage_key == key).limit(1))
    keys = [] if in_use is not None else [key]
    if meta:
        keys.append(metadata_key(meta, filename))
    for stored in keys:
        try:
            storage.delete(stored)
        except (StorageError, FileNotFoundError) as exc:
            # The row is gone, so the file is no longer offered; a stray object costs only space.
            log.warning("manage-delete-object-failed key=%s reason=%s", stored, exc)
    return FileState(proj.name, filename, False, None, deleted=True)


def audit_log(db: Database, project: str | None = None, limit: int = 50) -> list[AuditEntry]:
    """The newest changes first, for one project or all."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if project is not None:
        query = query.where(AuditLog.project == normalized(project))
    with db.session() as session:
        return [AuditEntry(a.time, a.remote_addr, a.action, a.project, a.filename, a.detail)
                for a in session.scalars(query)]
