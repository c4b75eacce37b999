"""Builds the service graph from settings: database, storage, upstream, jobs, index."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from havarti.config import ConfigError, Settings
from havarti.db import Database
from havarti.db.audit import AuditTrail
from havarti.db.files import Files
from havarti.db.leases import LeaseTable
from havarti.db.pages import UpstreamPages
from havarti.db.policies import PolicyRepository
from havarti.db.projects import Projects
from havarti.db.stats import DailyCounts
from havarti.db.tokens import TokenRepository
from havarti.domain.index import PackageIndex, Stores
from havarti.domain.leftovers import remove_local_leftovers
from havarti.errors import InvalidRequest
from havarti.jobs import InProcessRunner, JobRunner
from havarti.storage import make_storage
from havarti.upstream import UpstreamClient
from havarti.upstream.breaker import CircuitBreaker

RunnerFactory = Callable[[Callable[[], PackageIndex]], JobRunner]


def build_index(settings: Settings, jobs: JobRunner | None = None) -> PackageIndex:
    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_seconds)
    upstream = UpstreamClient(settings.primary_upstream, settings.upstream_timeout,
                              settings.max_upstream_page, settings.page_deadline, breaker,
                              file_hosts=settings.upstream_file_hosts,
                              min_rate=settings.upstream_min_rate)
    db = Database(settings.database_url)
    return PackageIndex(settings, stores(db), make_storage(settings), upstream, jobs)


def stores(db: Database) -> Stores:
    """The domain's persistence, over ``db``."""
    return Stores(projects=Projects(db), files=Files(db), pages=UpstreamPages(db),
                  leases=LeaseTable(db), audit=AuditTrail(db),
                  stats=DailyCounts(db), tokens=TokenRepository(db),
                  policies=PolicyRepository(db), close=db.dispose)


class IndexHolder:
    """One PackageIndex per process, built on first use.

    gunicorn --preload forks after the app is built; pools and sockets must not
    cross a fork, so a process that finds a holder from its parent builds anew.
    """

    def __init__(self, settings: Settings,
                 runner_factory: RunnerFactory | None = None) -> None:
        self.settings = settings
        self._runner_factory = runner_factory or (lambda get: InProcessRunner(get))
        self._index: PackageIndex | None = None
        self._pid = 0
        self._guard = threading.Lock()

    def get(self) -> PackageIndex:
        index = self._index
        if index is not None and self._pid == os.getpid():
            return index
        with self._guard:
            if self._index is None or self._pid != os.getpid():
                jobs = self._runner_factory(self.get)
                self._index = build_index(self.settings, jobs)
                self._pid = os.getpid()
                # Objects a killed process stored without a row: swept in the background
                # (listing a bucket takes a while), at most hourly whatever the processes.
                jobs.enqueue("remove_leftovers")
            return self._index


def prepare(settings: Settings) -> list[str]:
    """Start-up work shared by every entry point: check POLICY_FILE, migrate, make storage ready."""
    check_policy_file(settings)
    messages = []
    db = Database(settings.database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    storage = make_storage(settings)
    created = storage.ensure_ready()
    if created:
        messages.append(f"storage: {created}")
    # What a killed process left on this machine's disk (partial writes, download spools).
    report = remove_local_leftovers(storage, spool_dir(settings))
    if report.removed:
        messages.append(f"leftovers: {report.summary()}")
    return messages


def check_policy_file(settings: Settings) -> None:
    """ConfigError, naming the entry, when POLICY_FILE cannot be read or has a bad rule."""
    if settings.policy_file is None:
        return
    from havarti.domain.policy import read_policy_file

    try:
        read_policy_file(settings.policy_file)
    except InvalidRequest as exc:
        raise ConfigError(str(exc)) from None


def spool_dir(settings: Settings) -> Path:
    """Where downloads spool: on this machine, beside local files."""
    return Path(settings.package_cache) / "spool"
