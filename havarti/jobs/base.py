"""The job interface and the job functions both runners execute."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from havarti.distributions import normalized

if TYPE_CHECKING:
    from havarti.domain.index import PackageIndex

log = logging.getLogger(__name__)

#: Seconds to wait for workers' answers when counting them (the count waits this long).
WORKER_PING_TIMEOUT = 1.0
#: What to do when no worker takes jobs (for `havarti prefetch`, `havarti check`, /ready).
START_A_WORKER = "start one with `celery --app=havarti worker -l info` (or `havarti worker`)"


def cache_file(index: PackageIndex, project: str, filename: str) -> str:
    """Download and verify one upstream file into storage (no-op when cached)."""
    return index.cache_file(project, filename)


def refresh_project(index: PackageIndex, project: str) -> str:
    """Revalidate one project's upstream page (never a reserved name's: upstream is not asked)."""
    reserved = index.policy().reserved_by(normalized(project))
    if reserved is not None:
        return f"{project}: reserved ({reserved.text}), upstream not asked"
    state = index.mirror.state(project)
    return f"{project}: {len(state.files)} files"


def evict(index: PackageIndex) -> str:
    """Keep cached upstream files within CACHE_MAX_SIZE, least recently served first."""
    from havarti.domain.eviction import run_eviction

    report = run_eviction(index)
    return "CACHE_MAX_SIZE not set" if report is None else report.summary()


def remove_leftovers(index: PackageIndex) -> str:
    """Delete stored objects no row points at (a process was killed before its row)."""
    from havarti.domain.leftovers import sweep_at_start

    return sweep_at_start(index.files, index.leases, index.storage)


JOBS: dict[str, Callable[..., str]] = {
    "cache_file": cache_file,
    "refresh_project": refresh_project,
    "evict": evict,
    "remove_leftovers": remove_leftovers,
}


def job_key(name: str, kwargs: dict[str, Any]) -> str:
    """Identity of a job, for de-duplication while queued."""
    return name + ":" + ",".join(f"{k}={kwargs[k]}" for k in sorted(kwargs))


class JobRunner(ABC):
    @abstractmethod
    def enqueue(self, name: str, **kwargs: Any) -> bool:
        """Queue job ``name``; a duplicate of a queued job is dropped.

        Returns False when the job could not be queued (the broker is down), so
        the caller can do the work another way; it never raises for that.
        """

    def failure(self, name: str, **kwargs: Any) -> str | None:
        """Why the last run of this job failed for good, or None."""
        return None

    def pending(self) -> int:
        """Jobs queued or running, for metrics; -1 when unknown."""
        return -1

    def workers(self, timeout: float) -> int | None:
        """How many worker processes take jobs from the queue, asked within ``timeout``
        seconds; None when jobs need none (they run in this process).

        Raises when that cannot be known (the broker is down).
        """
        return None

    def describe(self) -> str:
        return type(self).__name__

    def check(self) -> str:
        return self.describe()
