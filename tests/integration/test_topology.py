"""The seed's production topology under load and failure: gunicorn webs, Celery
downloaders, one Postgres, one Redis, one storage directory, the fake upstream.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from havarti.jobs.celery import BROKER_RETRY_SECONDS
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.server import HavartiServer, clean_env
from tests.support.services import ThrowawayRedis, terminate_connections
from tests.support.topology import Topology, havarti_worker_command

pytestmark = pytest.mark.services

PASSCODE = "topology-passcode"


def wait_for(condition: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()[-4000:]}")


def file_url(web: HavartiServer, project: str, filename: str) -> str:
    return f"{web.url}/files/{project}/{filename}"


def is_cached(web: HavartiServer, project: str, filename: str) -> bool:
    response = httpx.get(file_url(web, project, filename), timeout=10)
    return response.status_code == 200 and response.headers.get("X-Havarti-Cache") == "hit"


def rows_per_filename(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as connection:
        return dict(connection.execute(
            "SELECT filename, count(*) FROM files GROUP BY filename").fetchall())


def publish_projects(upstream: FakeIndex, prefix: str, count: int,
                     size: int) -> dict[str, dists.Dist]:
    """``count`` projects with one wheel each: {project: wheel}."""
    made = {}
    for i in range(count):
        project = f"{prefix}-{i}"
        made[project] = dists.wheel(project, "1.0", payload_size=size)
        upstream.publish(project, made[project], "1.0")
    return made


def test_32_clients_and_a_prefetch_fetch_each_file_from_upstream_once(
        topology: Topology, upstream: FakeIndex, pg_url: str, unique: str, tmp_path: Path) -> None:
    wheels = publish_projects(upstream, f"crowd-{unique}", 4, 200_000)
    upstream.file_delay = 0.05  # slow enough that clients and downloaders overlap
    # Two gunicorn masters: the seed's sync workers, and threaded ones (in-process sharing).
    *webs, _, _ = topology.start(topology.web, lambda: topology.web(threads=8), topology.worker,
                                 lambda: topology.worker(havarti_worker_command()))

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(f"{project}\n" for project in wheels))
    # The downloaders race the web processes for the same files.
    prefetch = subprocess.Popen(
        [sys.executable, "-m", "havarti.cli", "prefetch", "-r", str(requirements),
         "--python-version", "3.11", "--timeout", "120"],
        env=clean_env({**topology.env, "PACKAGE_CACHE": str(topology.data_dir)}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def client(number: int) -> list[tuple[str, str, int]]:
        order = list(wheels.items())
        random.Random(number).shuffle(order)
        web = webs[number % 2]
        with httpx.Client(timeout=60) as http:
            results = []
            for project, dist in order:
                response = http.get(file_url(web, project, dist.filename))
                results.append((dist.filename, hashlib.sha256(response.content).hexdigest(),
                                response.status_code))
            return results

    with ThreadPoolExecutor(32) as pool:
        outcomes = [r for rs in pool.map(client, range(32)) for r in rs]

    expected = {d.filename: d.sha256 for d in wheels.values()}
    assert all(status == 200 for _, _, status in outcomes), outcomes
    assert all(digest == expected[name] for name, digest, _ in outcomes), \
        "a client got bytes that are not the published file"
    assert len(outcomes) == 32 * 4
    output, _ = prefetch.communicate(timeout=120)
    assert prefetch.returncode == 0, output
    assert "4 of 4 files cached" in output
    assert {name: upstream.fetch_count(name) for name in expected} == dict.fromkeys(expected, 1)
    assert rows_per_filename(pg_url) == dict.fromkeys(expected, 1)
    stored = {hashlib.sha256(p.read_bytes()).hexdigest()
              for p in (topology.data_dir / "files").rglob("*") if p.is_file()}
    assert set(expected.values()) <= stored


def test_worker_killed_mid_download_the_file_still_ends_cached(
        topology: Topology, upstream: FakeIndex, pg_url: str, unique: str) -> None:
    project = f"killed-{unique}"
    dist = publish_projects(upstream, project, 1, 1_000_000)[f"{project}-0"]
    upstream.file_delay = 0.5  # 16 chunks: about 8 s, time to kill the downloader
    # A short visibility timeout: a job taken by a dead worker is handed on after 3 s.
    env = {"FILE_MISS": "redirect", "JOB_VISIBILITY_TIMEOUT": "3"}
    web, doomed = topology.start(lambda: topology.web(env=env), lambda: topology.worker(env=env))
    url = file_url(web, f"{project}-0", dist.filename)

    response = httpx.get(url, timeout=10)
    assert response.status_code == 302  # the client goes upstream; a downloader caches it
    wait_for(lambda: upstream.fetch_count(dist.filename) >= 1, 30, "the download to start",
             topology.logs)
    time.sleep(1)
    doomed.kill()
    upstream.file_delay = 0
    assert httpx.get(url, timeout=10).status_code == 302, "a half-written file was served"

    topology.worker(havarti_worker_command(), env=env)
    wait_for(lambda: is_cached(web, f"{project}-0", dist.filename), 90,
             "another worker to finish the job", topology.logs)
    body = httpx.get(url, timeout=10).content
    assert hashlib.sha256(body).hexdigest() == dist.sha256
    assert rows_per_filename(pg_url) == {dist.filename: 1}
    assert upstream.fetch_count(dist.filename) == 2  # the killed attempt, and the one that finished


def test_redis_down_web_serves_and_streams_then_jobs_resume(
        tmp_path: Path, pg_url: str, upstream: FakeIndex, unique: str) -> None:
    broker = ThrowawayRedis(tmp_path / "redis").start()
    project = f"outage-{unique}"
    wheels = publish_projects(upstream, project, 3, 50_000)
    (a, dist_a), (b, dist_b), (c, dist_c) = wheels.items()
    env = {"FILE_MISS": "redirect"}
    try:
        with Topology(tmp_path, pg_url, broker.url, upstream.url, env) as topology:
            web, _ = topology.start(topology.web, topology.worker)
            assert httpx.get(file_url(web, a, dist_a.filename)).status_code == 302
            wait_for(lambda: is_cached(web, a, dist_a.filename), 30, "the job to cache a",
                     topology.logs)

            broker.stop()
            page = httpx.get(f"{web.index_url}{a}/", timeout=10)
            assert page.status_code == 200 and dist_a.filename in page.text
            cached = httpx.get(file_url(web, a, dist_a.filename), timeout=10)
            assert cached.status_code == 200 and cached.headers["X-Havarti-Cache"] == "hit"
            started = time.monotonic()
            missed = httpx.get(file_url(web, b, dist_b.filename), timeout=30)
            assert missed.status_code == 200, "with the broker down a miss must be streamed"
            assert hashlib.sha256(missed.content).hexdigest() == dist_b.sha256
            assert time.monotonic() - started < 10

            broker.start()
            time.sleep(BROKER_RETRY_SECONDS + 0.5)  # web processes try the broker again after this
            assert httpx.get(file_url(web, c, dist_c.filename), timeout=10).status_code == 302
            wait_for(lambda: is_cached(web, c, dist_c.filename), 60,
                     "jobs to resume after Redis returned", topology.logs)
    finally:
        broker.stop()


def test_two_uploads_of_one_filename_exactly_one_wins(
        topology: Topology, pg_url: str, clients, tmp_path: Path, unique: str) -> None:
    env = {"PASSCODE": PASSCODE}
    webs = topology.start(lambda: topology.web(env=env), lambda: topology.web(env=env, threads=4))
    project = f"contested-{unique}"
    # Same filename, different bytes: which one won must be what is served.
    first = dists.wheel(project, "1.0", payload_size=10_000).write(tmp_path / "one")
    second = dists.wheel(project, "1.0", payload_size=20_000).write(tmp_path / "two")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda args: clients.twine_upload(f"{args[0].url}/", PASSCODE, args[1]),
                                [(webs[0], first), (webs[1], second)]))
    assert sorted(r.returncode == 0 for r in results) == [False, True], [r.stdout for r in results]
    loser = next(r for r in results if r.returncode != 0)
    assert "409" in loser.stdout + loser.stderr
    winner = first if results[0].returncode == 0 else second
    assert rows_per_filename(pg_url) == {first.name: 1}
    for web in webs:
        body = httpx.get(file_url(web, project, first.name), timeout=10).content
        assert body == winner.read_bytes()


def test_postgres_connection_loss_is_survived(
        topology: Topology, upstream: FakeIndex, pg_url: str, unique: str) -> None:
    project = f"restart-{unique}"
    dist = publish_projects(upstream, project, 1, 10_000)[f"{project}-0"]
    web = topology.web()
    assert httpx.get(f"{web.index_url}{project}-0/", timeout=10).status_code == 200

    # What a Postgres restart does to Havarti: every pooled connection is cut.
    assert terminate_connections(pg_url) > 0
    page = httpx.get(f"{web.index_url}{project}-0/", timeout=10)
    assert page.status_code == 200 and dist.filename in page.text
    body = httpx.get(file_url(web, f"{project}-0", dist.filename), timeout=10).content
    assert hashlib.sha256(body).hexdigest() == dist.sha256


# The deploy files: what they declare must be the topology tested above.

REPO = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def known_variables() -> set[str]:
    from dataclasses import fields

    from havarti.config import Settings

    return {name for f in fields(Settings) for name in f.metadata["env"]}


def test_procfile_runs_the_seed_commands() -> None:
    assert procfile() == {"web": "gunicorn -w 3 --preload -b 0.0.0.0:$PORT havarti:app",
                          "downloader": "celery --app=havarti worker -l info"}


def test_app_json_declares_the_addons_dynos_and_known_variables() -> None:
    import json

    app = json.loads((REPO / "app.json").read_text())
    assert set(app["addons"]) == {"heroku-postgresql", "heroku-redis"}
    assert set(app["formation"]) == set(procfile())
    assert set(app["env"]) <= known_variables()
    assert all(spec["description"] for spec in app["env"].values())


def test_compose_file_parses_and_runs_the_same_topology() -> None:
    import yaml

    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "downloader", "postgres", "redis"}
    web_command = services["web"]["command"][-1].replace("$$PORT", "$PORT")
    assert web_command == "exec " + procfile()["web"]
    assert " ".join(services["downloader"]["command"]) == procfile()["downloader"]
    for name in ("web", "downloader"):
        env = services[name]["environment"]
        assert set(env) <= known_variables()
        assert env["DB_URI"].startswith("postgresql://") and "@postgres:" in env["DB_URI"]
        assert env["REDIS_URI"].startswith("redis://redis:")
        # Web and downloader must see the same files.
        assert f"packages:{env['PACKAGE_CACHE']}" in services[name]["volumes"]
    assert "exec " + procfile()["web"] in (REPO / "Dockerfile").read_text()


def test_honcho_start_serves_pip_and_prefetch_warms_the_cache(
        tmp_path: Path, pg_url: str, redis_db_url: str, upstream: FakeIndex, clients,
        unique: str) -> None:
    """The README's local production commands, as written: `honcho start`, pip, prefetch."""
    from tests.support.server import free_port

    project = f"honcho-{unique}"
    dist = dists.wheel(project, "1.0")
    upstream.publish(project, dist, "1.0")
    extra = dists.wheel(f"{project}-extra", "2.0", payload_size=30_000)
    upstream.publish(f"{project}-extra", extra, "2.0")
    port = free_port()
    env = clean_env({"PORT": str(port), "DATABASE_URL": pg_url, "REDIS_URL": redis_db_url,
                     "PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url,
                     "PASSCODE": PASSCODE})
    log = open(tmp_path / "honcho.log", "wb")
    honcho = subprocess.Popen(["honcho", "start"], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    logs = (tmp_path / "honcho.log").read_text
    try:
        wait_for(lambda: " ready." in logs() and _healthy(port), 90, "honcho's web and downloader",
                 logs)
        result, target = clients.pip_install(f"http://127.0.0.1:{port}/simple/", project)
        assert result.returncode == 0, result.stderr
        assert (target / project.replace("-", "_") / "__init__.py").exists()

        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"{project}-extra==2.0\n")
        result = subprocess.run([sys.executable, "-m", "havarti.cli", "prefetch", "-r",
                                 str(requirements), "--timeout", "60"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr + logs()
        assert f"1 of 1 files cached, {len(extra.data):,} bytes" in result.stdout
        assert "━" in result.stdout  # rich's progress bar
        assert "havarti.cache_file" in logs() and "job-done" in logs()  # the downloader did it
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=30)
        log.close()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
