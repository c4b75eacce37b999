"""Leases: a per-process holder, broken at once when its process on this host is gone."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from havarti.db import Database
from havarti.db.leases import LeaseTable
from havarti.db.models import Lease
from havarti.domain import coordination as leases
from havarti.domain.coordination import Leases

KEY = "file:demo-1.0.tar.gz"


def hold(db: Database, holder: str, seconds: float = 30) -> None:
    with db.session() as session:
        session.add(Lease(key=KEY, holder=holder,
                          expires=datetime.now(UTC) + timedelta(seconds=seconds)))


def holder_of(db: Database) -> str | None:
    with db.session() as session:
        return session.scalar(select(Lease.holder).where(Lease.key == KEY))


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


def test_a_lease_of_a_process_gone_from_this_host_is_broken_at_once(db):
    hold(db, f"{leases.this_host()}|{dead_pid()}|deadbeef")
    assert Leases(LeaseTable(db)).acquire(KEY, 30)
    assert holder_of(db) == leases.holder()


def test_a_killed_child_not_yet_reaped_counts_as_gone(db):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while not leases._zombie(zombie.pid):  # exited, and we do not wait() for it yet
            assert time.monotonic() < deadline
            time.sleep(0.01)
        hold(db, f"{leases.this_host()}|{zombie.pid}|deadbeef")
        assert Leases(LeaseTable(db)).acquire(KEY, 30)
    finally:
        zombie.wait()


def test_an_earlier_process_with_our_pid_is_gone(db):
    hold(db, f"{leases.this_host()}|{os.getpid()}|0ldpr0c")
    assert Leases(LeaseTable(db)).acquire(KEY, 30)


def test_a_live_holder_keeps_its_lease(db):
    hold(db, f"{leases.this_host()}|{os.getppid()}|parent00")
    assert not Leases(LeaseTable(db)).acquire(KEY, 30)
    assert holder_of(db) != leases.holder()


def test_another_hosts_lease_ends_only_by_expiry(db):
    # Its pid means nothing here, even one that is dead here.
    hold(db, f"elsewhere/4026531836|{dead_pid()}|remote00", seconds=30)
    assert not Leases(LeaseTable(db)).acquire(KEY, 30)
    with db.session() as session:
        session.query(Lease).update({Lease.expires: datetime.now(UTC) - timedelta(seconds=1)})
    assert Leases(LeaseTable(db)).acquire(KEY, 30)


def test_renew_and_release_touch_only_our_own_lease(db):
    hold(db, f"{leases.this_host()}|{os.getppid()}|parent00")
    Leases(LeaseTable(db)).release(KEY)
    assert holder_of(db) is not None
    with db.session() as session:
        session.query(Lease).delete()
    assert Leases(LeaseTable(db)).acquire(KEY, 30)
    Leases(LeaseTable(db)).renew(KEY, 60)
    Leases(LeaseTable(db)).release(KEY)
    assert holder_of(db) is None
