"""Prefetch, `havarti check` and /ready with Redis set: a missing downloader is said, never
waited on in silence.

Real Redis (tests/services.env) on a database index no other process is using, so that
another run's downloader cannot answer for the missing one; a real Celery worker where
one is needed.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from havarti.jobs.celery import QUEUE
from havarti.web.health import READY_SECONDS
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.server import clean_env
from tests.support.services import redis_url
from tests.support.topology import Worker, celery_command

pytestmark = pytest.mark.services

START = "start one with `celery --app=havarti worker -l info` (or `havarti worker`)"


@pytest.fixture
def lonely_redis() -> Iterator[str]:
    """A URL of the machine's Redis on a database index no client is connected to."""
    base = redis_url()
    client = redis.Redis.from_url(base)
    numbers = list(range(2, 16))
    random.shuffle(numbers)
    busy = {int(c["db"]) for c in client.client_list()}
    free = [n for n in numbers if n not in busy]
    assert free, "every Redis database index is in use"
    url = f"{base}/{free[0]}"
    redis.Redis.from_url(url).delete(QUEUE)  # what an earlier run left there
    yield url
    redis.Redis.from_url(url).delete(QUEUE)


def havarti(args: list[str], env: dict[str, str],
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havarti.cli", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=timeout)


def publish_app_with_a_dependency(upstream: FakeIndex) -> list[dists.Dist]:
    app = dists.wheel("lonely-app", "1.0", requires=("lonely-dep>=1",))
    dep = dists.wheel("lonely-dep", "1.2")
    upstream.publish("lonely-app", app, "1.0")
    upstream.publish("lonely-dep", dep, "1.2")
    return [app, dep]


def test_prefetch_without_a_worker_says_so_at_once_and_queues_nothing(
        tmp_path: Path, upstream: FakeIndex, lonely_redis: str) -> None:
    files = publish_app_with_a_dependency(upstream)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lonely-app\n")
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url,
           "REDIS_URI": lonely_redis}

    started = time.monotonic()
    # The default --timeout is an hour: the answer must not depend on it.
    result = havarti(["prefetch", "-r", str(requirements)], env, timeout=120)
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"havarti: no worker is taking jobs from Redis: {START}, "
        "or pass --in-process to download here"]
    assert redis.Redis.from_url(lonely_redis).llen(QUEUE) == 0
    assert all(upstream.fetch_count(f.filename) == 0 for f in files)


def test_prefetch_in_process_with_redis_and_no_worker_caches_what_install_needs(
        tmp_path: Path, upstream: FakeIndex, lonely_redis: str) -> None:
    files = publish_app_with_a_dependency(upstream)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lonely-app\n")
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url,
           "REDIS_URI": lonely_redis}

    result = havarti(["prefetch", "-r", str(requirements), "--in-process", "--timeout", "60"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    size = sum(len(f.data) for f in files)
    assert f"2 of 2 files cached, {size:,} bytes" in result.stdout
    assert [upstream.fetch_count(f.filename) for f in files] == [1, 1]
    assert redis.Redis.from_url(lonely_redis).llen(QUEUE) == 0  # nothing went to Redis


def ready_client(env: dict[str, str]) -> FlaskClient:
    from havarti.application import Havarti
    from havarti.config import load_settings

    return Havarti(load_settings(env)).flask.test_client()


def test_check_and_ready_warn_without_a_worker_and_count_it_once_started(
        tmp_path: Path, upstream: FakeIndex, lonely_redis: str) -> None:
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url,
           "REDIS_URI": lonely_redis}

    result = havarti(["check"], env)
    # A warning, not a failure: web processes often start before their downloaders.
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"WARN workers: 0 taking jobs from queue 'havarti': {START}" in result.stdout.splitlines()
    assert "ok   broker: redis" in result.stdout.splitlines()

    web = ready_client(env)
    response = web.get("/ready")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["workers"]["workers"] == 0
    assert body["warnings"] == [f"workers: no worker is taking jobs: {START}"]
    started = time.monotonic()
    web.get("/ready")
    assert time.monotonic() - started < 0.5  # the count is reused, not asked again per probe

    worker = Worker(celery_command(), clean_env(env), tmp_path / "worker.log").start()
    answering(env)
    try:
        result = havarti(["check"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok   workers: 1 taking jobs from queue 'havarti'" in result.stdout.splitlines()
        # A load balancer's probes: the count follows within a few seconds, each answer quick.
        deadline = time.monotonic() + READY_SECONDS + 10
        while (body := web.get("/ready").get_json())["checks"]["workers"].get("workers") != 1:
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["status"] == "ok" and "warnings" not in body
    finally:
        worker.stop()


def answering(env: dict[str, str], timeout: float = 60) -> None:
    """Wait until the worker answers Celery's broadcast: "ready." in its log comes first, and
    on a loaded machine its first answer can take longer than prefetch's count waits."""
    from havarti.config import load_settings
    from havarti.jobs.celery import sending_runner

    runner = sending_runner(load_settings(env))
    deadline = time.monotonic() + timeout
    while runner.workers(1.0) == 0:
        assert time.monotonic() < deadline, "the worker never answered Celery's inspect"


def test_prefetch_stops_waiting_when_the_last_worker_is_gone(
        tmp_path: Path, upstream: FakeIndex, lonely_redis: str) -> None:
    big = dists.wheel("slow-to-fetch", "1.0", payload_size=2_000_000)
    upstream.publish("slow-to-fetch", big, "1.0")
    upstream.file_delay = 1.0  # a second per 64 kB: the download outlives the worker
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("slow-to-fetch\n")
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url,
           "REDIS_URI": lonely_redis}
    worker = Worker(celery_command(), clean_env(env), tmp_path / "worker.log").start()
    answering(env)
    prefetch = subprocess.Popen(
        [sys.executable, "-m", "havarti.cli", "prefetch", "-r", str(requirements), "--no-deps"],
        env=clean_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while upstream.fetches[f"file:{big.filename}"] == 0:  # the worker has the job
            assert time.monotonic() < deadline and prefetch.poll() is None, worker.log()
            time.sleep(0.2)
        worker.kill()
        killed = time.monotonic()
        output, errors = prefetch.communicate(timeout=120)
    finally:
        worker.stop()
        if prefetch.poll() is None:
            prefetch.kill()
    # Not the default hour: two counts of workers (every 15 s without progress) end it.
    assert time.monotonic() - killed < 60
    assert prefetch.returncode == 1, output + errors
    assert "0 of 1 files cached" in output
    assert (f"FAILED {big.filename}: no worker is taking jobs from Redis any more: {START}"
            in output.splitlines()), output
