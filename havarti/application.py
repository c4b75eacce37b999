"""The seed's entry point: ``havarti.app``, one object for gunicorn and for Celery.

``gunicorn havarti:app`` calls it as a WSGI application (it delegates to the
Flask app); ``celery --app=havarti worker`` finds a Celery application. Both
are the same object, built from the environment on first access.

A web process never needs Celery's worker machinery, and importing it costs
about 16 MB per process: ``havarti.app`` is a Celery application only in a
process that has imported Celery before asking for it (the ``celery`` command,
``havarti worker``). A web process with ``REDIS_URI`` set builds a small
sending-only Celery app on its first job (:class:`havarti.jobs.celery.SendingApp`).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, NoReturn

from havarti import logs, metrics
from havarti.config import ConfigError, Settings, load_settings
from havarti.wiring import IndexHolder, RunnerFactory, prepare


class Havarti:
    """The WSGI application, and the holder of this process's PackageIndex."""

    def __init__(self, settings: Settings, migrate: bool = True) -> None:
        # Web and Celery processes alike: one escaped line per event (havarti.logs).
        logs.configure(settings.debug)
        self._setup(settings, migrate)
        self.holder = IndexHolder(settings, self._runner_factory(settings))

    def _setup(self, settings: Settings, migrate: bool) -> None:
        # Before any worker forks: each process then writes its counters for /metrics to add up.
        metrics.configure(settings.package_cache)
        self.settings = settings
        self._flask: Any = None
        self._flask_guard = threading.Lock()
        if migrate:
            for line in prepare(settings):
                print(f"havarti: {line}", file=sys.stderr)

    def _runner_factory(self, settings: Settings) -> RunnerFactory | None:
        """REDIS_URI set: jobs go to Celery workers, sent by a Celery app built on first use."""
        if not settings.redis_uri:
            return None
        from havarti.jobs.celery import CeleryRunner, SendingApp

        return lambda get_index: CeleryRunner(SendingApp(settings, get_index), settings)

    @property
    def flask(self) -> Any:
        if self._flask is None:
            with self._flask_guard:
                if self._flask is None:
                    from havarti.web import create_app

                    self._flask = create_app(self.settings, self.holder)
        return self._flask

    def __call__(self, environ: dict, start_response: Any) -> Any:
        return self.flask(environ, start_response)


_celery_class: type | None = None


def celery_application_class() -> type:
    """``Havarti`` that is also a Celery application (its tasks registered), for worker processes."""
    global _celery_class
    if _celery_class is None:
        from celery import Celery

        class CeleryHavarti(Havarti, Celery):  # type: ignore[misc]
            def __init__(self, settings: Settings, migrate: bool = True) -> None:
                Celery.__init__(self, "havarti", set_as_current=False)
                self._setup(settings, migrate)
                self.holder = IndexHolder(settings, self._worker_runner_factory(settings))

            def _worker_runner_factory(self, settings: Settings) -> RunnerFactory | None:
                if not settings.redis_uri:
                    return None
                from havarti.jobs.celery import CeleryRunner, configure

                configure(self, settings, lambda: self.holder.get())
                return lambda _get_index: CeleryRunner(self, settings)

            def __call__(self, environ: dict, start_response: Any) -> Any:  # type: ignore[override]
                return self.flask(environ, start_response)

        _celery_class = CeleryHavarti
    return _celery_class


_application: Havarti | None = None
_lock = threading.Lock()


def get_application() -> Havarti:
    """Build ``havarti.app`` once; a configuration or start-up error ends the process.

    The error is one line on stderr and exit code 2 (see :func:`_stop`).
    """
    global _application
    if _application is None:
        with _lock:
            if _application is None:
                # The celery command (and `havarti worker`) imported Celery before asking.
                cls = celery_application_class() if "celery" in sys.modules else Havarti
                try:
                    application = cls(load_settings())
                except ConfigError as exc:
                    _stop(f"configuration error: {exc}")
                except Exception as exc:  # noqa: BLE001 -- database drivers raise many types
                    _stop(startup_failure(exc))
                application.flask  # noqa: B018 -- build now, before gunicorn forks
                _application = application
    return _application


def startup_failure(exc: Exception) -> str:
    """One line for an error while migrating or preparing storage at start."""
    from havarti.storage import StorageError

    if isinstance(exc, StorageError):
        return f"storage: {exc}"
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"start-up failed: {type(exc).__name__}: {detail}"


def _stop(message: str) -> NoReturn:
    print(f"havarti: {message}", file=sys.stderr)
    # Inside a gunicorn worker (no --preload), exit 2 would only make the arbiter
    # start another worker, forever; its "app failed to load" code stops it.
    frame = sys._getframe()
    while frame is not None:
        if frame.f_globals.get("__name__") == "gunicorn.workers.base":
            from gunicorn.arbiter import Arbiter

            raise SystemExit(Arbiter.APP_LOAD_ERROR)
        frame = frame.f_back  # type: ignore[assignment]
    raise SystemExit(2)
