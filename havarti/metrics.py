"""Prometheus metrics, shared by every gunicorn worker of one Havarti.

gunicorn runs several worker processes, and a scrape reaches only one of them;
prometheus-client's multiprocess mode has each process write its counters to
small mmap files in one folder and a scrape adds them all up. The mode must be
chosen before prometheus-client is first imported, so :func:`configure` runs
when the application is built (``havarti.application.Havarti``) and in
``havarti.server.run``, before gunicorn forks; the metrics themselves are built
on first use.

The folder is never on the data disk (``PACKAGE_CACHE``): the files are sparse
mmaps, and a process that touches one on a full disk is killed (SIGBUS), so a
full disk would take every worker down. It is ``PROMETHEUS_MULTIPROC_DIR`` when
set, else one folder per data directory in memory (``/dev/shm``) or in the
system's temporary directory, checked for room at start; with none usable each
process keeps its own counters.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Free space a metrics folder must have at start: the files are a few 64 KiB each.
MIN_FREE = 16 * 2**20
#: Memory-backed on Linux: the first choice for the metrics folder.
SHARED_MEMORY = Path("/dev/shm")

#: The folder configure() chose by default (not one the operator set): removed at exit.
_default_folder: Path | None = None


def configure(package_cache: Path) -> Path | None:
    """Choose multiprocess mode and its folder (see above); None if too late or none is usable.

    Files left by processes that are gone are removed: their counts would
    otherwise be added to every scrape after a restart forever.
    """
    import sys

    global _default_folder
    if "prometheus_client.values" in sys.modules:
        # Too late to choose: the mode was fixed when prometheus-client was imported.
        current = os.environ.get(MULTIPROC_ENV)
        return Path(current) if current else None
    chosen = os.environ.get(MULTIPROC_ENV)
    candidates = ([Path(chosen)] if chosen else []) + default_folders(package_cache)
    for folder in candidates:
        problem = _unusable(folder)
        if problem is None:
            os.environ[MULTIPROC_ENV] = str(folder)
            _default_folder = None if str(folder) == chosen else folder
            _remove_dead(folder)
            return folder
        log.warning("metrics-folder-unusable folder=%s reason=%s", folder, problem)
    os.environ.pop(MULTIPROC_ENV, None)
    log.warning("metrics-single-process reason=no usable folder; each process counts alone")
    return None


def default_folders(package_cache: Path) -> list[Path]:
    """Where the metrics files of the Havarti on ``package_cache`` go, best first.

    Every process of that Havarti on this machine (web workers, Celery workers)
    finds the same folder, without being told.
    """
    key = hashlib.sha256(str(package_cache.expanduser().resolve()).encode()).hexdigest()[:12]
    name = f"havarti-metrics-{os.getuid()}-{key}"
    return [SHARED_MEMORY / name, Path(tempfile.gettempdir()) / name]


def _unusable(folder: Path) -> str | None:
    """Why the metrics files cannot live in ``folder``, or None."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
        # /dev/shm and /tmp are shared: only a real folder of our own will do.
        if folder.is_symlink() or info.st_uid != os.getuid():
            return "not a folder owned by this user"
        probe = folder / f".probe-{os.getpid()}"
        try:
            with open(probe, "wb") as handle:  # written, not sparse: the space is really there
                handle.write(bytes(1 << 16))
        finally:
            probe.unlink(missing_ok=True)
        space = os.statvfs(folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if space.f_bavail * space.f_frsize < MIN_FREE:
        return "less than 16 MiB free"
    return None


def _remove_dead(folder: Path, exiting: bool = False) -> None:
    """Remove the files of processes that are gone (and this one's, when ``exiting``)."""
    for path in folder.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and ((exiting and int(pid) == os.getpid()) or not _alive(int(pid))):
            path.unlink(missing_ok=True)


def remove_default_folder() -> None:
    """At exit: remove the default folder's files of processes that are gone, and the
    folder once empty (a Celery worker of the same Havarti may still use it)."""
    if _default_folder is None:
        return
    try:
        _remove_dead(_default_folder, exiting=True)
        _default_folder.rmdir()
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Metrics:
    registry: Any
    requests: Any
    request_seconds: Any
    file_requests: Any
    file_bytes: Any
    upstream_seconds: Any
    storage_errors: Any
    auth_failures: Any


_metrics: Metrics | None = None
_guard = threading.Lock()


def metrics() -> Metrics:
    """The process's metrics, built on first use."""
    global _metrics
    if _metrics is None:
        with _guard:
            if _metrics is None:
                _metrics = _build()
    return _metrics


def _build() -> Metrics:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    # A registry of our own: building the metrics twice (tests) must not clash in the global one.
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        requests=Counter("havarti_http_requests", "HTTP requests answered, by route and status",
                         ["route", "method", "status"], registry=registry),
        request_seconds=Histogram("havarti_http_request_duration_seconds",
                                  "Time to answer a request (to the first byte), by route",
                                  ["route"], buckets=LATENCY_BUCKETS, registry=registry),
        file_requests=Counter("havarti_file_requests", "Distribution file requests: hit = from "
                              "Havarti's storage, miss = fetched from upstream", ["result"],
                              registry=registry),
        file_bytes=Counter("havarti_file_bytes", "Bytes of distribution files served, by source",
                           ["source"], registry=registry),
        upstream_seconds=Histogram("havarti_upstream_request_duration_seconds",
                                   "Upstream response time (to the headers)", ["kind"],
                                   buckets=LATENCY_BUCKETS, registry=registry),
        storage_errors=Counter("havarti_storage_errors", "Storage backend errors answered as 5xx",
                               registry=registry),
        auth_failures=Counter("havarti_auth_failures", "Passcodes refused: wrong_passcode, or "
                              "throttled (too many wrong ones from the address)", ["result"],
                              registry=registry),
    )


def exposition(queue_depth: Callable[[], int]) -> tuple[bytes, str]:
    """The scrape body (every worker's counters added up) and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector

    own = metrics()
    registry = own.registry
    if MULTIPROC_ENV in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)

    class QueueDepth:
        def collect(self) -> Any:
            yield GaugeMetricFamily("havarti_job_queue_depth",
                                    "Background jobs queued or running (-1: unknown)",
                                    value=queue_depth())

    body = generate_latest(registry) + generate_latest(_single(QueueDepth()))
    return body, CONTENT_TYPE_LATEST


def _single(collector: Any) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def observe_upstream_hooks() -> dict[str, list[Callable[[Any], None]]]:
    """httpx event hooks timing every upstream request to its response headers."""

    def on_request(request: Any) -> None:
        request.extensions["havarti_started"] = time.monotonic()

    def on_response(response: Any) -> None:
        started = response.request.extensions.get("havarti_started")
        if started is not None:
            path = response.request.url.path
            kind = "page" if path.endswith("/") else "json" if path.endswith("/json") else "file"
            metrics().upstream_seconds.labels(kind).observe(time.monotonic() - started)

    return {"request": [on_request], "response": [on_response]}
