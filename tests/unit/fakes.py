"""In-memory fakes of the domain's persistence interfaces (havarti/domain/ports.py).

They keep state the way the database would, so unit tests check outcomes (what
is held, what was evicted), not calls. tests/unit/test_leases.py runs the same
checks against the fake and the real table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class FakeLeaseStore:
    """havarti.db.leases.LeaseTable, in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, datetime]] = {}

    def drop_expired(self, key: str, now: datetime) -> None:
        if key in self.rows and self.rows[key][1] < now:
            del self.rows[key]

    def insert(self, key: str, holder: str, expires: datetime) -> bool:
        if key in self.rows:
            return False
        self.rows[key] = (holder, expires)
        return True

    def holder(self, key: str) -> str | None:
        return self.rows[key][0] if key in self.rows else None

    def delete(self, key: str, holder: str) -> None:
        if self.holder(key) == holder:
            del self.rows[key]

    def extend(self, key: str, holder: str, expires: datetime) -> None:
        if self.holder(key) == holder:
            self.rows[key] = (holder, expires)


@dataclass
class _Row:
    id: int
    filename: str
    size: int
    storage_key: str
    last_served: datetime | None
    stored: bool = True


class FakeCachedFiles:
    """The eviction side of havarti.db.files.Files: cached upstream files, in a list."""

    def __init__(self) -> None:
        self.rows: list[_Row] = []

    def add(self, filename: str, size: int, storage_key: str,
            last_served: datetime | None) -> None:
        self.rows.append(_Row(len(self.rows) + 1, filename, size, storage_key, last_served))

    def cached_usage(self) -> tuple[int, int]:
        stored = [r for r in self.rows if r.stored]
        return len(stored), sum(r.size for r in stored)

    def eviction_order(self) -> list[Any]:
        stored = [r for r in self.rows if r.stored]
        return sorted(stored, key=lambda r: (r.last_served is not None,
                                             r.last_served or datetime.min, r.id))

    def mark_evicted(self, file_id: int, last_served: datetime | None) -> bool:
        for row in self.rows:
            if row.id == file_id and row.stored and row.last_served == last_served:
                row.stored = False
                return True
        return False

    def stored_keys(self) -> set[str]:
        return {r.storage_key for r in self.rows if r.stored}

    def key_stored(self, key: str) -> bool:
        return key in self.stored_keys()

    def stored_sizes(self, filenames: Iterable[str]) -> dict[str, int]:
        wanted = set(filenames)
        return {r.filename: r.size for r in self.rows if r.stored and r.filename in wanted}
