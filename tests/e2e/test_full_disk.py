"""A full data disk (PACKAGE_CACHE on a 20 MB tmpfs) costs uploads and misses a clear 503,
and nothing else: pages, cached files, /health and /metrics keep answering.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.proxy import JSON, file_url, get_page, page_files, wait_stored
from tests.support.services import unavailable
from tests.support.uploads import post_upload


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB filesystem of its own (a tmpfs: filling it fills nothing else)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        unavailable(f"cannot mount a tmpfs (root needed): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (2**20, 2**12, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def assert_full(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert "no space left" in response.text.lower()
    assert "\n" not in response.text.strip()


def test_a_full_disk_refuses_writes_clearly_and_serves_everything_else(
        small_disk, start_server, upstream):
    server = start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": "3",
                           "STORAGE": "localstorage"}, data_dir=small_disk)
    private = dists.wheel("full-private", "1.0")
    assert post_upload(server.url, private, PASSCODE).status_code == 200
    cached = dists.wheel("full-cached", "1.0")
    upstream.publish("full-cached", cached, "1.0")
    assert httpx.get(file_url(server, "full-cached", cached.filename)).content == cached.data
    assert wait_stored(server, cached.filename) == 1
    missed = dists.wheel("full-missed", "1.0", payload_size=50_000)
    upstream.publish("full-missed", missed, "1.0")
    page_files(server, "full-missed")

    # Uploads until the disk is full, as a user would (then every last byte taken).
    for n in range(20):
        big = dists.wheel("full-big", f"{n}.0", payload_size=3 * 2**20)
        response = post_upload(server.url, big, PASSCODE)
        if response.status_code != 200:
            assert_full(response)
            break
    else:
        pytest.fail("20 MB took 60 MB of uploads")
    filler = fill(small_disk)

    late = dists.wheel("full-late", "1.0")
    assert_full(post_upload(server.url, late, PASSCODE))
    assert_full(httpx.get(file_url(server, "full-missed", missed.filename), timeout=30))
    # A new upstream release: the page changes, and cannot be stored; it is served all the same.
    upstream.publish("full-cached", dists.wheel("full-cached", "2.0"), "2.0")
    for _ in range(4):  # both web workers, twice
        assert httpx.get(server.url + "/health").status_code == 200
        assert httpx.get(server.url + "/metrics").status_code == 200
        assert httpx.get(file_url(server, "full-cached", cached.filename)).content == cached.data
        assert httpx.get(file_url(server, "full-private", private.filename)).content == private.data
        assert len(page_files(server, "full-cached")) == 2
        assert list(page_files(server, "full-private")) == [private.filename]
        index = httpx.get(server.index_url, headers={"Accept": JSON})
        assert index.status_code == 200 and {"name": "full-private"} in index.json()["projects"]
        for path in ("/", "/projects/", "/projects/full-private/", "/stats/",
                     f"/projects/full-private/files/{private.filename}/"):
            assert httpx.get(server.url + path).status_code == 200, path
    ready = httpx.get(server.url + "/ready")
    assert ready.status_code == 503
    storage = ready.json()["checks"]["storage"]
    assert not storage["ok"] and "no space left" in storage["detail"].lower()
    assert str(small_disk) not in ready.text
    assert "SIGBUS" not in server.log() and "Traceback" not in server.log()

    # Room again: writes work again, without a restart.
    filler.unlink()
    os.sync()
    assert post_upload(server.url, late, PASSCODE).status_code == 200
    assert httpx.get(file_url(server, "full-missed", missed.filename),
                     timeout=30).content == missed.data
    assert get_page(server, "full-late").status_code == 200
    deadline = time.monotonic() + 15  # /ready reuses each answer for a few seconds
    while httpx.get(server.url + "/ready").status_code != 200:
        assert time.monotonic() < deadline, httpx.get(server.url + "/ready").text
        time.sleep(0.5)
