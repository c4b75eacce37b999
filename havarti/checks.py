"""Health checks shared by `havarti check` and `GET /ready`."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from havarti.config import Settings
from havarti.storage.base import StorageFull
from havarti.storage.local import disk_full

#: Seconds /ready and `havarti check` wait for upstream's answer, at most.
UPSTREAM_PROBE_TIMEOUT = 5.0

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
    if db.engine.dialect.name == "sqlite" and disk_full(Path(db.engine.url.database or ".").parent):
        raise RuntimeError("no space left on device: SQLite cannot write")
    # The dialect, not the URL: /ready is open to anyone and URLs carry passwords.
    return db.engine.dialect.name


def check_storage(settings: Settings) -> str:
    detail = _storage(settings, os.getpid()).check()
    # Downloads are spooled in PACKAGE_CACHE whatever the backend.
    if disk_full(settings.package_cache):
        raise StorageFull("no space left on device in PACKAGE_CACHE (download spool)")
    return detail


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
    return "redis"


def check_upstream(settings: Settings) -> str:
    """One small question: a HEAD of the index URL (no body), within a short timeout."""
    import httpx

    started = time.monotonic()
    timeout = min(settings.upstream_timeout, UPSTREAM_PROBE_TIMEOUT)
    response = httpx.head(settings.primary_upstream, timeout=timeout)
    # 501: a server without HEAD is still up.
    if response.status_code >= 500 and response.status_code != 501:
        raise RuntimeError(f"answered {response.status_code}")
    return f"answered {response.status_code} in {1000 * (time.monotonic() - started):.0f} ms"


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
