"""The audit log table: who changed which private file, and how."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from havarti.db import Database
from havarti.db.models import AuditLog
from havarti.records import AuditEntry

log = logging.getLogger(__name__)


def add_entry(session: Session, action: str, project: str, filename: str, detail: str | None,
              remote_addr: str | None) -> None:
    """Write an entry in the transaction of the change it records."""
    session.add(AuditLog(action=action, project=project, filename=filename, detail=detail,
                         remote_addr=remote_addr))
    log.info("manage action=%s project=%s file=%s detail=%r remote=%s", action, project,
             filename, detail or "", remote_addr or "-")


class AuditTrail:
    """Reads the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def entries(self, project: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest changes first, for one project (canonical) or all."""
        query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if project is not None:
            query = query.where(AuditLog.project == project)
        with self.db.session() as session:
            return [AuditEntry(a.time, a.remote_addr, a.action, a.project, a.filename, a.detail)
                    for a in session.scalars(query)]
