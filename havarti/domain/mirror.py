"""The mirror policy for project pages, in one place.

- Revalidate with upstream on every request (ETag / Last-Modified), or trust
  the stored page for INDEX_TTL seconds.
- One upstream request per project at a time in a process: concurrent
  requests wait for it and share its answer.
- Upstream fails (refused, timeout, 5xx, garbage): serve the last stored page,
  marked stale. Never seen: raise UpstreamError.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from havarti.db import Database
from havarti.db.models import UpstreamPage
from havarti.errors import UpstreamError, UpstreamNotFound
from havarti.upstream.client import UpstreamClient, UpstreamFile, dump_files, load_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamState:
    """What Havarti knows of a project upstream."""

    files: tuple[UpstreamFile, ...]
    #: Changes whenever the files change: part of the rendered page's cache key.
    token: str
    stale: bool = False
    checked_at: float = 0.0

    def file(self, filename: str) -> UpstreamFile | None:
        for f in self.files:
            if f.filename == filename:
                return f
        return None


class Mirror:
    def __init__(self, db: Database, upstream: UpstreamClient, index_ttl: int) -> None:
        self.db = db
        self.upstream = upstream
        self.index_ttl = index_ttl
        self._states: dict[str, UpstreamState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = threading.Lock()
            return lock

    def state(self, name: str, revalidate: bool = True) -> UpstreamState:
        """The project's upstream files, fresh per the policy above.

        ``revalidate=False`` takes any stored page without asking upstream (for
        file requests: the page the client just saw names the file).
        Raises UpstreamNotFound, or UpstreamError when nothing is stored.
        """
        started = time.monotonic()
        cached = self._states.get(name)
        if cached is not None and (not revalidate or self._fresh(cached, started)):
            return cached
        with self._lock(name):
            cached = self._states.get(name)
            # Someone else revalidated while we waited for the lock: share that answer.
            if cached is not None and (cached.checked_at >= started or not revalidate
                                       or self._fresh(cached, started)):
                return cached
            return self._refresh(name, cached, revalidate)

    def _fresh(self, state: UpstreamState, now: float) -> bool:
        return not state.stale and self.index_ttl > 0 and now - state.checked_at < self.index_ttl

    def _refresh(self, name: str, cached: UpstreamState | None, revalidate: bool) -> UpstreamState:
        with self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            stored = None if row is None else (row.etag, row.last_modified, row.data, row.id,
                                               row.checked)
        if stored is not None and (not revalidate or self._db_fresh(stored[4])):
            state = self._from_row(stored, time.monotonic(), stale=False)
            self._states[name] = state
            return state
        try:
            result = self.upstream.fetch_project(
                name, etag=stored[0] if stored else None, last_modified=stored[1] if stored else None)
        except UpstreamNotFound:
            self._forget(name)
            raise
        except UpstreamError as exc:
            if stored is None:
                raise
            log.warning("upstream-stale project=%s reason=%s", name, exc)
            state = self._from_row(stored, time.monotonic(), stale=True)
            self._states[name] = state
            return state
        now = time.monotonic()
        with self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            if result.files is None and row is not None:
                row.checked = datetime.now(UTC)
                data, row_id = row.data, row.id
                if cached is not None and not cached.stale and cached.token.startswith(f"{row_id}:"):
                    state = UpstreamState(cached.files, cached.token, False, now)
                    self._states[name] = state
                    return state
                state = self._from_row((row.etag, row.last_modified, data, row_id, row.checked), now,
                                       stale=False)
            else:
                files = result.files or []
                if row is None:
                    row = UpstreamPage(name=name, data="[]")
                    session.add(row)
                row.data = dump_files(files)
                row.etag = result.etag
                row.last_modified = result.last_modified
                row.fetched = row.checked = datetime.now(UTC)
                session.flush()
                state = UpstreamState(tuple(files), f"{row.id}:{row.fetched.timestamp()}", False, now)
                log.info("upstream-fetched project=%s files=%d", name, len(files))
        self._states[name] = state
        return state

    def _db_fresh(self, checked: datetime) -> bool:
        return self.index_ttl > 0 and (datetime.now(UTC) - checked).total_seconds() < self.index_ttl

    @staticmethod
    def _from_row(stored: tuple, now: float, stale: bool) -> UpstreamState:
        etag, last_modified, data, row_id, checked = stored
        return UpstreamState(tuple(load_files(data)), f"{row_id}:{etag}:{last_modified}:{len(data)}",
                             stale, now)

    def _forget(self, name: str) -> None:
        self._states.pop(name, None)
        with self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            if row is not None:
                session.delete(row)
