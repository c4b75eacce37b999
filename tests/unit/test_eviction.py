"""Eviction with the files table faked in memory: least recently served cached files go."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from havarti.domain.coordination import Leases, file_lease
from havarti.domain.eviction import evict
from havarti.storage import storage_key
from havarti.storage.local import LocalStorage
from tests.unit.fakes import FakeCachedFiles, FakeLeaseStore

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def cache(files: FakeCachedFiles, storage: LocalStorage, filename: str, size: int,
          served: datetime | None) -> str:
    key = storage_key(f"{len(files.rows):064x}", filename)
    storage.write(key, io.BytesIO(b"x" * size), size)
    files.add(filename, size, key, served)
    return key


def test_least_recently_served_go_first_until_under_the_bound(tmp_path: Path) -> None:
    files, storage = FakeCachedFiles(), LocalStorage(tmp_path / "files")
    never = cache(files, storage, "never-1.0.tar.gz", 100, None)
    old = cache(files, storage, "old-1.0.tar.gz", 100, NOW - timedelta(days=9))
    recent = cache(files, storage, "recent-1.0.tar.gz", 100, NOW - timedelta(minutes=1))

    report = evict(files, Leases(FakeLeaseStore()), storage, max_size=150)

    assert [e.filename for e in report.evicted] == ["never-1.0.tar.gz", "old-1.0.tar.gz"]
    assert files.cached_usage() == (1, 100)
    assert not storage.exists(never) and not storage.exists(old) and storage.exists(recent)


def test_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    files, storage = FakeCachedFiles(), LocalStorage(tmp_path / "files")
    key = cache(files, storage, "kept-1.0.tar.gz", 100, None)
    report = evict(files, Leases(FakeLeaseStore()), storage, max_size=10, dry_run=True)
    assert [e.filename for e in report.evicted] == ["kept-1.0.tar.gz"]
    assert files.cached_usage() == (1, 100) and storage.exists(key)
    assert report.summary().startswith("would evict 1 of 1 cached files")


def test_a_file_being_downloaded_is_skipped(tmp_path: Path) -> None:
    files, storage = FakeCachedFiles(), LocalStorage(tmp_path / "files")
    key = cache(files, storage, "busy-1.0.tar.gz", 100, None)
    leases = FakeLeaseStore()
    # Its downloader, a live process elsewhere, holds the file's lease.
    leases.insert(file_lease("busy-1.0.tar.gz"), "elsewhere/1|1|remote00",
                  datetime.now(UTC) + timedelta(minutes=1))
    report = evict(files, Leases(leases), storage, max_size=10)
    assert report.evicted == [] and report.skipped == ["busy-1.0.tar.gz"]
    assert storage.exists(key)
