"""The mirror policy for upstream project pages, in one place.

- Every page request triggers a check with upstream (a conditional request with
  the stored ETag / Last-Modified), unless INDEX_TTL says the stored page is
  still trusted. Concurrent requests for one project share one check.
- A page is identified by a digest of upstream's bytes, not by when it was
  fetched: a 304, or a 200 with the same bytes (upstreams that send no
  validators), costs no parse, no database write and no re-render.
- A request waits for the check at most REVALIDATE_WAIT when a page is stored;
  then it gets the stored page, marked stale, and the check finishes in the
  background, so the next request sees its result.
- Upstream fails (refused, timeout, 5xx, garbage, circuit open): serve the
  stored page, marked stale, and log it. Nothing stored: raise UpstreamError.
- Upstream says 404: forget the stored page, remember the miss for
  NOT_FOUND_TTL seconds (a burst of look-ups costs one request), raise
  UpstreamNotFound.
- The mirror is the one owner of a stored page: its files, validators, digest
  and rendered part are written together, in one transaction, by one writer
  thread per process after the page is answered (in fetch order; a crash
  before the write only costs a fetch on the next request).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from havarti.cache import BoundedCache
from havarti.domain.pages import PagePart, render_part
from havarti.domain.ports import UpstreamPageStore
from havarti.errors import UpstreamError, UpstreamNotFound, no_space, unless_full
from havarti.records import PageFile, dump_files, load_files
from havarti.upstream.client import (
    PageResponse,
    ParsedPage,
    UpstreamClient,
)

log = logging.getLogger(__name__)

#: Checks running at once in one process (each waits on upstream, not on the CPU).
CHECK_THREADS = 32
#: Names remembered as missing upstream, per process.
MISSING_NAMES = 10_000


@dataclass(frozen=True)
class StoredPage:
    """Reads a stored page's parts from the database when first needed."""

    pages: UpstreamPageStore
    row_id: int

    def data(self) -> str:
        """The stored files."""
        return self.pages.data(self.row_id)

    def rendered(self, digest: str) -> str | None:
        """The stored rendering, when it was made from the page with ``digest``."""
        stored = self.pages.rendered(self.row_id)
        prefix = digest + "\n"
        return stored[len(prefix):] if stored and stored.startswith(prefix) else None


@dataclass(frozen=True)
class UpstreamState:
    """What Havarti knows of a project upstream: one stored page, identified by its digest."""

    name: str
    #: sha256 of upstream's bytes: the page's identity, in every process, across restarts.
    digest: str
    etag: str | None
    last_modified: str | None
    #: time.monotonic() when upstream last confirmed the page (or its equivalent).
    checked_at: float
    #: Bytes of the stored page, for the cache's budget.
    size: int
    #: Why the page is served without upstream's confirmation, or None when it is current.
    stale_reason: str | None = None
    parsed: tuple[PageFile, ...] | None = None
    prerendered: PagePart | None = None
    stored: StoredPage | None = field(default=None, compare=False)

    @property
    def token(self) -> str:
        """What identifies this page's content: its digest."""
        return self.digest

    @property
    def stale(self) -> bool:
        """Whether the page is served without upstream's confirmation."""
        return self.stale_reason is not None

    @cached_property
    def files(self) -> tuple[PageFile, ...]:
        # Read and parsed on first use: a page served from its stored rendering never needs them.
        """The page's files, parsed or read from the stored page on first use."""
        if self.parsed is not None:
            return self.parsed
        return tuple(load_files(self.stored.data())) if self.stored else ()

    @cached_property
    def _by_filename(self) -> dict[str, PageFile]:
        return {f.filename: f for f in self.files}

    def file(self, filename: str) -> PageFile | None:
        """The page's file named ``filename``, or None."""
        return self._by_filename.get(filename)

    @cached_property
    def part(self) -> PagePart:
        """Every file rendered for Havarti's page: stored with the page, or rendered now."""
        if self.prerendered is not None:
            return self.prerendered
        stored = self.stored.rendered(self.digest) if self.stored else None
        if stored is not None:
            return PagePart.loads(stored, lambda: self.files)
        return render_part(self.name, self.files)

    def _evolve(self, **changes: object) -> UpstreamState:
        # Keeps what this state already parsed and rendered.
        kept = {"parsed": self.__dict__.get("files", self.parsed),
                "prerendered": self.__dict__.get("part", self.prerendered)}
        values = {**{f: getattr(self, f) for f in self.__dataclass_fields__}, **kept, **changes}
        return UpstreamState(**values)  # type: ignore[arg-type]

    def renewed(self, checked_at: float, etag: str | None, last_modified: str | None) -> UpstreamState:
        """The same page, confirmed current at ``checked_at``."""
        return self._evolve(checked_at=checked_at, stale_reason=None, etag=etag,
                            last_modified=last_modified)

    def marked_stale(self, reason: str) -> UpstreamState:
        """A copy served without upstream's confirmation, saying why."""
        return self._evolve(stale_reason=reason)


