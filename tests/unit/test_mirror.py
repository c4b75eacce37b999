"""The mirror policy, branch by branch, with a fake upstream client and a SQLite database."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event

from havarti.db import Database
from havarti.db.pages import UpstreamPages
from havarti.domain.mirror import Mirror, UpstreamState
from havarti.errors import UpstreamError, UpstreamNotFound
from havarti.records import PageFile
from havarti.upstream.client import PageResponse, ParsedPage


def upstream_file(filename: str) -> PageFile:
    return PageFile(filename=filename, url=f"https://files.invalid/{filename}",
                        hashes={"sha256": "0" * 64})


class FakeUpstream:
    """The UpstreamClient's page interface: serves ``files``, with an ETag unless told not to."""

    def __init__(self) -> None:
        self.files: list[PageFile] = [upstream_file("demo-1.0.tar.gz")]
        self.failure: Exception | None = None
        self.validators = True
        self.requests: list[str | None] = []  # the If-None-Match of each request
        self.parsed = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @property
    def body(self) -> bytes:
        return json.dumps([f.filename for f in self.files]).encode()

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def fetch_project(self, name: str, etag: str | None = None,
                      last_modified: str | None = None) -> PageResponse:
        self.requests.append(etag)
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.failure is not None:
            raise self.failure
        if self.validators and etag == self.etag:
            return PageResponse(True, etag, last_modified)
        return PageResponse(False, self.etag if self.validators else None, None, self.body,
                            "application/vnd.pypi.simple.v1+json", "https://upstream.invalid/",
                            hashlib.sha256(self.body).hexdigest())

    def parse(self, name: str, page: PageResponse) -> ParsedPage:
        self.parsed += 1
        return ParsedPage(list(self.files))


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_mirror(db: Database, upstream: FakeUpstream) -> Callable[..., Mirror]:
    """A Mirror: one per web process in real life; several may share the database."""
    def make(index_ttl: int = 0, **options: object) -> Mirror:
        return Mirror(UpstreamPages(db), upstream, index_ttl, **options)  # type: ignore[arg-type]
    return make


def count_writes(db: Database) -> list[str]:
    """Every INSERT, UPDATE or DELETE the database is sent from now on."""
    writes: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    return writes


def filenames(mirror: Mirror, name: str = "demo") -> list[str]:
    return [f.filename for f in mirror.state(name).files]


def test_first_request_fetches_the_whole_page(make_mirror, upstream):
    mirror = make_mirror()
    state = mirror.state("demo")
    assert [f.filename for f in state.files] == ["demo-1.0.tar.gz"]
    assert not state.stale
    assert upstream.requests == [None]


def test_revalidation_is_conditional_and_a_304_keeps_the_page(make_mirror, upstream):
    mirror = make_mirror()
    first = mirror.state("demo")
    second = mirror.state("demo")
    assert upstream.requests == [None, upstream.etag]
    assert second.files == first.files
    assert second.token == first.token


def test_a_200_replaces_the_page(make_mirror, upstream):
    mirror = make_mirror()
    first = mirror.state("demo")
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    second = mirror.state("demo")
    assert [f.filename for f in second.files] == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]
    assert second.token != first.token
    # Another process, which never saw it, gets the new page from the database on its 304.
    assert filenames(make_mirror()) == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]


def test_a_process_behind_another_takes_the_stored_page_without_parsing(make_mirror, upstream):
    behind, ahead = make_mirror(), make_mirror()
    assert filenames(behind) == ["demo-1.0.tar.gz"]
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    assert len(filenames(ahead)) == 2
    ahead.flush(5)  # its write, which follows its answer, has landed
    parsed = upstream.parsed
    # `behind` gets the new bytes, finds them stored already (same digest): no second parse.
    assert filenames(behind) == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]
    assert upstream.parsed == parsed
    # From then on it revalidates with the new ETag.
    behind.state("demo")
    assert upstream.requests[-1] == upstream.etag


def test_index_ttl_trusts_a_fresh_page_without_asking(make_mirror, upstream):
    mirror = make_mirror(index_ttl=60)
    mirror.state("demo")
    mirror.flush(5)  # stored after the answer
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    assert filenames(mirror) == ["demo-1.0.tar.gz"]
    # A second process trusts the stored page too: it was checked moments ago.
    assert filenames(make_mirror(index_ttl=60)) == ["demo-1.0.tar.gz"]
    assert upstream.requests == [None]


def test_a_fetched_page_is_stored_after_its_answer(make_mirror, upstream):
    mirror = make_mirror()
    assert filenames(mirror) == ["demo-1.0.tar.gz"]
    mirror.flush(5)
    # Another process (a restart) finds the page stored while upstream is down.
    upstream.failure = UpstreamError("down")
    restarted = make_mirror()
    assert filenames(restarted) == ["demo-1.0.tar.gz"]
    assert restarted.state("demo").stale


def test_upstream_404_forgets_the_stored_page(make_mirror, upstream):
    mirror = make_mirror()
    mirror.state("demo")
    upstream.failure = UpstreamNotFound("no project 'demo' upstream")
    with pytest.raises(UpstreamNotFound):
        mirror.state("demo")
    mirror.flush(5)  # the stored page is deleted by the writer thread, after the answer
    # Nothing is left to fall back on.
    upstream.failure = UpstreamError("upstream unreachable")
    with pytest.raises(UpstreamError):
        make_mirror().state("demo")


def test_upstream_failure_with_a_stored_page_serves_it_stale(make_mirror, upstream):
    mirror = make_mirror()
    mirror.state("demo")
    mirror.flush(5)  # stored after the answer
    upstream.failure = UpstreamError("upstream timed out", timeout=True)
    state = mirror.state("demo")
    assert state.stale
    assert [f.filename for f in state.files] == ["demo-1.0.tar.gz"]
    # A process that never saw it serves the stored page, stale, too.
    assert make_mirror().state("demo").stale
    upstream.failure = None
    assert not mirror.state("demo").stale


