"""The upstream pages table: every query about stored upstream project pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from havarti.db import Database, unless_full
from havarti.db.models import UpstreamPage
from havarti.records import StoredPageRow


class UpstreamPages:
    """Upstream project pages as Havarti stored them: files, rendering, validators."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, name: str) -> StoredPageRow | None:
        """The stored page's validators and digest (not its files), or None."""
        with self.db.session() as session:
            row = session.execute(
                select(UpstreamPage.id, UpstreamPage.etag, UpstreamPage.last_modified,
                       UpstreamPage.digest, UpstreamPage.fetched, UpstreamPage.checked,
                       UpstreamPage.size)
                .where(UpstreamPage.name == name)).first()
        if row is None:
            return None
        return StoredPageRow(row.id, row.etag, row.last_modified, row.digest, row.fetched,
                             row.checked, row.size)

    def data(self, row_id: int) -> str:
        """The stored files (records.dump_files)."""
        with self.db.session() as session:
            return session.scalar(select(UpstreamPage.data)
                                  .where(UpstreamPage.id == row_id)) or "[]"

    def rendered(self, row_id: int) -> str | None:
        """The stored rendering, prefixed by the digest of the page it was made from."""
        with self.db.session() as session:
            return session.scalar(select(UpstreamPage.rendered).where(UpstreamPage.id == row_id))

    def touch(self, name: str, etag: str | None, last_modified: str | None) -> None:
        """Upstream confirmed the stored page now."""
        with self.db.session() as session:
            session.execute(update(UpstreamPage).where(UpstreamPage.name == name).values(
                checked=datetime.now(UTC), etag=etag, last_modified=last_modified))

    def store(self, name: str, values: Mapping[str, object]) -> int:
        """Write the page's row (one transaction); its id."""
        now = datetime.now(UTC)
        for attempt in range(2):
            try:
                with self.db.session() as session:
                    row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
                    if row is None:
                        row = UpstreamPage(name=name)
                        session.add(row)
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.fetched = row.checked = now
                    session.flush()
                    row_id = row.id
                return row_id
            except IntegrityError:
                # Another process inserted the row at the same moment: update theirs.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def forget(self, name: str) -> None:
        """Delete the stored page (upstream says the project is gone); skipped on a full disk."""
        with unless_full("forgotten upstream page"), self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            if row is not None:
                session.delete(row)
