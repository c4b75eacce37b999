"""Coordination between threads and processes: leases, their holders, download states.

A lease is a short claim on work (a file's download or eviction, a sweep),
shared through the database by every process of an installation.

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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum

from havarti.domain.ports import LeaseStore

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


class DownloadState(Enum):
    """Where one download of a file stands, as its readers see it."""

    RUNNING = "running"
    #: Verified and stored by this process.
    DONE = "done"
    FAILED = "failed"
    #: Another process stored it (or a stored row was found): read from storage.
    ELSEWHERE = "elsewhere"


def file_lease(filename: str) -> str:
    """The lease a file's downloader holds, and its evictor, so they never overlap."""
    return f"file:{filename}"


class Leases:
    """Take, renew and release leases as this process's holder."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store

    def acquire(self, key: str, seconds: float) -> bool:
        """Take the lease ``key`` for ``seconds``; False while someone alive holds it."""
        now = datetime.now(UTC)
        self.store.drop_expired(key, now)
        for _ in range(2):
            if self.store.insert(key, holder(), now + timedelta(seconds=seconds)):
                return True
            if not self._break_if_gone(key):
                return False
        return False

    def _break_if_gone(self, key: str) -> bool:
        """Delete ``key``'s lease when its holder is a dead process here; True to try again."""
        current = self.store.holder(key)
        if current is None:
            return True  # released meanwhile
        if not holder_gone(current):
            return False
        self.store.delete(key, current)
        log.warning("lease-broken key=%r holder=%r reason=its process is gone", key, current)
        return True

    def renew(self, key: str, seconds: float) -> None:
        """Extend this process's lease ``key`` by ``seconds`` from now."""
        self.store.extend(key, holder(), datetime.now(UTC) + timedelta(seconds=seconds))

    def release(self, key: str) -> None:
        """Give up this process's lease ``key`` (nothing when another holds it)."""
        self.store.delete(key, holder())

    @contextmanager
    def held(self, key: str, seconds: float) -> Iterator[bool]:
        """Hold ``key`` for the block when it can be taken; yields whether it was."""
        if not self.acquire(key, seconds):
            yield False
            return
        try:
            yield True
        finally:
            self.release(key)
