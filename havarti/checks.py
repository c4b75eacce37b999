"""Health checks shared by `havarti check` and `GET /ready`."""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import text

from havarti.config import Settings
from havarti.storage.base import StorageFull
from havarti.storage.local import disk_full

#: Seconds /ready and `havarti check` wait for upstream's answer, at most.
UPSTREAM_PROBE_TIMEOUT = 5.0

if TYPE_CHECKING:
    from havarti.jobs import JobRunner
    from havarti.storage import Storage


class CheckWarning(Exception):  # noqa: N818 -- a warning, not an error
    """Serving works, but something some work relies on is missing: `check` says WARN,
    /ready stays 200 and lists it under ``warnings``."""


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


def check_workers(settings: Settings, jobs: JobRunner | None = None) -> str:
    """How many downloaders take jobs from Redis; none is a warning saying how to start one."""
    if not settings.redis_uri:
        return "none needed (jobs run in-process)"
    from havarti.jobs.base import START_A_WORKER, WORKER_PING_TIMEOUT
    from havarti.jobs.celery import QUEUE, sending_runner

    count = (jobs or sending_runner(settings)).workers(WORKER_PING_TIMEOUT)
    if not count:
        raise CheckWarning(f"0 taking jobs from queue {QUEUE!r}: {START_A_WORKER}")
    return f"{count} taking jobs from queue {QUEUE!r}"


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


def run_checks(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(name, "ok" | "warn" | "fail", detail) for each check, `havarti check`'s lines."""
    yield "configuration", "ok", f"STORAGE={settings.storage}"
    for name, check in {**CHECKS, "workers": check_workers}.items():
        try:
            yield name, "ok", check(settings)
        except CheckWarning as exc:
            yield name, "warn", str(exc)
        except Exception as exc:  # noqa: BLE001 -- each backend raises its own types
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            yield name, "fail", message


#: Seconds `havarti serve` waits, at most, to learn whether REDIS_URI and FALLBACK answer.
START_PROBE_SECONDS = 0.8


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "rediss": 6379}.get(parts.scheme, default_port)
    return parts.hostname or "localhost", port


def _reach(url: str, default_port: int, timeout: float) -> None:
    """Open and close a TCP connection to ``url``'s host and port (DNS included)."""
    host, port = _address(url, default_port)
    socket.create_connection((host, port), timeout=timeout).close()


def unreachable_at_start(settings: Settings,
                         timeout: float = START_PROBE_SECONDS) -> list[str]:
    """One warning line for each of REDIS_URI and FALLBACK that cannot be reached now.

    Both are tried at once, each for at most ``timeout`` seconds, so start-up waits no
    longer than that; nothing here stops Havarti from serving. A connection is all that
    is asked for (a slow answer from a distant upstream is not a fault).
    """
    probes = {"FALLBACK": (settings.primary_upstream, 80, "pages and files not stored yet fail "
                           "until it answers; stored ones are served")}
    if settings.redis_uri:
        probes["REDIS_URI"] = (settings.redis_uri, 6379, "downloads run in the web processes "
                               "until it answers")
    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="havarti-probe")
    futures = {name: pool.submit(_reach, url, port, timeout)
               for name, (url, port, _) in probes.items()}
    wait(futures.values(), timeout=timeout + 0.2)
    pool.shutdown(wait=False)
    warnings = []
    for name in ("REDIS_URI", "FALLBACK"):
        if name not in futures:
            continue
        url, _, consequence = probes[name]
        future = futures[name]
        if future.done() and future.exception() is None:
            continue
        exc = future.exception() if future.done() else None
        if exc is None or isinstance(exc, TimeoutError):
            reason = f"no connection within {timeout:g} s"
        else:
            reason = " ".join((getattr(exc, "strerror", None) or str(exc)
                               or type(exc).__name__).split())
        host, port = _address(url, probes[name][1])
        warnings.append(f"warning: {name} ({host}:{port}) cannot be reached ({reason}); "
                        f"serving goes on: {consequence}")
    return warnings
