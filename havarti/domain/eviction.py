"""Eviction: keep cached upstream files within CACHE_MAX_SIZE, least recently served first.

Only cached files (``origin = cached``) are ever evicted; private uploads never
are. An evicted file keeps its row with ``stored = False``: its page still lists
it and the next request fetches it from upstream again. The row is marked before
the object is deleted, so no row ever points at a missing object; a lease (the
same one the downloader takes) keeps eviction and a re-fetch of one file apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from havarti.domain.coordination import Leases, file_lease
from havarti.domain.ports import EvictableFiles
from havarti.storage import Storage, StorageError

if TYPE_CHECKING:
    from havarti.domain.index import PackageIndex

log = logging.getLogger(__name__)

LEASE_SECONDS = 60


@dataclass
class Evicted:
    """A file an eviction pass removed (or would remove)."""

    filename: str
    size: int
    last_served: datetime | None


@dataclass
class EvictionReport:
    """What an eviction pass found and removed (or would remove, on a dry run)."""

    max_size: int
    cached_files: int
    cached_bytes: int
    dry_run: bool
    evicted: list[Evicted] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def evicted_bytes(self) -> int:
        """Bytes of the files evicted."""
        return sum(e.size for e in self.evicted)

    def summary(self) -> str:
        """The report in one line, for the CLI and the job's result."""
        verb = "would evict" if self.dry_run else "evicted"
        left = self.cached_bytes - self.evicted_bytes
        line = (f"{verb} {len(self.evicted)} of {self.cached_files} cached files "
                f"({human(self.evicted_bytes)}); cached files "
                f"{'would ' if self.dry_run else ''}occupy {human(left)} of {human(self.max_size)}")
        if self.skipped:
            line += f"; {len(self.skipped)} skipped (being downloaded or already gone)"
        return line


def human(size: int) -> str:
    """``size`` bytes in decimal units (kB, MB, ...)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def evict(files: EvictableFiles, leases: Leases, storage: Storage, max_size: int,
          dry_run: bool = False) -> EvictionReport:
    """Evict least recently served cached files until they occupy at most ``max_size`` bytes."""
    count, total = files.cached_usage()
    report = EvictionReport(max_size, count, total, dry_run)
    if total <= max_size:
        return report
    rows = files.eviction_order()
    excess = total - max_size
    for row in rows:
        if report.evicted_bytes >= excess:
            break
        if dry_run:
            report.evicted.append(Evicted(row.filename, row.size, row.last_served))
            continue
        if _evict_one(files, leases, storage, row.id, row.filename, row.storage_key,
                      row.last_served):
            report.evicted.append(Evicted(row.filename, row.size, row.last_served))
            log.info("evicted file=%s bytes=%d", row.filename, row.size)
        else:
            report.skipped.append(row.filename)
    return report


def _evict_one(files: EvictableFiles, leases: Leases, storage: Storage, file_id: int, filename: str,
               key: str, last_served: datetime | None) -> bool:
    with leases.held(file_lease(filename), LEASE_SECONDS) as mine:
        # Only if nobody served it since we looked: a file just served is not least recent.
        if not mine or not files.mark_evicted(file_id, last_served):
            return False
        try:
            storage.delete(key)
        except StorageError as exc:
            # The row already says "not stored": a leftover object only costs space.
            log.warning("evict-delete-failed file=%s reason=%s", filename, exc)
        return True


def run_eviction(index: PackageIndex, dry_run: bool = False,
                 max_size: int | None = None) -> EvictionReport | None:
    """One eviction pass with the index's CACHE_MAX_SIZE (or ``max_size``); None when unbounded.

    The downloader runs this after caching files (the ``evict`` job); ``havarti gc`` on demand.
    """
    bound = max_size if max_size is not None else index.settings.cache_max_size
    if bound is None:
        return None
    return evict(index.files, index.leases, index.storage, bound, dry_run)
