"""The embedded default's runner: a small thread pool inside the web process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from havarti.jobs.base import JOBS, JobRunner, job_key

log = logging.getLogger(__name__)


class InProcessRunner(JobRunner):
    def __init__(self, index_factory: Callable[[], Any], workers: int = 4) -> None:
        self._index_factory = index_factory
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="havarti-job")
        self._queued: dict[str, Future[str]] = {}
        self._failures: dict[str, str] = {}
        self._guard = threading.Lock()

    def enqueue(self, name: str, **kwargs: Any) -> bool:
        if name not in JOBS:
            raise KeyError(f"unknown job {name!r}")
        key = job_key(name, kwargs)
        with self._guard:
            self._failures.pop(key, None)
            if key not in self._queued:
                self._queued[key] = self._pool.submit(self._run, key, name, kwargs)
        return True

    def failure(self, name: str, **kwargs: Any) -> str | None:
        with self._guard:
            return self._failures.get(job_key(name, kwargs))

    def _run(self, key: str, name: str, kwargs: dict[str, Any]) -> str:
        try:
            result = JOBS[name](self._index_factory(), **kwargs)
            log.info("job-done job=%s result=%s", key, result)
            return result
        except Exception as exc:
            log.warning("job-failed job=%s reason=%s", key, exc)
            with self._guard:
                self._failures[key] = str(exc) or type(exc).__name__
            raise
        finally:
            with self._guard:
                self._queued.pop(key, None)

    def pending(self) -> int:
        with self._guard:
            return len(self._queued)

    def describe(self) -> str:
        return "in-process job runner"

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
