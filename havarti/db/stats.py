"""The daily_stats table: download counters per day, project and kind."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from havarti.db import Database
from havarti.db.models import ORIGIN_UPLOADED, DailyCount, File


class DailyCounts:
    """Download counters, and what the stats page totals over them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, batch: Mapping[tuple[str, str, str], tuple[int, int] | list[int]]) -> None:
        """Add ``(day, project, kind) -> (count, bytes)`` to the stored totals, in one transaction."""
        with self.db.session() as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            for (day, project, kind), (count, size) in batch.items():
                statement = insert(DailyCount).values(day=day, project=project, kind=kind,
                                                      count=count, bytes=size)
                session.execute(statement.on_conflict_do_update(
                    index_elements=["day", "project", "kind"],
                    set_={"count": DailyCount.count + count, "bytes": DailyCount.bytes + size}))

    def per_day(self, first: date) -> list[tuple[str, str, int, int]]:
        """(day, kind, count, bytes) totals from ``first`` on."""
        with self.db.session() as session:
            return [(d, k, int(n or 0), int(b or 0)) for d, k, n, b in session.execute(
                select(DailyCount.day, DailyCount.kind, func.sum(DailyCount.count),
                       func.sum(DailyCount.bytes))
                .where(DailyCount.day >= first.isoformat())
                .group_by(DailyCount.day, DailyCount.kind)).all()]

    def top_projects(self, first: date, kind: str, limit: int,
                     kinds: tuple[str, ...] | None = None) -> list[tuple[str, int, int, int]]:
        """(project, counts, counts of ``kind``, bytes) from ``first`` on, of the ``kinds``
        given (default: all), highest count first."""
        with self.db.session() as session:
            of_kind = func.sum(DailyCount.count).filter(DailyCount.kind == kind)
            counted = (DailyCount.kind.in_(kinds),) if kinds is not None else ()
            return [(p, int(n or 0), int(h or 0), int(b or 0)) for p, n, h, b in session.execute(
                select(DailyCount.project, func.sum(DailyCount.count), of_kind,
                       func.sum(DailyCount.bytes))
                .where(DailyCount.day >= first.isoformat(), *counted)
                .group_by(DailyCount.project)
                .order_by(func.sum(DailyCount.count).desc(), DailyCount.project)
                .limit(limit)).all()]

    def stored_by_origin(self) -> dict[bool, tuple[int, int]]:
        """Stored files and bytes: private (True) and cached (False)."""
        with self.db.session() as session:
            storage = session.execute(
                select(File.origin, func.count(), func.coalesce(func.sum(File.size), 0))
                .where(File.stored.is_(True)).group_by(File.origin)).all()
        by_origin = {True: (0, 0), False: (0, 0)}
        for origin, n, size in storage:
            files, total = by_origin[origin == ORIGIN_UPLOADED]
            by_origin[origin == ORIGIN_UPLOADED] = (files + int(n), total + int(size))
        return by_origin
