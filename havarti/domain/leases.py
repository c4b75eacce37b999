"""Leases: short claims on work (a file's download or eviction), shared through the database.

A lease row names its holder: ``<hostname>/<pid namespace>|<pid>|<nonce>``, computed
once per process on first use (a gunicorn child forked from a ``--preload``ed parent
gets its own). A lease ends when its holder releases it or when it expires; and a
lease whose holder was a process on this same host that is gone (killed with
SIGKILL, say) is broken at once instead of making everyone wait for the expiry.
On other hosts nothing can be known of the holder, so its lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from havarti.db import Database
from havarti.db.models import Lease

log = logging.getLogger(__name__)

_holder: tuple[int, str] | None = None


def this_host() -> str:
    """This machine, as far as process ids mean anything: hostname and pid namespace."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}/{namespace}"


def holder() -> str:
    """This process's holder id, made on first use in each process."""
    global _holder
    pid = os.getpid()
    current = _holder
    if current is None or current[0] != pid:
        current = _holder = (pid, f"{this_host()}|{pid}|{uuid.uuid4().hex[:8]}")
    return current[1]


def holder_gone(name: str) -> bool:
    """True when ``name`` was a process on this host that no longer runs."""
    parts = name.rsplit("|", 2)
    if len(parts) != 3 or parts[0] != this_host() or not parts[1].isdigit():
        return False  # another host (or an older format): only expiry tells
    pid = int(parts[1])
    if pid == os.getpid():
        return name != holder()  # an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, someone else's
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def acquire(db: Database, key: str, seconds: float) -> bool:
    """Take the lease ``key`` for ``seconds``; False while someone alive holds it."""
    now = datetime.now(UTC)
    with db.session() as session:
        session.execute(delete(Lease).where(Lease.key == key, Lease.expires < now))
    for _ in range(2):
        try:
            with db.session() as session:
                session.add(Lease(key=key, holder=holder(),
                                  expires=now + timedelta(seconds=seconds)))
            return True
        except IntegrityError:
            if not _break_if_gone(db, key):
                return False
    return False


def _break_if_gone(db: Database, key: str) -> bool:
    """Delete ``key``'s lease when its holder is a dead process here; True to try again."""
    with db.session() as session:
        current = session.scalar(select(Lease.holder).where(Lease.key == key))
        if current is None:
            return True  # released meanwhile
        if not holder_gone(current):
            return False
        session.execute(delete(Lease).where(Lease.key == key, Lease.holder == current))
    log.warning("lease-broken key=%r holder=%r reason=its process is gone", key, current)
    return True


def renew(db: Database, key: str, seconds: float) -> None:
    with db.session() as session:
        session.execute(update(Lease).where(Lease.key == key, Lease.holder == holder())
                        .values(expires=datetime.now(UTC) + timedelta(seconds=seconds)))


def release(db: Database, key: str) -> None:
    with db.session() as session:
        session.execute(delete(Lease).where(Lease.key == key, Lease.holder == holder()))
