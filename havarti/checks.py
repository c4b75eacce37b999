"""Health checks shared by `havarti check` and `GET /ready`."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import text

from havarti.config import Settings

if TYPE_CHECKING:
    from havarti.storage import Storage


def check_database(settings: Settings) -> str:
    from havarti.db import Database

    db = Database(settings.database_url)
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        db.dispose()
    return settings.database_url.split("@")[-1]


def check_storage(settings: Settings) -> str:
    return _storage(settings, os.getpid()).check()


@functools.lru_cache(maxsize=4)
def _storage(settings: Settings, pid: int) -> Storage:
    """One backend per process for /ready: a cloud login per probe would be wasteful."""
    from havarti.storage import make_storage

    return make_storage(settings)


def check_broker(settings: Settings) -> str:
    if not settings.redis_uri:
        return "none (jobs run in-process)"
    import redis

    client = redis.Redis.from_url(settings.redis_uri, socket_timeout=5, socket_connect_timeout=5)
    client.ping()
    return settings.redis_uri.split("@")[-1]


def check_upstream(settings: Settings) -> str:
    import httpx

    response = httpx.get(settings.fallback, timeout=settings.upstream_timeout,
                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    if response.status_code >= 500:
        raise RuntimeError(f"answered {response.status_code}")
    return f"{settings.fallback} answered {response.status_code}"


CHECKS = {
    "database": check_database,
    "storage": check_storage,
    "broker": check_broker,
    "upstream": check_upstream,
}


def run_checks(settings: Settings) -> Iterator[tuple[str, bool, str]]:
    yield "configuration", True, f"STORAGE={settings.storage}"
    for name, check in CHECKS.items():
        try:
            yield name, True, check(settings)
        except Exception as exc:  # noqa: BLE001 -- each backend raises its own types
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            yield name, False, message
