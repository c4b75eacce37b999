"""Running the web app under gunicorn: ``havarti serve`` and the seed's ``gunicorn ... havarti:app``.

:func:`worker_options` is the one place the web worker is configured. The
seed's command line reads it through ``gunicorn.conf.py`` at the repository
root (gunicorn loads ``./gunicorn.conf.py`` from its working directory, as on
Heroku and in the Docker image); ``havarti serve`` applies it here. Both get
gunicorn's threaded worker with Havarti's guards against slow clients
(:mod:`havarti.worker`): a slow download holds one thread, not a whole worker,
and a slow request head holds none.

``havarti serve`` migrates first, then replaces its own process with a fresh
interpreter running :func:`main` (``python -m havarti.server``). The master
then holds gunicorn and nothing else, neither Alembic from the migration nor
the application: each worker imports what serving needs after the fork
(``preload_app`` off), so no worker carries pages only the master used.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from havarti.config import ConfigError, Settings, load_settings

#: The worker class of both command lines.
WORKER_CLASS = "havarti.worker.GuardedThreadWorker"

#: Modules a web process never uses that its dependencies import when they are installed:
#: httpx's command-line tool (rich, pygments: ~5 MB) and, through httpcore, trio (~12 MB;
#: Havarti's upstream client is synchronous). Blocked in web processes only.
UNUSED_IN_WEB = ("httpx._main", "trio")


def lean_imports() -> None:
    """Make the imports in :data:`UNUSED_IN_WEB` fail (their importers fall back), unless done."""
    for name in UNUSED_IN_WEB:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def worker_options(settings: Settings | None = None) -> dict[str, Any]:
    """gunicorn settings for Havarti's web workers, shared by both command lines.

    ``settings`` None: read from the environment, falling back to the defaults
    when it is malformed (the application reports that itself, in one line).
    """
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError:
            settings = Settings()
    return {
        "worker_class": WORKER_CLASS,
        # A slow download holds one thread (sendfile on a blocking socket), never a worker.
        "threads": settings.threads,
        # Connections a worker holds at once: kept-alive ones and heads being read need no thread.
        "worker_connections": 1000,
        # The arbiter's heartbeat, which threads do not block; a wedged worker is replaced.
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Several instances on one machine (tests, benchmarks) must not share one socket.
        "control_socket_disable": True,
        "accesslog": "-" if settings.debug else None,
        "loglevel": "debug" if settings.debug else "info",
        # The workers are gone by then: their metrics files (off the data disk) go too.
        "on_exit": _remove_metrics_folder,
    }


def _remove_metrics_folder(_arbiter: object) -> None:
    from havarti import metrics

    metrics.remove_default_folder()


def serve_options(settings: Settings) -> dict[str, Any]:
    """``havarti serve``: the worker options plus address, worker count, no preloading."""
    bind = f"[{settings.host}]:{settings.port}" if ":" in settings.host else f"{settings.host}:{settings.port}"
    return {**worker_options(settings), "bind": bind, "workers": settings.workers,
            "preload_app": False}


def _gunicorn(settings: Settings) -> Any:
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in serve_options(settings).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # In each worker, after the fork (see the module docstring); migrated already.
            from havarti.application import Havarti

            app = Havarti(settings, migrate=False)
            app.flask  # noqa: B018 -- built before the first request, not during it
            return app

    return Gunicorn()


def _granian(settings: Settings) -> Any:
    """granian (Rust HTTP, WSGI workers): a fifth of gunicorn's CPU per request, no guards.

    Its request heads have a deadline (HEADER_TIMEOUT), bodies stream, and a slow
    download holds no worker; but nothing bounds a stalled body or the connections
    of one client (BODY_TIMEOUT, MAX_CLIENT_CONNECTIONS are gunicorn's, through
    havarti/worker.py). For a deployment whose proxy or router bounds those.
    """
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    return Granian("havarti.server:granian_app", address=settings.host, port=settings.port,
                   interface=Interfaces.WSGI, factory=True, websockets=False, workers=settings.workers,
                   blocking_threads=settings.threads,
                   http1_settings=HTTP1Settings(
                       header_read_timeout=int(settings.header_timeout * 1000)),
                   log_access=settings.debug, respawn_failed_workers=True)


def granian_app() -> Any:
    """The application in a granian worker (spawned: it reads the settings anew; migrated already)."""
    from havarti.application import Havarti

    lean_imports()
    app = Havarti(load_settings(), migrate=False)
    app.flask  # noqa: B018 -- built before the first request, not during it
    return app


def run(settings: Settings) -> None:
    """Serve in this process (the database already migrated)."""
    from havarti import metrics

    # Before any worker starts: the workers' /metrics files go to one folder, stale ones removed.
    metrics.configure(settings.package_cache)
    if settings.web_server == "granian":
        try:
            _granian(settings).serve()
        finally:
            metrics.remove_default_folder()
        return
    _gunicorn(settings).run()


def exec_serve(settings: Settings) -> None:
    """Replace this process by a fresh interpreter serving ``settings`` (see the module docstring)."""
    env = dict(os.environ)
    # Threads would each get a malloc arena of their own: more memory, held, for no speed here.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    # Buffers over 128 KB (page bodies, download chunks) are mapped and go back to the system
    # when freed; glibc's moving threshold would keep them in the heap (81 -> 76 MB a worker).
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    env.update({"HOST": settings.host, "PORT": str(settings.port),
                "WEB_CONCURRENCY": str(settings.workers), "WEB_THREADS": str(settings.threads)})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "havarti.server"], env)


def main() -> None:
    lean_imports()
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"havarti: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run(settings)


if __name__ == "__main__":
    main()
