"""Leftovers of killed processes: partial writes, download spools, objects with no row.

A process killed mid-upload leaves a partial write (``files/.tmp/w-*`` in local
storage), one killed mid-download its spool (``spool/dl-*``), and one killed
between storing an object and committing its row an object nothing points at.
Start-up and ``havarti gc`` remove those older than ``LEFTOVER_GRACE``: anything
younger may belong to a process still at work (spools and partial writes are
written continuously, and a row follows its object within seconds).

Core metadata objects (``*.metadata``) are a cache of their own, kept without a
row for upstream files not fetched yet: they are never taken for leftovers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from havarti.domain.coordination import Leases
from havarti.domain.fetch import SPOOL_PREFIX
from havarti.domain.ports import FileStore
from havarti.storage import Storage

log = logging.getLogger(__name__)

LEFTOVER_GRACE = timedelta(hours=1)
#: Start-up sweeps of storage happen at most this often per database (a lease never released).
SWEEP_LEASE = "leftovers:objects"


@dataclass
class LeftoversReport:
    """What a sweep for leftovers removed (or, on a dry run, found)."""

    dry_run: bool
    #: (what, bytes) of each leftover removed (or, on a dry run, found).
    removed: list[tuple[str, int]] = field(default_factory=list)

    def summary(self) -> str:
        """The report in one line."""
        verb = "would remove" if self.dry_run else "removed"
        total = sum(size for _, size in self.removed)
        return f"{verb} {len(self.removed)} leftovers ({total:,} bytes) older than the grace period"


def remove_local_leftovers(storage: Storage, spool_dir: Path, grace: timedelta = LEFTOVER_GRACE,
                           dry_run: bool = False) -> LeftoversReport:
    """Partial writes and download spools on this machine (quick: run at every start)."""
    cutoff = datetime.now(UTC) - grace
    report = LeftoversReport(dry_run)
    report.removed += [(f"partial write {name}", size)
                       for name, size in storage.remove_temporaries(cutoff, dry_run)]
    for path in spool_dir.glob(f"{SPOOL_PREFIX}*") if spool_dir.is_dir() else ():
        try:
            stat = path.stat()
            if datetime.fromtimestamp(stat.st_mtime, UTC) >= cutoff:
                continue
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        report.removed.append((f"download spool {path.name}", stat.st_size))
    _log(report)
    return report


def remove_orphan_objects(files: FileStore, storage: Storage, grace: timedelta = LEFTOVER_GRACE,
                          dry_run: bool = False) -> LeftoversReport:
    """Stored distribution objects that no stored row points at, older than ``grace``."""
    cutoff = datetime.now(UTC) - grace
    report = LeftoversReport(dry_run)
    # Rows first, objects second: an object stored after this query is younger than the cutoff.
    referenced = files.stored_keys()
    for item in storage.objects():
        if (item.key in referenced or item.key.endswith(".metadata")
                or item.modified is None or item.modified >= cutoff):
            continue
        if files.key_stored(item.key):
            continue  # a row came meanwhile
        if not dry_run:
            storage.delete(item.key)
        report.removed.append((f"object with no row {item.key}", item.size))
    _log(report)
    return report


def sweep_at_start(files: FileStore, leases: Leases, storage: Storage) -> str:
    """The storage sweep a process runs after start, at most once per LEFTOVER_GRACE overall.

    Listing a large bucket takes a while, so it runs as a job, not before serving.
    """
    if not leases.acquire(SWEEP_LEASE, LEFTOVER_GRACE.total_seconds()):
        return "leftovers: swept recently"
    return remove_orphan_objects(files, storage).summary()


def _log(report: LeftoversReport) -> None:
    if report.dry_run:
        return
    for what, size in report.removed:
        log.info("leftover-removed what=%r bytes=%d", what, size)
