"""The leases table: the queries behind havarti.domain.coordination.Leases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from havarti.db import Database
from havarti.db.models import Lease


class LeaseTable:
    """Lease rows in the database, shared by every process of an installation."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def drop_expired(self, key: str, now: datetime) -> None:
        with self.db.session() as session:
            session.execute(delete(Lease).where(Lease.key == key, Lease.expires < now))

    def insert(self, key: str, holder: str, expires: datetime) -> bool:
        """Add the row; False when ``key`` is held already."""
        try:
            with self.db.session() as session:
                session.add(Lease(key=key, holder=holder, expires=expires))
            return True
        except IntegrityError:
            return False

    def holder(self, key: str) -> str | None:
        with self.db.session() as session:
            return session.scalar(select(Lease.holder).where(Lease.key == key))

    def delete(self, key: str, holder: str) -> None:
        with self.db.session() as session:
            session.execute(delete(Lease).where(Lease.key == key, Lease.holder == holder))

    def extend(self, key: str, holder: str, expires: datetime) -> None:
        with self.db.session() as session:
            session.execute(update(Lease).where(Lease.key == key, Lease.holder == holder)
                            .values(expires=expires))
