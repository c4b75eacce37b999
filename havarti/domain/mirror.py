"""The mirror policy for project pages, in one place.

- Revalidate with upstream on every request (a conditional request with the
  stored ETag / Last-Modified: a current page costs one small 304), or trust
  the stored page for INDEX_TTL seconds.
- One upstream request per project at a time in a process: requests arriving
  while it is in flight wait for it and share its answer, failures included.
- Upstream fails (refused, timeout, 5xx, garbage): serve the last stored page,
  marked stale, and log it. Nothing stored: raise UpstreamError.
- Upstream says 404: forget the stored page and raise UpstreamNotFound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property, partial

from sqlalchemy import select

from havarti.db import Database
from havarti.db.models import UpstreamPage
from havarti.errors import HavartiError, UpstreamError, UpstreamNotFound
from havarti.upstream.client import (
    UpstreamClient,
    UpstreamFile,
    UpstreamResult,
    dump_files,
    load_files,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamState:
    """What Havarti knows of a project upstream."""

    #: The parsed files, or None while only the stored JSON (``data``) is at hand.
    parsed: tuple[UpstreamFile, ...] | None
    #: Changes whenever the files change: part of the rendered page's cache key.
    token: str
    stale: bool = False
    #: time.monotonic() of the last answer from upstream (or its equivalent).
    checked_at: float = 0.0
    #: Reads the stored JSON of the files, when they are not parsed yet.
    read: Callable[[], str] | None = None

    @cached_property
    def files(self) -> tuple[UpstreamFile, ...]:
        # Read and parsed on first use: a page served from its stored rendering never needs them.
        if self.parsed is not None:
            return self.parsed
        return tuple(load_files(self.read() if self.read is not None else "[]"))

    def renewed(self, checked_at: float) -> UpstreamState:
        """The same files, confirmed current at ``checked_at``; keeps what was parsed."""
        parsed = self.__dict__.get("files", self.parsed)
        return UpstreamState(parsed, self.token, False, checked_at, self.read)

    def file(self, filename: str) -> UpstreamFile | None:
        for f in self.files:
            if f.filename == filename:
                return f
        return None


@dataclass(frozen=True)
class _Stored:
    """The stored page's row, without its (possibly large) data."""

    row_id: int
    etag: str | None
    last_modified: str | None
    fetched: datetime
    checked: datetime

    @property
    def token(self) -> str:
        # `fetched` changes exactly when the data does, in whichever process wrote it.
        return f"{self.row_id}:{self.fetched.timestamp()}"

    def age(self) -> float:
        return (datetime.now(UTC) - self.checked).total_seconds()


class Mirror:
    """Upstream project pages, kept in the database and in this process's memory."""

    def __init__(self, db: Database, upstream: UpstreamClient, index_ttl: int) -> None:
        self.db = db
        self.upstream = upstream
        self.index_ttl = index_ttl
        self._states: dict[str, UpstreamState] = {}
        self._failures: dict[str, tuple[float, HavartiError]] = {}
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
            # Whoever held the lock asked upstream after we arrived: share that answer.
            failed = self._failures.get(name)
            if failed is not None and failed[0] >= started:
                raise failed[1]
            cached = self._states.get(name)
            if cached is not None and (not revalidate or cached.checked_at >= started
                                       or self._fresh(cached, started)):
                return cached
            try:
                state = self._refresh(name, cached, revalidate)
            except (UpstreamError, UpstreamNotFound) as exc:
                self._failures[name] = (time.monotonic(), exc)
                raise
            self._failures.pop(name, None)
            self._states[name] = state
            return state

    def _fresh(self, state: UpstreamState, now: float) -> bool:
        return not state.stale and self.index_ttl > 0 and now - state.checked_at < self.index_ttl

    def _refresh(self, name: str, cached: UpstreamState | None, revalidate: bool) -> UpstreamState:
        stored = self._stored(name)
        if stored is not None and (not revalidate or 0 <= stored.age() < self.index_ttl):
            # Trusted for what is left of INDEX_TTL since whoever checked it last.
            return self._load(name, stored, cached, time.monotonic() - max(stored.age(), 0))
        try:
            result = self.upstream.fetch_project(
                name, etag=stored.etag if stored else None,
                last_modified=stored.last_modified if stored else None)
        except UpstreamNotFound:
            self._forget(name)
            raise
        except UpstreamError as exc:
            if stored is None:
                raise
            log.warning("upstream-stale project=%s reason=%s", name, exc)
            return replace(self._load(name, stored, cached, time.monotonic()), stale=True)
        if result.files is None:
            # With INDEX_TTL=0 nobody reads `checked`: a 304 then costs no database write.
            touched = self._touch(name) if self.index_ttl > 0 else stored
            if touched is not None:
                return self._load(name, touched, cached, time.monotonic())
            # The row went away (a 404 seen by another process): ask for the whole page.
            result = self.upstream.fetch_project(name)
        return self._save(name, result)

    def _stored(self, name: str) -> _Stored | None:
        with self.db.session() as session:
            row = session.execute(
                select(UpstreamPage.id, UpstreamPage.etag, UpstreamPage.last_modified,
                       UpstreamPage.fetched, UpstreamPage.checked)
                .where(UpstreamPage.name == name)).first()
        return None if row is None else _Stored(*row)

    def _touch(self, name: str) -> _Stored | None:
        """Record a 304: the stored page is current as of now."""
        with self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            if row is None:
                return None
            row.checked = datetime.now(UTC)
            return _Stored(row.id, row.etag, row.last_modified, row.fetched, row.checked)

    def _load(self, name: str, stored: _Stored, cached: UpstreamState | None,
              checked_at: float) -> UpstreamState:
        """The stored page as a state; reuses this process's parsed files when they are current."""
        if cached is not None and cached.token == stored.token:
            return cached.renewed(checked_at)
        return UpstreamState(None, stored.token, False, checked_at,
                             partial(self._read_data, stored.row_id))

    def _read_data(self, row_id: int) -> str:
        with self.db.session() as session:
            data = session.scalar(select(UpstreamPage.data).where(UpstreamPage.id == row_id))
        return data or "[]"

    def _save(self, name: str, result: UpstreamResult) -> UpstreamState:
        files = result.files or []
        now = datetime.now(UTC)
        with self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            if row is None:
                row = UpstreamPage(name=name, data="[]")
                session.add(row)
            row.data = dump_files(files)
            row.etag = result.etag
            row.last_modified = result.last_modified
            row.fetched = row.checked = now
            session.flush()
            stored = _Stored(row.id, row.etag, row.last_modified, row.fetched, row.checked)
        log.info("upstream-fetched project=%s files=%d", name, len(files))
        return UpstreamState(tuple(files), stored.token, False, time.monotonic())

    def _forget(self, name: str) -> None:
        self._states.pop(name, None)
        with self.db.session() as session:
            row = session.scalar(select(UpstreamPage).where(UpstreamPage.name == name))
            if row is not None:
                session.delete(row)
