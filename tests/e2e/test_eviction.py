"""Eviction through a real Havarti: `havarti gc` and CACHE_MAX_SIZE in the downloader.

Runs on whatever HAVARTI_TEST_STORAGE selects (local disk by default).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from havarti.db import Database
from havarti.db.models import File
from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.cloud import server_storage_env
from tests.support.server import HavartiServer, clean_env
from tests.support.uploads import post_upload, stored_objects

SIZE = 200_000


def rows(server: HavartiServer) -> dict[str, bool]:
    """filename -> stored, as the server's database says."""
    db = Database(f"sqlite:///{server.data_dir / 'havarti.db'}")
    try:
        with db.session() as session:
            return {r.filename: r.stored for r in session.execute(select(File.filename, File.stored))}
    finally:
        db.dispose()


def served(server: HavartiServer, filename: str, when: datetime) -> None:
    """Pretend ``filename`` was last served at ``when``."""
    db = Database(f"sqlite:///{server.data_dir / 'havarti.db'}")
    try:
        with db.session() as session:
            session.execute(update(File).where(File.filename == filename).values(last_served=when))
    finally:
        db.dispose()


def gc(server: HavartiServer, upstream_url: str, *args: str,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "havarti.cli", "gc", *args],
        env=clean_env({"PACKAGE_CACHE": str(server.data_dir), "FALLBACK": upstream_url,
                       **server_storage_env(server.data_dir), **(env or {})}),
        capture_output=True, text=True, timeout=120)


def fetch(server: HavartiServer, project: str, filename: str) -> bytes:
    response = httpx.get(f"{server.url}/files/{project}/{filename}", follow_redirects=True,
                         timeout=30)
    assert response.status_code == 200, response.text
    # The client has its bytes before the storage write and the row: wait for them.
    deadline = time.monotonic() + 10
    while not rows(server).get(filename) and time.monotonic() < deadline:
        time.sleep(0.05)
    return response.content


def test_gc_evicts_least_recently_served_cached_files_never_private(start_server, upstream):
    server = start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url})
    now = datetime.now(UTC)
    wheels = {}
    for age, name in ((3, "gc-old"), (2, "gc-mid"), (0, "gc-new")):
        wheel = dists.wheel(name, "1.0", payload_size=SIZE)
        upstream.publish(name, wheel, "1.0")
        assert fetch(server, name, wheel.filename) == wheel.data
        wheels[name] = wheel
        served(server, wheel.filename, now - timedelta(days=age))
    private = dists.wheel("gc-private", "1.0", payload_size=2 * SIZE)
    assert post_upload(server.url, private, PASSCODE).status_code == 200
    served(server, private.filename, now - timedelta(days=30))
    old, mid, new = (wheels[n].filename for n in ("gc-old", "gc-mid", "gc-new"))
    bound = str(len(wheels["gc-new"].data) + 1000)

    dry = gc(server, upstream.url, "--dry-run", "--max-size", bound)
    assert dry.returncode == 0, dry.stderr
    assert f"would evict {old}" in dry.stdout and f"would evict {mid}" in dry.stdout
    assert new not in dry.stdout and private.filename not in dry.stdout
    assert "would evict 2 of 3 cached files" in dry.stdout
    assert all(rows(server).values())

    done = gc(server, upstream.url, env={"CACHE_MAX_SIZE": bound})
    assert done.returncode == 0, done.stderr
    assert "evicted 2 of 3 cached files" in done.stdout
    assert rows(server) == {old: False, mid: False, new: True, private.filename: True}
    names = {key.rsplit("/", 1)[-1] for key in stored_objects(server.data_dir)}
    assert old not in names and mid not in names
    assert {new, private.filename} <= names

    # Still listed; the next request fetches it from upstream again and keeps it.
    page = httpx.get(f"{server.index_url}gc-old/")
    assert old in page.text
    assert fetch(server, "gc-old", old) == wheels["gc-old"].data
    assert upstream.fetch_count(old) == 2
    assert rows(server)[old] is True
    assert fetch(server, "gc-private", private.filename) == private.data


@pytest.mark.parametrize(("args", "env", "words"), [
    (["--max-size", "lots"], {}, "--max-size='lots'"),
    (["--grace", "a while"], {}, "--grace='a while'"),
    ([], {"CACHE_MAX_SIZE": "huge"}, "CACHE_MAX_SIZE='huge'"),
])
def test_gc_refusals(start_server, upstream, args, env, words):
    server = start_server({"FALLBACK": upstream.url})
    result = gc(server, upstream.url, *args, env=env)
    assert result.returncode == 2
    assert words in result.stderr and result.stderr.strip().count("\n") == 0


def test_cache_max_size_is_kept_by_the_downloader(start_server, upstream):
    server = start_server({"FALLBACK": upstream.url, "CACHE_MAX_SIZE": str(SIZE + SIZE // 2)})
    filenames = []
    for name in ("auto-one", "auto-two", "auto-three"):
        wheel = dists.wheel(name, "1.0", payload_size=SIZE)
        upstream.publish(name, wheel, "1.0")
        assert fetch(server, name, wheel.filename) == wheel.data
        filenames.append(wheel.filename)
        time.sleep(0.05)  # distinct last_served times
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and rows(server)[filenames[0]]:
        time.sleep(0.2)
    state = rows(server)
    assert state[filenames[0]] is False  # least recently served went first
    assert state[filenames[2]] is True
    assert "evicted file=" in server.log()
