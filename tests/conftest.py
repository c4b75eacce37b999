"""Fixtures shared by every test layer: the real server, the fake upstream, real clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import Clients, make_venv
from tests.support.fakeindex import FakeIndex, running_index
from tests.support.server import HavartiServer

PASSCODE = "s3cret-passcode"


@pytest.fixture(scope="session")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    """pip (in a venv made once per run) and uv, twine, uv publish."""
    root = tmp_path_factory.mktemp("clients")
    return Clients(make_venv(root / "venv"), root / "work")


@pytest.fixture(scope="session", autouse=True)
def test_storage_removed() -> Iterator[None]:
    """Buckets/containers made for HAVARTI_TEST_STORAGE runs are emptied and removed at the
    end, and so are the servers' metrics folders."""
    yield
    from tests.support.cloud import remove_test_storage
    from tests.support.server import remove_metrics_folders

    remove_test_storage()
    remove_metrics_folders()


@pytest.fixture(scope="session")
def rackspace_identity() -> Iterator[Any]:
    """A Rackspace-style identity v2.0 endpoint in front of the local Swift (tests/support/cloud.py)."""
    from tests.support.cloud import RackspaceIdentity, swift_settings

    stub = RackspaceIdentity(swift_settings()["SWIFT_AUTH_URL"])
    yield stub
    stub.stop()


@pytest.fixture
def upstream() -> Iterator[FakeIndex]:
    with running_index() as fake:
        yield fake


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., HavartiServer]]:
    """Start Havarti with extra environment; every server started is stopped after the test."""
    servers: list[HavartiServer] = []

    def start(env: dict[str, str] | None = None, data_dir: Path | None = None,
              command: list[str] | None = None) -> HavartiServer:
        server = HavartiServer(data_dir or tmp_path / f"data{len(servers)}", dict(env or {}),
                               command=command)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., HavartiServer], upstream: FakeIndex) -> HavartiServer:
    """Havarti on the embedded default, with a passcode and the fake upstream."""
    return start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": "3"})