def test_upstream_failure_with_nothing_stored_raises(make_mirror, upstream):
    upstream.failure = UpstreamError("upstream timed out", timeout=True)
    with pytest.raises(UpstreamError) as raised:
        make_mirror().state("demo")
    assert raised.value.timeout


def test_file_requests_take_the_stored_page_without_asking(make_mirror, upstream):
    first = make_mirror()
    first.state("demo")
    first.flush(5)  # stored after the answer
    upstream.failure = UpstreamError("would hang")
    state = make_mirror().state("demo", revalidate=False)
    assert not state.stale
    assert len(upstream.requests) == 1


def run_concurrently(mirror: Mirror, upstream: FakeUpstream, count: int,
                     joined: threading.Semaphore) -> list[object]:
    """``count`` threads ask at once while the first upstream request is held open.

    ``joined`` is released by the mirror each time a request joins the running check.
    """
    upstream.gate = threading.Event()
    upstream.entered.clear()
    results: list[object] = []

    def ask() -> None:
        try:
            results.append(mirror.state("demo"))
        except Exception as exc:  # collected for the caller's assertions
            results.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    threads[0].start()
    assert upstream.entered.wait(5)
    for thread in threads[1:]:
        thread.start()
    for _ in threads[1:]:  # all of them are waiting on the first one's check
        assert joined.acquire(timeout=10)
    upstream.gate.set()
    for thread in threads:
        thread.join(10)
    return results


def test_concurrent_requests_share_one_upstream_request(make_mirror, upstream):
    joined = threading.Semaphore(0)
    mirror = make_mirror(joined=lambda name: joined.release())
    results = run_concurrently(mirror, upstream, 8, joined)
    assert len(upstream.requests) == 1
    assert len(results) == 8
    assert all(isinstance(r, UpstreamState) and [f.filename for f in r.files] == ["demo-1.0.tar.gz"]
               for r in results)


def test_concurrent_requests_share_one_failure(make_mirror, upstream):
    upstream.failure = UpstreamError("upstream timed out", timeout=True)
    joined = threading.Semaphore(0)
    mirror = make_mirror(joined=lambda name: joined.release())
    results = run_concurrently(mirror, upstream, 8, joined)
    # One timeout for all of them, not eight in a row.
    assert len(upstream.requests) == 1
    assert len(results) == 8 and all(isinstance(r, UpstreamError) for r in results)
    # A later request asks again.
    upstream.gate, upstream.failure = None, None
    assert filenames(mirror) == ["demo-1.0.tar.gz"]


def test_an_unchanged_200_without_validators_costs_no_parse_and_no_write(make_mirror, upstream, db):
    upstream.validators = False
    mirror = make_mirror()
    first = mirror.state("demo")
    mirror.flush(5)  # the first fetch's own write, which follows its answer
    writes = count_writes(db)
    parsed = upstream.parsed
    for _ in range(3):
        again = mirror.state("demo")
    assert upstream.requests == [None] * 4  # nothing to send a conditional request with
    assert upstream.parsed == parsed
    assert writes == []
    # The identity comes from the bytes: the same in another process, and across restarts.
    assert again.token == first.token == make_mirror().state("demo").token


def test_a_changed_200_without_validators_shows_on_the_next_request(make_mirror, upstream):
    upstream.validators = False
    mirror = make_mirror()
    first = mirror.state("demo")
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    second = mirror.state("demo")
    assert [f.filename for f in second.files] == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]
    assert second.token != first.token


def test_a_slow_upstream_gets_the_stored_page_within_revalidate_wait(make_mirror, upstream):
    mirror = make_mirror(revalidate_wait=0.2)
    mirror.state("demo")
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    upstream.gate = threading.Event()
    started = time.monotonic()
    state = mirror.state("demo")
    assert time.monotonic() - started < 2
    assert state.stale and "slow" in (state.stale_reason or "")
    assert [f.filename for f in state.files] == ["demo-1.0.tar.gz"]
    # The check goes on in the background; once upstream answers, the next request sees it.
    upstream.gate.set()
    for _ in range(100):
        if len(mirror._checks) == 0:
            break
        time.sleep(0.02)
    upstream.gate = None
    assert filenames(mirror) == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]


def test_a_slow_upstream_with_nothing_stored_is_waited_for(make_mirror, upstream):
    mirror = make_mirror(revalidate_wait=0.05)
    upstream.gate = threading.Event()
    threading.Timer(0.3, upstream.gate.set).start()
    state = mirror.state("demo")
    assert not state.stale and [f.filename for f in state.files] == ["demo-1.0.tar.gz"]


def test_a_missing_project_is_remembered_for_not_found_ttl(make_mirror, upstream, clock):
    upstream.failure = UpstreamNotFound("no project 'ghost' upstream")
    mirror = make_mirror(not_found_ttl=10, clock=clock)
    for _ in range(5):
        with pytest.raises(UpstreamNotFound):
            mirror.state("ghost")
    assert len(upstream.requests) == 1
    clock.now += 11
    upstream.failure = None
    assert filenames(mirror, "ghost") == ["demo-1.0.tar.gz"]
    assert len(upstream.requests) == 2


def test_per_process_state_is_bounded_in_bytes(make_mirror, upstream):
    mirror = make_mirror(cache_bytes=10_000)
    for i in range(200):
        mirror.state(f"project-{i}")
    assert mirror._states.size <= 10_000
    assert 0 < len(mirror._states) < 200
    assert not mirror._checks  # finished checks leave nothing behind
