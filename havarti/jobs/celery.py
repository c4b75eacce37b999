"""The production runner: jobs go through Redis to Celery downloader workers.

Web processes send; ``celery --app=havarti worker`` (or ``havarti worker``)
runs. Delivery is at-least-once: a task is acknowledged only when it ends, and
a worker that dies mid-job (even SIGKILL) has its job handed to another, after
``JOB_VISIBILITY_TIMEOUT`` when the whole worker died. Running a job twice is
harmless because every job is idempotent and the file lease lets one process
download at a time.

While a job is queued or running, a Redis key (``SET NX`` with a TTL) drops
duplicates, so a thousand clients missing one file queue one download.

A new job is one entry in ``havarti.jobs.base.JOBS``: it becomes the task
``havarti.<name>`` here and runs in-process without Redis. Nothing is periodic:
cache eviction is queued by the index after a miss (``evict``, deduplicated
while queued), and ``havarti gc`` runs it on demand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from havarti.config import Settings
from havarti.errors import DownloadFailed, UpstreamError
from havarti.jobs.base import JOBS, WORKER_PING_TIMEOUT, JobRunner, job_key

if TYPE_CHECKING:
    # Not at run time: a web process sends jobs without loading Celery until its first one.
    from celery import Celery, Task

    from havarti.domain.index import PackageIndex

log = logging.getLogger(__name__)

QUEUE = "havarti"
KEY_PREFIX = "havarti:job:"
FAILED_PREFIX = "havarti:job-failed:"
#: A failure reason is kept this long, for `havarti prefetch` to report.
FAILED_TTL = 24 * 3600
#: Upstream hiccups are retried with exponential backoff: 1 s, 2 s, 4 s ... 32 s.
MAX_RETRIES = 6
RETRY_ON = (UpstreamError, DownloadFailed)
#: After the broker failed, enqueue answers "not queued" at once for this long.
BROKER_RETRY_SECONDS = 2.0


def task_name(job: str) -> str:
    return f"havarti.{job}"


def redis_client(settings: Settings) -> redis.Redis:
    assert settings.redis_uri
    # Short timeouts: a web request that enqueues must not hang on a dead broker.
    return redis.Redis.from_url(settings.redis_uri, socket_timeout=2, socket_connect_timeout=2)


def configure(app: Celery, settings: Settings, index: Callable[[], PackageIndex]) -> None:
    """Point ``app`` at Redis and register one task per job.

    ``index`` returns this process's PackageIndex (each pool process builds its
    own after the fork).
    """
    app.conf.update(
        broker_url=settings.redis_uri,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One job at a time per process: a slow download must not hold others back.
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.job_visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=3,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_serializer="json",
        accept_content=["json"],
    )
    failures = redis_client(settings)

    for job in JOBS:
        _register(app, job, index, failures)


def _register(app: Celery, job: str, index: Callable[[], PackageIndex],
              failures: redis.Redis) -> None:
    function = JOBS[job]

    @app.task(name=task_name(job), bind=True, shared=False, max_retries=MAX_RETRIES,
              acks_late=True, reject_on_worker_lost=True)
    def run(self: Task, **kwargs: Any) -> str:
        key = job_key(job, kwargs)
        try:
            result = function(index(), **kwargs)
        except RETRY_ON as exc:
            if self.request.retries < MAX_RETRIES:
                delay = 2 ** self.request.retries
                log.warning("job-retry job=%s in=%ss reason=%s", key, delay, exc)
                raise self.retry(exc=exc, countdown=delay) from None
            _failed(failures, key, str(exc))
            raise
        except Exception as exc:
            _failed(failures, key, str(exc) or type(exc).__name__)
            raise
        _forget(failures, KEY_PREFIX + key)
        log.info("job-done job=%s result=%s", key, result)
        return result


def _failed(client: redis.Redis, key: str, reason: str) -> None:
    log.warning("job-failed job=%s reason=%s", key, reason)
    try:
        client.set(FAILED_PREFIX + key, reason, ex=FAILED_TTL)
        client.delete(KEY_PREFIX + key)
    except redis.RedisError:
        pass


def _forget(client: redis.Redis, key: str) -> None:
    try:
        client.delete(key)
    except redis.RedisError:
        pass  # the key's TTL ends the de-duplication anyway


class SendingApp:
    """What a web process needs of Celery: ``send_task``, with Celery loaded at the first job.

    Celery and kombu cost a web process about 16 MB it would carry for nothing until a job
    is sent (or for ever, with ``INDEX_TTL`` and no misses); queue depth, failures and
    de-duplication speak to Redis directly.
    """

    def __init__(self, settings: Settings, index: Callable[[], PackageIndex]) -> None:
        self.settings = settings
        self.index = index
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            from celery import Celery

            app = Celery("havarti", set_as_current=False)
            configure(app, self.settings, self.index)
            self._app = app
        return self._app

    def send_task(self, *args: Any, **kwargs: Any) -> Any:
        return self.app.send_task(*args, **kwargs)

    @property
    def control(self) -> Any:
        return self.app.control


class CeleryRunner(JobRunner):
    """Sends jobs to the downloader workers through Redis."""

    def __init__(self, app: Celery | SendingApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.redis = redis_client(settings)
        # Queued jobs are dropped as duplicates at most this long, in case a key outlives its job.
        self.dedup_ttl = settings.job_visibility_timeout * 2
        self._broker_down_until = 0.0

    def enqueue(self, name: str, **kwargs: Any) -> bool:
        if name not in JOBS:
            raise KeyError(f"unknown job {name!r}")
        key = job_key(name, kwargs)
        if time.monotonic() < self._broker_down_until:
            return False
        try:
            self.redis.delete(FAILED_PREFIX + key)
            if not self.redis.set(KEY_PREFIX + key, "1", nx=True, ex=self.dedup_ttl):
                return True  # already queued or running
        except redis.RedisError as exc:
            log.warning("enqueue-failed job=%s reason=broker unavailable: %s", key, exc)
            # An unreachable (not refusing) broker costs a connect timeout: don't pay it per request.
            self._broker_down_until = time.monotonic() + BROKER_RETRY_SECONDS
            return False
        try:
            self.app.send_task(task_name(name), kwargs=kwargs, queue=QUEUE, retry=True,
                               retry_policy={"max_retries": 1, "interval_start": 0,
                                             "interval_step": 0.2, "interval_max": 0.2})
        except Exception as exc:  # noqa: BLE001 -- kombu raises many connection types
            log.warning("enqueue-failed job=%s reason=%s", key, exc)
            _forget(self.redis, KEY_PREFIX + key)
            return False
        return True

    def failure(self, name: str, **kwargs: Any) -> str | None:
        try:
            reason = self.redis.get(FAILED_PREFIX + job_key(name, kwargs))
        except redis.RedisError:
            return None
        return reason.decode() if isinstance(reason, bytes) else None

    def pending(self) -> int:
        try:
            return int(self.redis.llen(QUEUE))  # type: ignore[arg-type]
        except redis.RedisError:
            return -1

    def workers(self, timeout: float = WORKER_PING_TIMEOUT) -> int:
        """Workers consuming the queue, by Celery's ``inspect active_queues`` broadcast.

        Every worker answers within milliseconds, but how many will answer is
        unknown, so this always waits ``timeout`` seconds.
        """
        # A dead broker fails here within the client's short timeout, not in kombu's retries.
        self.redis.ping()
        replies = self.app.control.inspect(timeout=timeout).active_queues() or {}
        return sum(1 for queues in replies.values()
                   if any(queue.get("name") == QUEUE for queue in queues or ()))

    def describe(self) -> str:
        return f"Celery on {self.settings.redis_uri.split('@')[-1] if self.settings.redis_uri else '?'}"

    def check(self) -> str:
        self.redis.ping()
        return self.describe()



def sending_runner(settings: Settings) -> CeleryRunner:
    """A runner for a process that runs no jobs itself (a CLI command asking about workers)."""

    def no_index() -> PackageIndex:
        raise RuntimeError("this process runs no jobs")

    return CeleryRunner(SendingApp(settings, no_index), settings)
