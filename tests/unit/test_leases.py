"""Leases: a per-process holder, broken at once when its process on this host is gone."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from havarti.db import Database
from havarti.db.leases import LeaseTable
from havarti.domain import coordination as leases
from havarti.domain.coordination import Leases
from havarti.domain.ports import LeaseStore
from tests.unit.fakes import FakeLeaseStore

KEY = "file:demo-1.0.tar.gz"


@pytest.fixture(params=["fake", "table"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseStore]:
    """The in-memory fake and the real table: the same rules hold for both."""
    if request.param == "fake":
        yield FakeLeaseStore()
        return
    db = Database(f"sqlite:///{tmp_path / 'leases.db'}")
    db.upgrade()
    yield LeaseTable(db)
    db.dispose()


def hold(store: LeaseStore, holder: str, seconds: float = 30) -> None:
    assert store.insert(KEY, holder, datetime.now(UTC) + timedelta(seconds=seconds))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _report_holder(queue: multiprocessing.Queue) -> None:
    queue.put(leases.holder())


def test_each_process_has_its_own_holder_even_after_a_fork():
    mine = leases.holder()
    assert mine == leases.holder()
    assert f"|{os.getpid()}|" in mine and mine.startswith(leases.this_host())
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_report_holder, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join()
    assert theirs != mine and f"|{child.pid}|" in theirs


def test_a_lease_of_a_process_gone_from_this_host_is_broken_at_once(store):
    hold(store, f"{leases.this_host()}|{dead_pid()}|deadbeef")
    assert Leases(store).acquire(KEY, 30)
    assert store.holder(KEY) == leases.holder()


def test_a_killed_child_not_yet_reaped_counts_as_gone(store):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while not leases._zombie(zombie.pid):  # exited, and we do not wait() for it yet
            assert time.monotonic() < deadline
            time.sleep(0.01)
        hold(store, f"{leases.this_host()}|{zombie.pid}|deadbeef")
        assert Leases(store).acquire(KEY, 30)
    finally:
        zombie.wait()


def test_an_earlier_process_with_our_pid_is_gone(store):
    hold(store, f"{leases.this_host()}|{os.getpid()}|0ldpr0c")
    assert Leases(store).acquire(KEY, 30)


def test_a_live_holder_keeps_its_lease(store):
    hold(store, f"{leases.this_host()}|{os.getppid()}|parent00")
    assert not Leases(store).acquire(KEY, 30)
    assert store.holder(KEY) != leases.holder()


def test_another_hosts_lease_ends_only_by_expiry(store):
    # Its pid means nothing here, even one that is dead here.
    remote = f"elsewhere/4026531836|{dead_pid()}|remote00"
    hold(store, remote, seconds=30)
    assert not Leases(store).acquire(KEY, 30)
    store.extend(KEY, remote, datetime.now(UTC) - timedelta(seconds=1))
    assert Leases(store).acquire(KEY, 30)


def test_renew_and_release_touch_only_our_own_lease(store):
    parent = f"{leases.this_host()}|{os.getppid()}|parent00"
    hold(store, parent)
    Leases(store).release(KEY)
    assert store.holder(KEY) == parent
    store.delete(KEY, parent)
    assert Leases(store).acquire(KEY, 30)
    Leases(store).renew(KEY, 60)
    Leases(store).release(KEY)
    assert store.holder(KEY) is None
