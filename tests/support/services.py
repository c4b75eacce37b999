"""The real Postgres and Redis the service-backed tests use.

Their URLs come from tests/services.env (written by scripts/services.sh), else
the machine's standard loopback ports. A missing service skips the test on a
developer's machine and fails it under CI (``CI=true``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server import free_port

SERVICES_ENV = Path(__file__).parent.parent / "services.env"
DEFAULTS = {
    "HAVARTI_TEST_POSTGRES": "postgresql://postgres@127.0.0.1:5432/postgres",
    "HAVARTI_TEST_REDIS": "redis://127.0.0.1:6379",
}


def service_setting(key: str) -> str | None:
    """``HAVARTI_TEST_*`` from the environment, else from tests/services.env, else None."""
    if os.environ.get(key):
        return os.environ[key]
    if SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == key and value.strip():
                return value.strip()
    return None


def service_url(key: str) -> str:
    """``HAVARTI_TEST_POSTGRES`` / ``HAVARTI_TEST_REDIS``, or the machine's standard port."""
    return service_setting(key) or DEFAULTS[key]


def unavailable(reason: str) -> None:
    """Skip outside CI; under CI a missing service is a failure, never a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"service missing under CI: {reason}")
    pytest.skip(reason)


def postgres_admin_url() -> str:
    url = service_url("HAVARTI_TEST_POSTGRES")
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 -- any failure means "not there"
        unavailable(f"Postgres at {url}: {exc}")
    return url


def redis_url() -> str:
    import redis

    url = service_url("HAVARTI_TEST_REDIS")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {url}: {exc}")
    return url.rstrip("/")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def postgres_database(prefix: str = "havarti_test") -> Iterator[str]:
    """A fresh, empty Postgres database (``postgresql://`` URL), dropped afterwards."""
    import psycopg

    admin = postgres_admin_url()
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def terminate_connections(database_url: str) -> int:
    """Cut every connection to the database, as a Postgres restart would; returns how many."""
    import psycopg

    name = database_url.rpartition("/")[2]
    with psycopg.connect(postgres_admin_url(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
    return len(rows)


class ThrowawayRedis:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
