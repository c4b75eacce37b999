"""Helpers for the proxy's end-to-end tests: outages, pages and what Havarti stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support.fakeindex import FakeIndex, running_index
from tests.support.server import HavartiServer

JSON = "application/vnd.pypi.simple.v1+json"
STALE_HEADER = "X-Havarti-Stale"
#: UPSTREAM_TIMEOUT of the proxy tests' servers, in seconds: short, so outages cost little.
UPSTREAM_TIMEOUT = 2.0

OUTAGES = ("refused", "hang", "error", "garbage")


def break_upstream(upstream: FakeIndex, outage: str) -> None:
    """Make the fake upstream fail one way: refuse connections, hang, answer 503 or garbage."""
    if outage == "refused":
        upstream.down()
    elif outage == "hang":
        upstream.hang_seconds = UPSTREAM_TIMEOUT * 5
        upstream.mode = "hang"
    elif outage == "error":
        upstream.mode = "error"
    elif outage == "garbage":
        upstream.mode = "garbage"
    else:
        raise ValueError(outage)


def restore(upstream: FakeIndex) -> None:
    upstream.up()
    upstream.html_only = False
    upstream.file_delay = 0.0
    upstream.json_api_enabled = True


@contextmanager
def running(data_dir: Path, env: dict[str, str]) -> Iterator[HavartiServer]:
    """A Havarti server for a whole test module (starting one costs seconds)."""
    server = HavartiServer(data_dir, env).start()
    try:
        yield server
    finally:
        server.stop()


def module_fixtures(env: dict[str, str] | None = None) -> tuple[Any, Any, Any]:
    """A test module's ``upstream`` (a fake index), ``server`` (Havarti with ``env`` on top of
    the passcode, that upstream and a short UPSTREAM_TIMEOUT) and an autouse fixture that
    brings the upstream back after each test. Assign them to those three names."""

    @pytest.fixture(scope="module")
    def upstream() -> Iterator[FakeIndex]:
        with running_index() as fake:
            yield fake

    @pytest.fixture(scope="module")
    def server(upstream: FakeIndex,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[HavartiServer]:
        # No circuit breaker: the outage tests count every failure, and one shared server
        # must not stay "open" for the tests after them (tests/e2e/test_proxy_fresh.py has it).
        settings = {"PASSCODE": PASSCODE, "UPSTREAM_BREAKER_FAILURES": "0", "FALLBACK": upstream.url,
                    "UPSTREAM_TIMEOUT": str(UPSTREAM_TIMEOUT), **(env or {})}
        with running(tmp_path_factory.mktemp("proxy") / "data", settings) as started:
            yield started

    @pytest.fixture(autouse=True)
    def upstream_restored(upstream: FakeIndex) -> Iterator[None]:
        yield
        restore(upstream)

    return upstream, server, upstream_restored


def get_page(server: HavartiServer, project: str, timeout: float = 30) -> httpx.Response:
    return httpx.get(f"{server.index_url}{project}/", headers={"Accept": JSON}, timeout=timeout)


def page_files(server: HavartiServer, project: str) -> dict[str, dict]:
    """The project page's files (PEP 691), by filename; fails unless the page is a 200."""
    response = get_page(server, project)
    assert response.status_code == 200, response.text
    return {f["filename"]: f for f in response.json()["files"]}


def file_url(server: HavartiServer, project: str, filename: str) -> str:
    return f"{server.url}/files/{project}/{filename}"


def stored_rows(server: HavartiServer, filename: str) -> int:
    """How many database rows Havarti holds for ``filename`` (embedded default: SQLite)."""
    with sqlite3.connect(server.data_dir / "havarti.db") as db:
        return db.execute("SELECT count(*) FROM files WHERE filename = ?", (filename,)).fetchone()[0]


def wait_stored(server: HavartiServer, filename: str, timeout: float = 10) -> int:
    """Rows held for ``filename`` once stored: a client has its verified bytes before the
    storage write and the row (they are off the request path), so a test waits for them."""
    import time

    deadline = time.monotonic() + timeout
    while (rows := stored_rows(server, filename)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return rows


def stored_objects(server: HavartiServer, filename: str) -> list[Path]:
    """Objects in local storage named ``filename`` (temporary files aside)."""
    from tests.support.cloud import cloud_objects_named

    cloud = cloud_objects_named(server.data_dir, filename)
    if cloud is not None:  # HAVARTI_TEST_STORAGE: objects in the test bucket/container
        return cloud  # type: ignore[return-value]
    root = server.data_dir / "files"
    return [p for p in root.rglob(filename) if ".tmp" not in p.relative_to(root).parts]