class Mirror:
    """Upstream project pages, kept in the database and in this process's memory."""

    def __init__(self, pages: UpstreamPageStore, upstream: UpstreamClient, index_ttl: int,
                 revalidate_wait: float = 2.0, not_found_ttl: float = 10.0,
                 cache_bytes: int = 32 * 2**20,
                 clock: Callable[[], float] = time.monotonic,
                 joined: Callable[[str], None] | None = None) -> None:
        self.pages = pages
        #: Told the project's name when a request joins a check already running for it.
        self._joined = joined
        self.upstream = upstream
        self.index_ttl = index_ttl
        self.revalidate_wait = revalidate_wait
        self._clock = clock
        # Parsed files count about twice the page's bytes.
        self._states: BoundedCache[str, UpstreamState] = BoundedCache(
            cache_bytes, lambda s: 2 * s.size + 512, clock=clock)
        self._missing: BoundedCache[str, bool] = BoundedCache(
            MISSING_NAMES, lambda _: 1, ttl=not_found_ttl, clock=clock)
        self._checks: dict[str, Future[UpstreamState]] = {}
        self._guard = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._write_pool: ThreadPoolExecutor | None = None
        self._write_pool_pid = 0

    def state(self, name: str, revalidate: bool = True) -> UpstreamState:
        """The project's upstream page, fresh per the policy above.

        ``revalidate=False`` takes any stored page without asking upstream (for
        file requests: the page the client just saw names the file).
        Raises UpstreamNotFound, or UpstreamError when nothing is stored.
        """
        started = self._clock()
        if self._missing.get(name):
            raise UpstreamNotFound(f"no project {name!r} upstream")
        current = self._states.get(name) or self._load(name)
        if current is not None and (not revalidate or self._fresh(current, started)):
            return current
        check = self._check(name)
        try:
            return check.result(timeout=self.revalidate_wait if current is not None else None)
        except FutureTimeout:
            log.info("upstream-slow project=%s waited=%.1fs", name, self.revalidate_wait)
            return current.marked_stale(  # type: ignore[union-attr]
                "upstream is slow; serving the stored page while it is checked")

    def known(self, name: str) -> UpstreamState | None:
        """What this process holds in memory of ``name``'s page, asking no one."""
        return self._states.get(name)

    def _fresh(self, state: UpstreamState, now: float) -> bool:
        return not state.stale and self.index_ttl > 0 and now - state.checked_at < self.index_ttl

    def _check(self, name: str) -> Future[UpstreamState]:
        """The check running for ``name``, or a new one: concurrent requests share it."""
        with self._guard:
            check = self._checks.get(name)
            joined = check is not None
            if check is None:
                check = self._checks[name] = self._executor().submit(self._revalidate, name)
        if joined:
            if self._joined is not None:
                self._joined(name)
            return check
        # Outside the guard: a check already done runs its callback right here.
        check.add_done_callback(lambda done: self._finished(name, done))
        return check

    def _finished(self, name: str, check: Future[UpstreamState]) -> None:
        with self._guard:
            if self._checks.get(name) is check:
                del self._checks[name]

    def _executor(self) -> ThreadPoolExecutor:
        # Made on first use in each process: gunicorn forks after --preload, threads do not follow.
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="revalidate")
            self._pool_pid = os.getpid()
        return self._pool

    def _revalidate(self, name: str) -> UpstreamState:
        current = self._states.get(name) or self._load(name)
        try:
            response = self.upstream.fetch_project(
                name, current.etag if current else None, current.last_modified if current else None)
            if response.not_modified and current is None:
                response = self.upstream.fetch_project(name)
            if current is not None and (response.not_modified or response.digest == current.digest):
                state = self._confirmed(current, response)
            else:
                state = self._changed(name, response)
        except UpstreamNotFound:
            self._forget(name)
            raise
        except UpstreamError as exc:
            if current is None:
                raise
            log.warning("upstream-stale project=%s reason=%s", name, exc)
            return current.marked_stale(f"upstream unreachable: {exc}")
        return self._states.put(name, state)

    def _confirmed(self, current: UpstreamState, response: PageResponse) -> UpstreamState:
        """Upstream has the page we hold: nothing is parsed, written or rendered."""
        etag = response.etag if not response.not_modified else current.etag
        last_modified = (response.last_modified if not response.not_modified
                         else current.last_modified)
        validators_changed = (etag, last_modified) != (current.etag, current.last_modified)
        if self.index_ttl > 0 or validators_changed:
            # Only INDEX_TTL reads `checked`, in other processes; new validators are worth a write.
            with unless_full("upstream page check"):
                self._touch(current.name, etag, last_modified)
        return current.renewed(self._clock(), etag, last_modified)

    def _changed(self, name: str, response: PageResponse) -> UpstreamState:
        stored = self._load(name)
        if stored is not None and stored.digest == response.digest:
            # Another process stored these very bytes already.
            return stored.renewed(self._clock(), response.etag, response.last_modified)
        return self._save(name, response, self.upstream.parse(name, response))

    def _load(self, name: str) -> UpstreamState | None:
        """The stored page's validators and digest; its files and rendering are read lazily."""
        row = self.pages.load(name)
        if row is None:
            return None
        age = max((datetime.now(UTC) - row.checked).total_seconds(), 0.0)
        # Rows stored before pages had digests get one from their row and time: any new
        # answer from upstream then counts as a change, once.
        digest = row.digest or f"row-{row.id}-{row.fetched.timestamp()}"
        return UpstreamState(name, digest, row.etag, row.last_modified,
                             # Trusted for what is left of INDEX_TTL since whoever checked it last.
                             checked_at=self._clock() - age, size=row.size or 0,
                             stored=StoredPage(self.pages, row.id))

    def _touch(self, name: str, etag: str | None, last_modified: str | None) -> None:
        self.pages.touch(name, etag, last_modified)

    def _save(self, name: str, response: PageResponse, parsed: ParsedPage) -> UpstreamState:
        files = parsed.files
        part = render_part(name, files, parsed.versions)
        # Written after the answer, off the request path: the first request for a changed
        # page waits for upstream and the parse, not for serialising and storing it.
        self._writer().submit(self._write, name, response, files, part)
        log.info("upstream-fetched project=%s files=%d bytes=%d", name, len(files),
                 len(response.body))
        return UpstreamState(name, response.digest, response.etag, response.last_modified,
                             self._clock(), len(response.body), parsed=tuple(files),
                             prerendered=part)

    def _write(self, name: str, response: PageResponse, files: list[PageFile],
               part: PagePart) -> None:
        """Store a fetched page (on the writer thread, in the order pages were fetched)."""
        values = {"data": dump_files(files), "digest": response.digest, "etag": response.etag,
                  "last_modified": response.last_modified, "size": len(response.body),
                  "rendered": f"{response.digest}\n{part.dumps()}"}
        try:
            self.pages.store(name, values)
        except Exception as exc:  # noqa: BLE001 -- served from memory all the same
            # Served from this process's memory; stored on a later change.
            reason = "no space left on device" if no_space(exc) else " ".join(str(exc).split())[:200]
            log.warning("upstream-not-stored project=%s reason=%s", name, reason)

    def _writer(self) -> ThreadPoolExecutor:
        # One thread: writes land in the order their pages were fetched.
        if self._write_pool is None or self._write_pool_pid != os.getpid():
            self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="mirror-store")
            self._write_pool_pid = os.getpid()
        return self._write_pool

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every page fetched so far in this process is stored (or failed to be)."""
        self._writer().submit(lambda: None).result(timeout)

    def _forget(self, name: str) -> None:
        self._states.pop(name)
        self._missing.put(name, True)
        # After any store of this page still queued, and before the 404 is answered: from
        # then on no process lists the project (the /simple/ page reads the stored rows).
        self._writer().submit(self.pages.forget, name).result()

    def close(self) -> None:
        """Stop this process's threads; pages already answered are still stored."""
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._write_pool is not None and self._write_pool_pid == os.getpid():
            # Pages already answered are kept: their writes finish before the process ends.
            self._write_pool.shutdown(wait=True)
