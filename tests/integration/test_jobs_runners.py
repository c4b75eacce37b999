"""The two job runners behind one interface: de-duplication, failures, a dead broker.

The Celery runner's tests use the machine's real Redis (and a throwaway one to
stop); the job itself runs against a small fake index.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest
import redis
from celery import Celery

from havarti.config import load_settings
from havarti.db import Database
from havarti.errors import NotFound, UpstreamError
from havarti.jobs import InProcessRunner
from havarti.jobs.celery import (
    BROKER_RETRY_SECONDS,
    FAILED_PREFIX,
    KEY_PREFIX,
    MAX_RETRIES,
    QUEUE,
    CeleryRunner,
    configure,
)
from havarti.wiring import build_index
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.services import ThrowawayRedis, redis_url


class FakeIndexForJobs:
    """Just what the cache_file job calls; blocks until released, records calls."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.fail_with = fail_with

    def cache_file(self, project: str, filename: str) -> str:
        self.calls.append((project, filename))
        self.release.wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        return f"{filename}: cached"


def wait_until(condition, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_in_process_runner_drops_a_duplicate_while_queued() -> None:
    fake = FakeIndexForJobs()
    runner = InProcessRunner(lambda: fake)
    assert runner.enqueue("cache_file", project="p", filename="p-1.0.tar.gz")
    assert runner.enqueue("cache_file", project="p", filename="p-1.0.tar.gz")
    fake.release.set()
    wait_until(lambda: runner.pending() == 0)
    assert fake.calls == [("p", "p-1.0.tar.gz")]
    runner.shutdown()


def test_in_process_runner_reports_why_a_job_failed_until_it_is_queued_again() -> None:
    fake = FakeIndexForJobs(fail_with=NotFound("no file 'p-1.0.tar.gz' in project 'p'"))
    fake.release.set()
    runner = InProcessRunner(lambda: fake)
    runner.enqueue("cache_file", project="p", filename="p-1.0.tar.gz")
    wait_until(lambda: runner.failure("cache_file", project="p", filename="p-1.0.tar.gz") is not None)
    assert "no file" in (runner.failure("cache_file", project="p", filename="p-1.0.tar.gz") or "")
    fake.fail_with = None
    runner.enqueue("cache_file", project="p", filename="p-1.0.tar.gz")
    assert runner.failure("cache_file", project="p", filename="p-1.0.tar.gz") is None
    runner.shutdown()


def test_unknown_job_is_refused() -> None:
    runner = InProcessRunner(lambda: None)
    with pytest.raises(KeyError, match="unknown job"):
        runner.enqueue("make_coffee")
    runner.shutdown()


def test_cache_file_job_on_a_cached_file_does_nothing(tmp_path: Path) -> None:
    upstream = FakeIndex().start()
    try:
        dist = dists.wheel("idem", "1.0")
        upstream.publish("idem", dist, "1.0")
        settings = load_settings({"PACKAGE_CACHE": str(tmp_path), "FALLBACK": upstream.url})
        index = build_index(settings)
        Database(settings.database_url).upgrade()
        assert "cached" in index.cache_file("idem", dist.filename)
        assert index.cache_file("idem", dist.filename) == f"{dist.filename}: already cached"
        assert upstream.fetch_count(dist.filename) == 1
        index.close()
    finally:
        upstream.down()


def celery_for(url: str) -> tuple[Celery, CeleryRunner, FakeIndexForJobs]:
    settings = load_settings({"REDIS_URI": url})
    app = Celery("havarti-test", set_as_current=False)
    fake = FakeIndexForJobs()
    configure(app, settings, lambda: fake)  # type: ignore[arg-type, return-value]
    return app, CeleryRunner(app, settings), fake


@pytest.mark.services
def test_celery_runner_queues_one_message_for_duplicate_jobs() -> None:
    url = f"{redis_url()}/{secrets.randbelow(14) + 2}"
    _, runner, _ = celery_for(url)
    client = redis.Redis.from_url(url)
    filename = f"dup-{secrets.token_hex(4)}-1.0.tar.gz"
    before = client.llen(QUEUE)
    try:
        assert runner.enqueue("cache_file", project="dup", filename=filename)
        assert runner.enqueue("cache_file", project="dup", filename=filename)
        assert client.llen(QUEUE) == before + 1
        assert client.ttl(f"{KEY_PREFIX}cache_file:filename={filename},project=dup") > 0
    finally:
        client.delete(f"{KEY_PREFIX}cache_file:filename={filename},project=dup")
        for raw in client.lrange(QUEUE, 0, -1):
            if filename.encode() in raw:
                client.lrem(QUEUE, 1, raw)  # type: ignore[arg-type]  # redis takes the bytes it gave


@pytest.mark.services
@pytest.mark.parametrize(("error", "attempts"), [
    (NotFound("no file 'gone-1.0.tar.gz' in project 'gone'"), 1),
    # Upstream failures are retried; eagerly the retries run at once (no countdown).
    (UpstreamError("upstream answered 503"), MAX_RETRIES + 1),
])
def test_celery_task_records_a_final_failure_and_frees_the_job_key(error: Exception,
                                                                   attempts: int) -> None:
    url = f"{redis_url()}/{secrets.randbelow(14) + 2}"
    app, runner, fake = celery_for(url)
    fake.fail_with = error
    fake.release.set()
    filename = f"gone-{secrets.token_hex(4)}-1.0.tar.gz"
    client = redis.Redis.from_url(url)
    key = f"cache_file:filename={filename},project=gone"
    client.set(KEY_PREFIX + key, "1")
    try:
        app.tasks["havarti.cache_file"].apply(kwargs={"project": "gone", "filename": filename})
        assert len(fake.calls) == attempts
        assert runner.failure("cache_file", project="gone", filename=filename) == str(error)
        assert not client.exists(KEY_PREFIX + key)
    finally:
        client.delete(FAILED_PREFIX + key, KEY_PREFIX + key)


@pytest.mark.services
def test_celery_runner_with_the_broker_down_says_so_quickly(tmp_path: Path) -> None:
    broker = ThrowawayRedis(tmp_path).start()
    _, runner, _ = celery_for(broker.url)
    broker.stop()
    started = time.monotonic()
    assert runner.enqueue("cache_file", project="p", filename="p-1.0.tar.gz") is False
    assert time.monotonic() - started < 5
    assert runner.pending() == -1

    broker.start()
    try:
        time.sleep(BROKER_RETRY_SECONDS)
        assert runner.enqueue("cache_file", project="p", filename="p-1.0.tar.gz") is True
        assert runner.pending() == 1
    finally:
        broker.stop()

