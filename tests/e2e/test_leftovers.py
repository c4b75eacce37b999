"""What killed processes leave: a downloader's lease and spool, partial writes, objects
with no row. Through a real Havarti: kill -9 a worker mid-download, then `havarti gc`
and a restart."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.proxy import file_url, page_files
from tests.support.server import HavartiServer, clean_env

TWO_HOURS = 2 * 3600


def lease_holder(server: HavartiServer, filename: str) -> str | None:
    with sqlite3.connect(server.data_dir / "havarti.db") as db:
        row = db.execute("SELECT holder FROM leases WHERE key = ?", (f"file:{filename}",)).fetchone()
    return row[0] if row else None


def aged(path: Path, seconds: float = TWO_HOURS, data: bytes = b"left behind") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def orphan_object(server: HavartiServer, name: str) -> Path:
    """An object as a download killed before its row would leave it."""
    sha = (name.encode().hex() * 64)[:64]
    return server.data_dir / "files" / sha[:2] / sha[2:4] / sha / name


def gc(server: HavartiServer, upstream: FakeIndex) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havarti.cli", "gc"],
                          env=clean_env({"PACKAGE_CACHE": str(server.data_dir),
                                         "FALLBACK": upstream.url}),
                          capture_output=True, text=True, timeout=120)


def test_a_killed_downloader_costs_no_wait_and_its_leftovers_are_swept(start_server, upstream):
    server = start_server({"FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": "5"})
    wheel = dists.wheel("killed-midway", "1.0", payload_size=3 * 2**20)
    upstream.publish("killed-midway", wheel, "1.0")
    page_files(server, "killed-midway")
    upstream.file_delay = 0.2  # ~10 s for the whole file: plenty of time to kill its downloader

    started = threading.Event()

    def download() -> None:
        try:
            with httpx.stream("GET", file_url(server, "killed-midway", wheel.filename),
                              timeout=60) as response:
                for _ in response.iter_bytes():
                    started.set()
        except httpx.HTTPError:
            pass  # its worker is killed under it

    reader = threading.Thread(target=download)
    reader.start()
    assert started.wait(30)
    holder = lease_holder(server, wheel.filename)
    assert holder is not None
    os.kill(int(holder.split("|")[1]), signal.SIGKILL)  # holder: host|pid|nonce
    reader.join(30)
    assert list((server.data_dir / "spool").glob("dl-*")), "the killed worker's spool stays"

    # Before: the lease outlived its holder by up to 30 s (~24 s measured).
    upstream.file_delay = 0.0
    asked = time.monotonic()
    response = httpx.get(file_url(server, "killed-midway", wheel.filename), timeout=60)
    assert response.status_code == 200 and response.content == wheel.data
    assert time.monotonic() - asked < 8
    assert "lease-broken" in server.log()

    # What it left: its spool; and, planted, a partial upload and objects with no row.
    spool = [aged(p) for p in (server.data_dir / "spool").glob("dl-*")]
    partial = aged(server.data_dir / "files" / ".tmp" / "w-killedupload")
    orphan = aged(orphan_object(server, "orphan-1.0.tar.gz"))
    young = orphan_object(server, "young-1.0.tar.gz")
    aged(young, seconds=60)
    result = gc(server, upstream)
    assert result.returncode == 0, result.stderr
    assert "removed download spool dl-" in result.stdout
    assert "removed partial write w-killedupload" in result.stdout
    assert "removed object with no row" in result.stdout and "orphan-1.0.tar.gz" in result.stdout
    assert "no eviction: CACHE_MAX_SIZE is not set" in result.stdout
    assert not any(p.exists() for p in [*spool, partial, orphan])
    assert young.exists()
    # The file's own object and row are untouched.
    assert httpx.get(file_url(server, "killed-midway", wheel.filename)).content == wheel.data


def test_start_up_sweeps_leftovers(start_server, upstream, tmp_path):
    data = tmp_path / "data"
    spool = aged(data / "spool" / "dl-killed")
    partial = aged(data / "files" / ".tmp" / "w-killed")
    fresh = aged(data / "spool" / "dl-running", seconds=10)
    server = start_server({"FALLBACK": upstream.url}, data_dir=data)
    # Local leftovers go before the server answers.
    assert not spool.exists() and not partial.exists() and fresh.exists()

    # Objects are swept in the background once a process serves (a bucket may be large).
    orphan = aged(orphan_object(server, "orphan-1.0.tar.gz"))
    server.restart()
    httpx.get(f"{server.index_url}")
    deadline = time.monotonic() + 15
    while orphan.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not orphan.exists()
    assert "leftover-removed" in server.log()
