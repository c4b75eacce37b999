"""Fixtures for tests against real Postgres and Redis (see tests/support/services.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fakeindex import FakeIndex
from tests.support.services import postgres_database, redis_url
from tests.support.topology import Topology


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh Postgres database for this test, dropped after it."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_db_url() -> str:
    """The machine's Redis, on a database index of this run's own (never FLUSHed)."""
    return f"{redis_url()}/{secrets.randbelow(14) + 2}"


@pytest.fixture
def topology(tmp_path: Path, pg_url: str, redis_db_url: str,
             upstream: FakeIndex) -> Iterator[Topology]:
    with Topology(tmp_path, pg_url, redis_db_url, upstream.url) as started:
        yield started


@pytest.fixture
def unique() -> str:
    """A suffix for project names, so tests sharing Redis never share a job key."""
    return secrets.token_hex(3)
