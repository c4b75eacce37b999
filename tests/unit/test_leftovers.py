"""Leftovers of killed processes: removed once older than the grace period, never before."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from havarti.db import Database
from havarti.db.files import Files
from havarti.db.models import ORIGIN_CACHED, File
from havarti.db.projects import get_or_create_project
from havarti.domain.leftovers import remove_local_leftovers, remove_orphan_objects
from havarti.storage import metadata_key, storage_key
from havarti.storage.local import LocalStorage

HOUR = 3600


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


def aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def put(storage: LocalStorage, key: str, age: float) -> Path:
    storage.write(key, io.BytesIO(b"bytes"), 5)
    return aged(storage.root / key, age)


def add_row(db: Database, filename: str, key: str, stored: bool = True) -> None:
    with db.session() as session:
        project = get_or_create_project(session, "demo")
        session.add(File(project_id=project.id, filename=filename, version="1.0",
                         packagetype="sdist", size=5, sha256="0" * 64, origin=ORIGIN_CACHED,
                         storage_key=key, stored=stored))


def test_partial_writes_and_spools_older_than_the_grace_period_go(storage, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    storage.tmp.mkdir(parents=True)
    old_write = storage.tmp / "w-killed"
    old_write.write_bytes(b"x" * 100)
    aged(old_write, 2 * HOUR)
    young_write = storage.tmp / "w-running"
    young_write.write_bytes(b"x")
    old_spool = spool / "dl-killed"
    old_spool.write_bytes(b"y" * 50)
    aged(old_spool, 2 * HOUR)
    young_spool = spool / "dl-running"
    young_spool.write_bytes(b"y")
    other = spool / "notes.txt"
    other.write_bytes(b"")
    aged(other, 2 * HOUR)

    dry = remove_local_leftovers(storage, spool, dry_run=True)
    assert sorted(size for _, size in dry.removed) == [50, 100]
    assert old_write.exists() and old_spool.exists()

    report = remove_local_leftovers(storage, spool)
    assert "removed 2 leftovers (150 bytes)" in report.summary()
    assert not old_write.exists() and not old_spool.exists()
    assert young_write.exists() and young_spool.exists() and other.exists()


def test_objects_no_stored_row_points_at_go_after_the_grace_period(db, storage):
    orphan = put(storage, storage_key("a" * 64, "orphan-1.0.tar.gz"), 2 * HOUR)
    young = put(storage, storage_key("b" * 64, "young-1.0.tar.gz"), 60)
    held = put(storage, storage_key("c" * 64, "held-1.0.tar.gz"), 2 * HOUR)
    evicted = put(storage, storage_key("d" * 64, "evicted-1.0.tar.gz"), 2 * HOUR)
    metadata = put(storage, metadata_key("e" * 64, "meta-1.0-py3-none-any.whl"), 2 * HOUR)
    add_row(db, "held-1.0.tar.gz", storage_key("c" * 64, "held-1.0.tar.gz"))
    # Eviction marks the row first, then deletes: a failed delete leaves this behind.
    add_row(db, "evicted-1.0.tar.gz", storage_key("d" * 64, "evicted-1.0.tar.gz"), stored=False)

    dry = remove_orphan_objects(Files(db), storage, dry_run=True)
    assert len(dry.removed) == 2 and orphan.exists()

    report = remove_orphan_objects(Files(db), storage)
    assert sorted(what for what, _ in report.removed) == [
        f"object with no row {storage_key('a' * 64, 'orphan-1.0.tar.gz')}",
        f"object with no row {storage_key('d' * 64, 'evicted-1.0.tar.gz')}"]
    assert not orphan.exists() and not evicted.exists()
    assert young.exists() and held.exists() and metadata.exists()


def test_a_shorter_grace_period_takes_younger_leftovers(db, storage):
    young = put(storage, storage_key("b" * 64, "young-1.0.tar.gz"), 120)
    remove_orphan_objects(Files(db), storage, grace=timedelta(minutes=5))
    assert young.exists()
    remove_orphan_objects(Files(db), storage, grace=timedelta(minutes=1))
    assert not young.exists()
