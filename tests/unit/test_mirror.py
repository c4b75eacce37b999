"""The mirror policy, branch by branch, with a fake upstream client and a SQLite database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from havarti.db import Database
from havarti.domain.mirror import Mirror
from havarti.errors import UpstreamError, UpstreamNotFound
from havarti.upstream.client import UpstreamFile, UpstreamResult


def upstream_file(filename: str) -> UpstreamFile:
    return UpstreamFile(filename=filename, url=f"https://files.invalid/{filename}",
                        hashes={"sha256": "0" * 64})


class FakeUpstream:
    """The UpstreamClient's page interface: serves ``files`` with an ETag, or fails as told."""

    def __init__(self) -> None:
        self.files: list[UpstreamFile] = [upstream_file("demo-1.0.tar.gz")]
        self.failure: Exception | None = None
        self.requests: list[str | None] = []  # the If-None-Match of each request
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @property
    def etag(self) -> str:
        return '"' + ",".join(f.filename for f in self.files) + '"'

    def fetch_project(self, name: str, etag: str | None = None,
                      last_modified: str | None = None) -> UpstreamResult:
        self.requests.append(etag)
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.failure is not None:
            raise self.failure
        if etag == self.etag:
            return UpstreamResult(None, etag, last_modified)
        return UpstreamResult(list(self.files), self.etag, None)




@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def make_mirror(db: Database, upstream: FakeUpstream) -> Callable[..., Mirror]:
    """A Mirror: one per web process in real life; several may share the database."""
    def make(index_ttl: int = 0) -> Mirror:
        return Mirror(db, upstream, index_ttl)  # type: ignore[arg-type]
    return make


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


def test_a_304_in_one_process_brings_another_processs_page_up_to_date(make_mirror, upstream):
    behind, ahead = make_mirror(), make_mirror()
    assert filenames(behind) == ["demo-1.0.tar.gz"]
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    assert len(filenames(ahead)) == 2
    # `behind` revalidates with the stored (new) ETag, gets a 304, and must not keep its old files.
    assert filenames(behind) == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]
    assert upstream.requests[-1] == upstream.etag


def test_index_ttl_trusts_a_fresh_page_without_asking(make_mirror, upstream):
    mirror = make_mirror(index_ttl=60)
    mirror.state("demo")
    upstream.files.append(upstream_file("demo-2.0.tar.gz"))
    assert filenames(mirror) == ["demo-1.0.tar.gz"]
    # A second process trusts the stored page too: it was checked moments ago.
    assert filenames(make_mirror(index_ttl=60)) == ["demo-1.0.tar.gz"]
    assert upstream.requests == [None]


def test_upstream_404_forgets_the_stored_page(make_mirror, upstream):
    mirror = make_mirror()
    mirror.state("demo")
    upstream.failure = UpstreamNotFound("no project 'demo' upstream")
    with pytest.raises(UpstreamNotFound):
        mirror.state("demo")
    # Nothing is left to fall back on.
    upstream.failure = UpstreamError("upstream unreachable")
    with pytest.raises(UpstreamError):
        make_mirror().state("demo")


def test_upstream_failure_with_a_stored_page_serves_it_stale(make_mirror, upstream):
    mirror = make_mirror()
    mirror.state("demo")
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
    make_mirror().state("demo")
    upstream.failure = UpstreamError("would hang")
    state = make_mirror().state("demo", revalidate=False)
    assert not state.stale
    assert len(upstream.requests) == 1


def run_concurrently(mirror: Mirror, upstream: FakeUpstream, count: int) -> list[object]:
    """``count`` threads ask at once while the first upstream request is held open."""
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
    time.sleep(0.2)  # all of them are waiting on the project's lock
    upstream.gate.set()
    for thread in threads:
        thread.join(10)
    return results


def test_concurrent_requests_share_one_upstream_request(make_mirror, upstream):
    mirror = make_mirror()
    results = run_concurrently(mirror, upstream, 8)
    assert len(upstream.requests) == 1
    assert len(results) == 8
    assert all(not isinstance(r, Exception) and [f.filename for f in r.files] == ["demo-1.0.tar.gz"]
               for r in results)


def test_concurrent_requests_share_one_failure(make_mirror, upstream):
    upstream.failure = UpstreamError("upstream timed out", timeout=True)
    mirror = make_mirror()
    results = run_concurrently(mirror, upstream, 8)
    # One timeout for all of them, not eight in a row.
    assert len(upstream.requests) == 1
    assert len(results) == 8 and all(isinstance(r, UpstreamError) for r in results)
    # A later request asks again.
    upstream.gate, upstream.failure = None, None
    assert filenames(mirror) == ["demo-1.0.tar.gz"]
